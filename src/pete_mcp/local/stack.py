"""`pete up`: the whole system on one machine.

Without RunPod credentials: the llama.cpp model server, the local RunPod endpoint with real
workers, and the gateway. With them: the gateway only, against the real endpoint. `--replicas N`
(with DATABASE_URL) runs N gateways on consecutive ports over the one PostgreSQL, each with
its own core, as a load balancer would see them (docs/scaling.md). SIGINT or SIGTERM stops
everything in reverse order, so no child process is left behind.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

import uvicorn

from pete_mcp.app import build_app, check_bind_safety
from pete_mcp.core import ConfigError, PeteError, Settings
from pete_mcp.gateway import build_core

from .embedded_server import EmbeddedServer

__all__ = ["connection_help", "replica_settings", "run_up"]

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[3]


def connection_help(settings: Settings, gateway: str) -> str:
    """What to tell the operator: where each face is and how to connect an MCP host."""
    stdio = {"mcpServers": {"pete": {"command": "uv", "args": ["run", "--directory", str(REPO), "pete-mcp"]}}}
    remote: dict[str, object] = {"url": f"{gateway}/mcp"}
    if settings.mcp_token is not None:
        remote["headers"] = {"Authorization": "Bearer ${env:PETE_MCP_TOKEN}"}
    http = {"mcpServers": {"pete": remote}}
    public = settings.public_url or gateway
    return "\n".join(
        [
            f"  dashboard        {gateway}/",
            f"  MCP (HTTP)       {gateway}/mcp",
            f"  VAPI Custom LLM  {public}/vapi   (model.url; VAPI appends /chat/completions)",
            f"  VAPI server URL  {public}/vapi/webhook",
            f"  metrics          {gateway}/metrics",
            "",
            "  MCP host config (stdio):  " + json.dumps(stdio),
            "  MCP host config (HTTP):   " + json.dumps(http),
            "",
            '  try:  ./scripts/pete prompt "Is there a fee for breaking my lease?"',
        ]
    )


async def _start_local_stack(settings: Settings, stack: AsyncExitStack) -> None:
    from .endpoint import localpod_config
    from .localpod import LocalPod
    from .model_server import SMOLLM2_ALIAS, ModelServer

    model_server = ModelServer.from_settings(settings)
    print(f"Starting the local model server (llama.cpp) on {model_server.url} ...", flush=True)
    stack.callback(model_server.stop)
    await model_server.astart()
    print(f"  serving {', '.join(model_server.models)}", flush=True)

    config = localpod_config(
        settings,
        worker_env={"WORKER_MODEL_URL": model_server.url, "WORKER_BACKEND": "openai", "WORKER_PRELOAD": SMOLLM2_ALIAS},
        worker_cwd=REPO,
    )
    pod = await stack.enter_async_context(LocalPod(config))
    print(f"Local RunPod endpoint {pod.endpoint_id!r} at {pod.url}; waiting for a worker ...", flush=True)
    await pod.wait_for_workers(1, timeout_s=settings.worker_ready_timeout_s)
    print(f"  {config.min_workers}-{config.max_workers} worker(s) running `python -m gpu_handler`", flush=True)
    await _seed_demo_tenants(settings)


async def _seed_demo_tenants(settings: Settings) -> None:
    """The offline stack greets three demo callers by name; a real deployment imports its own directory."""
    from pete_mcp.core import store_from_settings
    from pete_mcp.core.tenant_directory import DEMO_TENANTS, upsert_tenants

    store = store_from_settings(settings)
    store.open()
    try:
        await upsert_tenants(store, DEMO_TENANTS)
    finally:
        store.close()
    print(
        f"  {len(DEMO_TENANTS)} demo tenants in the directory (load real ones with `pete tenants import`)", flush=True
    )


def replica_settings(settings: Settings, replicas: int) -> list[Settings]:
    """One settings per gateway replica: consecutive ports from `settings.port`, distinct replica ids.

    Raises:
        ConfigError: more than one replica without DATABASE_URL (SQLite is one process's).
    """
    if replicas <= 1:
        return [settings]
    if settings.database_url is None:
        raise ConfigError(f"--replicas {replicas} needs DATABASE_URL: replicas share one PostgreSQL.")
    return [
        settings.model_copy(
            update={
                "port": settings.port + i if settings.port else 0,
                "replica_id": f"{settings.replica_id or 'replica'}-{i + 1}",
            }
        )
        for i in range(replicas)
    ]


async def _start_gateway(settings: Settings) -> tuple[EmbeddedServer, asyncio.Task[None]] | None:
    server = EmbeddedServer(
        uvicorn.Config(
            build_app(build_core(settings), freeze_heap=True),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            lifespan="on",
        )
    )
    serving = asyncio.create_task(server.serve())
    # uvicorn exposes readiness only as a flag, so poll it briefly.
    while not server.started and not serving.done():  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    if serving.done():
        serving.result()
        return None
    return server, serving


async def _up(settings: Settings, replicas: int = 1) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with AsyncExitStack() as stack:
            if settings.uses_real_runpod:
                print(f"RunPod endpoint {settings.runpod_endpoint_id} at {settings.runpod_base_url}", flush=True)
            else:
                await _start_local_stack(settings, stack)
            running: list[tuple[EmbeddedServer, asyncio.Task[None]]] = []
            for replica in replica_settings(settings, replicas):
                started = await _start_gateway(replica)
                if started is None:
                    return 1
                running.append(started)
            gateways = [f"http://{settings.host}:{server.bound_port}" for server, _ in running]
            if len(gateways) > 1:
                print(f"\n{len(gateways)} gateway replicas on one PostgreSQL: {', '.join(gateways)}", flush=True)
            print(
                f"\nPete is up: gateway at {gateways[0]}\n{connection_help(settings, gateways[0])}\n"
                "Ctrl-C stops everything.",
                flush=True,
            )
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({*(t for _, t in running), stopped}, return_when=asyncio.FIRST_COMPLETED)
            print("Stopping ...", flush=True)
            for server, _ in running:
                server.should_exit = True
            for _, serving in running:
                await serving
            stopped.cancel()
    except PeteError as exc:
        print(f"pete up: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    print("Stopped.", flush=True)
    return 0


def run_up(settings: Settings, *, replicas: int = 1) -> int:
    """Run Pete in the foreground until Ctrl-C or SIGTERM; the process exit code."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the banner
    try:
        check_bind_safety(settings)
        replica_settings(settings, replicas)
    except PeteError as exc:
        print(f"pete up: {exc}", file=sys.stderr)
        return 2
    with asyncio.Runner(loop_factory=_event_loop()) as runner:
        return runner.run(_up(settings, replicas))


def _event_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (as `pete serve`'s uvicorn picks it), else asyncio's own loop."""
    try:
        import uvloop
    except ImportError:  # Windows
        return None
    return uvloop.new_event_loop
