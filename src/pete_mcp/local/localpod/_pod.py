"""`LocalPod`: one local RunPod endpoint with real workers, embeddable in any asyncio program.

`async with LocalPod(config) as pod:` binds 127.0.0.1 (port 0 picks one), serves the app with
uvicorn on the caller's event loop, starts the supervisor and the housekeeping tick
(deadlines, scaling), and on exit stops every worker process (SIGTERM, then SIGKILL) before
it returns. It installs no signal handlers: the host program owns those (`run_localpod`,
`pete up`, pytest).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from ..embedded_server import EmbeddedServer
from ._app import build_localpod_app
from ._config import LocalPodConfig
from ._faults import Faults
from ._state import PodState
from ._wirelog import WireLog
from ._workers import WorkerPhase

__all__ = ["LocalPod"]

logger = logging.getLogger(__name__)


class LocalPod:
    """A running local endpoint: `.url` is the `/v2` base, like `https://api.runpod.ai/v2`."""

    def __init__(
        self,
        config: LocalPodConfig | None = None,
        *,
        http: httpx.AsyncClient | None = None,
        parent_env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config or LocalPodConfig()
        self._http = http
        self._parent_env = parent_env
        self._state: PodState | None = None
        self._server: EmbeddedServer | None = None
        self._serving: asyncio.Task[None] | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._temp_dir: Path | None = None
        self._port: int | None = None
        self._owned_http: httpx.AsyncClient | None = None

    # --- what callers connect to

    @property
    def url(self) -> str:
        """The public API base, e.g. `http://127.0.0.1:8780/v2` (append `/{endpoint_id}/run`)."""
        if self._port is None:
            raise RuntimeError("The local endpoint is not started yet; use `async with LocalPod(...)`.")
        host = _client_host(self.config.host)
        return f"http://{host}:{self._port}/v2"

    @property
    def endpoint_url(self) -> str:
        return f"{self.url}/{self.config.endpoint_id}"

    @property
    def lb_url(self) -> str:
        """A load-balancing endpoint's base, like `https://{endpoint_id}.api.runpod.ai`:
        `http://127.0.0.1:8780/lb/{endpoint_id}` (append `/ping`, `/v1/chat/completions`)."""
        return self.url.removesuffix("/v2") + f"/lb/{self.config.endpoint_id}"

    @property
    def admin_url(self) -> str:
        return self.url.removesuffix("/v2") + "/_admin"

    @property
    def endpoint_id(self) -> str:
        return self.config.endpoint_id

    @property
    def api_key(self) -> str:
        return self.config.api_key

    @property
    def run_dir(self) -> Path | None:
        """Where worker logs (`logs/<worker id>.log`) and homes live while running."""
        return self._temp_dir or self.config.run_dir

    @property
    def state(self) -> PodState:
        if self._state is None:
            raise RuntimeError("The local endpoint is not started yet.")
        return self._state

    @property
    def faults(self) -> Faults:
        return self.state.faults

    @property
    def wire_log(self) -> WireLog:
        return self.state.wire

    def health(self) -> dict[str, Any]:
        """What `GET /health` answers."""
        return {"jobs": self.state.board.counts(), "workers": self.state.workers.counts()}

    def kill_worker(self, *, job_id: str | None = None, worker_id: str | None = None) -> str:
        """Kill the worker running `job_id` (or `worker_id`) mid-job; returns its id.

        Raises:
            NotRunning: no such running job or worker.
        """
        return self.state.supervisor.kill_worker(job_id=job_id, worker_id=worker_id).id

    async def wait_for_workers(self, ready: int = 1, timeout_s: float = 60.0) -> None:
        """Wait until `ready` workers have asked for a job.

        Raises:
            TimeoutError: they did not in time (see the worker logs under `run_dir/logs`).
        """
        try:
            async with asyncio.timeout(timeout_s):
                while sum(w.phase is WorkerPhase.READY for w in self.state.workers.all()) < ready:
                    await self.state.workers.changed.wait(1.0)
        except TimeoutError:
            raise TimeoutError(
                f"{ready} local worker(s) not ready after {timeout_s:.0f} s; see the logs in {self.run_dir}/logs."
            ) from None

    # --- lifecycle

    async def __aenter__(self) -> LocalPod:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Bind, serve, start supervising.

        Raises:
            OSError: the port could not be bound (in use, or not allowed).
        """
        if self._state is not None:
            raise RuntimeError("This LocalPod is already started.")
        run_dir = self._prepare_run_dir()
        http = self._http or httpx.AsyncClient()
        self._owned_http = None if self._http else http
        state = PodState.create(self.config, http=http, run_dir=run_dir, parent_env=self._parent_env)
        sock = _bind(self.config.host, self.config.port)
        self._port = sock.getsockname()[1]
        self._state = state
        server_config = uvicorn.Config(
            build_localpod_app(state, http),
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        self._server = EmbeddedServer(server_config)
        self._serving = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._serving.done():
                self._serving.result()  # raises what stopped uvicorn
                raise RuntimeError("The local endpoint's server stopped while starting.")
            await asyncio.sleep(0.01)
        state.supervisor.start(self.endpoint_url)
        self._housekeeping = asyncio.get_running_loop().create_task(self._housekeep(state))
        logger.info("Local RunPod endpoint %s serving at %s.", self.endpoint_id, self.url)

    async def stop(self) -> None:
        """Stop every worker process, then the server. Safe to call twice."""
        state, self._state = self._state, None
        if state is None:
            return
        try:
            if self._housekeeping is not None:
                self._housekeeping.cancel()
                await asyncio.gather(self._housekeeping, return_exceptions=True)
            await state.supervisor.close()
            state.begin_closing()
            if self._server is not None and self._serving is not None:
                self._server.should_exit = True
                try:
                    await asyncio.wait_for(asyncio.shield(self._serving), timeout=5)
                except TimeoutError:
                    self._server.force_exit = True
                    await asyncio.gather(self._serving, return_exceptions=True)
            await state.webhooks.aclose()
            if self._owned_http is not None:
                await self._owned_http.aclose()
                self._owned_http = None
        finally:
            if self._temp_dir is not None:
                shutil.rmtree(self._temp_dir, ignore_errors=True)
                self._temp_dir = None
            self._port = None

    async def _housekeep(self, state: PodState) -> None:
        while True:
            try:
                state.board.sweep()
                state.supervisor.reconcile()
            except Exception:
                logger.exception("Local endpoint housekeeping failed; continuing.")
            await state.board.queue_changed.wait(self.config.sweep_interval_s)

    def _prepare_run_dir(self) -> Path:
        if self.config.run_dir is None:
            self._temp_dir = Path(tempfile.mkdtemp(prefix="pete-localpod-"))
            return self._temp_dir
        run_dir = self.config.run_dir
        for old in ("home", "logs"):  # the previous run's worker homes and logs
            shutil.rmtree(run_dir / old, ignore_errors=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Name IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on connections accepted from a
    # socket whose proto says TCP, and without it Nagle adds ~40 ms to every small reply.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def _client_host(host: str) -> str:
    """Where local clients and workers reach a server bound to `host`."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
