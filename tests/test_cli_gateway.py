"""Every CLI command that reaches a model goes through the running gateway when one answers, and says so;
with none it builds its core in-process and says that instead (issue 16: one gateway, one picture).

The gateway is the real app (dashboard face over a real core) under uvicorn on loopback; the CLI signs
in with the token the gateway wrote into the shared data directory. Its providers are scripted: the
path a request takes is what is tested, not a model. (`pete prompt` is tested the same way in
tests/test_operator_view.py.)
"""

from __future__ import annotations

import io
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, redirect_stderr
from dataclasses import replace
from pathlib import Path

import anyio
import httpx
import pytest
from click.testing import CliRunner

from pete_mcp.app import build_app
from pete_mcp.cli._eval_route import run_routed  # pyright: ignore[reportPrivateUsage]
from pete_mcp.cli.doctor import _doctor  # pyright: ignore[reportPrivateUsage]
from pete_mcp.cli.main import main
from pete_mcp.core import ModelRegistry, ModelSpec, NotFound, Route, Settings
from pete_mcp.evals import EvalOptions, load_suite
from pete_mcp.faces.cli_token import read_cli_token
from pete_mcp.faces.dashboard import dashboard_face
from pete_mcp.gateway import build_core
from tests.support.scripted import ScriptedProvider
from tests.support.standins import serving

pytestmark = pytest.mark.anyio
SUITE = Path(__file__).resolve().parents[1] / "evals" / "tenant_calls"
ALIAS = "desk-model"  # only the gateway serves this alias: a core built in-process would not know it


@asynccontextmanager
async def gateway(tmp_path: Path, provider: ScriptedProvider) -> AsyncIterator[str]:
    settings = Settings(data_dir=tmp_path, hedging=False)  # no MCP_TOKEN: the CLI uses the gateway's local token
    registry = ModelRegistry({ALIAS: ModelSpec(ALIAS, (Route("local", "m"),), 4096, "the desk's model")}, ALIAS)
    core = build_core(settings, providers={"local": provider}, registry=registry)
    async with serving(build_app(core, faces=[dashboard_face(core, services=False)])) as url:
        yield url


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def doctor(settings: Settings, *, probe: bool) -> tuple[str, int, str]:
    err = io.StringIO()
    with redirect_stderr(err):
        text, status = await _doctor(settings, probe)
    return text, status, err.getvalue()


async def test_doctor_reads_the_running_gateways_own_checks_and_passes_the_probe_through(tmp_path: Path) -> None:
    provider = ScriptedProvider("local")
    async with gateway(tmp_path, provider) as url:
        cli = Settings(data_dir=tmp_path, pete_url=url)
        free, free_status, free_err = await doctor(cli, probe=False)
        seen_before_probe = len(provider.seen)
        probed, probed_status, probed_err = await doctor(cli, probe=True)
    assert f"→ through the gateway at {url} (its live checks)" in free_err
    assert ALIAS in free and "not probed" in free and free_status == 0, free
    assert seen_before_probe == 0  # the free checks sent the gateway's model nothing
    assert "probe included" in probed_err
    assert f"{ALIAS} answered a one-token probe" in probed and probed_status == 0, probed
    assert provider.seen[-1][-1].content == "Hi"  # the gateway's own provider ran the probe


async def test_the_gateways_probe_needs_a_credential_and_the_cli_token_is_one(tmp_path: Path) -> None:
    provider = ScriptedProvider("local")
    async with gateway(tmp_path, provider) as url, httpx.AsyncClient(base_url=url) as http:
        anonymous = await http.get("/api/health", params={"probe": "1"})
        free = await http.get("/api/health")
        probes_before_signing_in = len(provider.seen)
        token = read_cli_token(tmp_path)
        signed = await http.get("/api/health", params={"probe": "1"}, headers={"Authorization": f"Bearer {token}"})
    assert anonymous.status_code == 403 and probes_before_signing_in == 0
    assert len(provider.seen) == 1
    assert free.status_code == 200 and "figures" in free.json()
    assert signed.status_code == 200
    assert any("answered a one-token probe" in c["detail"] for c in signed.json()["checks"])


async def test_doctor_without_a_gateway_checks_a_core_built_in_process_and_says_so(tmp_path: Path) -> None:
    port = closed_port()
    cli = Settings(data_dir=tmp_path, pete_url=f"http://127.0.0.1:{port}", local_endpoint_port=port)
    with anyio.fail_after(60):
        text, _status, err = await doctor(cli, probe=False)
    assert f"→ no gateway answered at http://127.0.0.1:{port}; checking a core built in-process" in err
    assert text.startswith("Pete doctor:") and ALIAS not in text


def eval_options(backend: str) -> EvalOptions:
    return EvalOptions(
        models=[],
        suites=[load_suite(SUITE)],
        case_ids=["privacy-neighbor-unit"],
        max_tokens=32,
        backend=backend,  # type: ignore[arg-type]
        log_dir=None,
        save=False,
    )


async def test_eval_sends_its_model_calls_through_the_gateway_tagged_as_eval_traffic(tmp_path: Path) -> None:
    provider = ScriptedProvider("local", words=("I can only talk about your own unit", "."))
    async with gateway(tmp_path / "gw", provider) as url:
        cli = Settings(data_dir=tmp_path / "gw", pete_url=url)
        err = io.StringIO()
        with redirect_stderr(err), anyio.fail_after(120):
            results = await run_routed(cli, eval_options("configured"))
        async with httpx.AsyncClient(base_url=url) as http:
            snapshot = (await http.get("/api/metrics")).json()
    assert f'→ through the gateway at {url} (model calls tagged source "eval"' in err.getvalue()
    assert [r.model for r in results] == [ALIAS]  # the gateway's active model, from its model list
    assert results[0].cases and results[0].cases[0].transcript, results[0].cases
    assert snapshot["requests"] == len(provider.seen) >= 1
    assert snapshot["last"]["source"] == "eval"
    assert snapshot["totals"]["input_tokens"] == 3 * len(provider.seen)
    assert provider.seen[0][0].role == "system" and "Jamie" in provider.seen[0][0].content  # the whole context


async def test_eval_with_backend_local_never_asks_the_gateway(tmp_path: Path) -> None:
    provider = ScriptedProvider("local")
    async with gateway(tmp_path, provider) as url:
        cli = Settings(data_dir=tmp_path, pete_url=url)
        err = io.StringIO()
        with redirect_stderr(err), pytest.raises(NotFound) as refused:  # before any model server starts
            await run_routed(cli, replace(eval_options("local"), models=[ALIAS]))
    assert "--backend local" in err.getvalue() and "through the gateway" not in err.getvalue()
    assert "smollm2" in str(refused.value)  # the embedded models' registry, not the gateway's
    assert provider.seen == []


async def test_eval_without_a_gateway_runs_in_process_and_says_so(tmp_path: Path) -> None:
    port = closed_port()
    cli = Settings(data_dir=tmp_path, pete_url=f"http://127.0.0.1:{port}", local_endpoint_port=port, runpod_timeout_s=2)
    err = io.StringIO()
    with redirect_stderr(err), anyio.fail_after(120):
        results = await run_routed(cli, eval_options("configured"))
    assert f"→ no gateway answered at http://127.0.0.1:{port}; running in-process on the configured providers" in (
        err.getvalue()
    )
    assert results and results[0].model == (cli.active_model or "smollm2")
    assert cli.vapi_apology in results[0].cases[0].transcript  # nothing serves the configured providers here


async def test_the_prompt_route_takes_a_prompt_or_the_whole_context_never_both(tmp_path: Path) -> None:
    provider = ScriptedProvider("local")
    async with gateway(tmp_path, provider) as url, httpx.AsyncClient(base_url=url) as http:
        auth = {"Authorization": f"Bearer {read_cli_token(tmp_path)}"}
        context = [{"role": "user", "content": "hi"}]
        both = await http.post("/api/prompt", json={"prompt": "hi", "messages": context}, headers=auth)
        neither = await http.post("/api/prompt", json={"model": ALIAS}, headers=auth)
        odd_source = await http.post("/api/prompt", json={"prompt": "hi", "source": "vapi"}, headers=auth)
    assert both.status_code == 400 and "prompt or messages" in both.text
    assert neither.status_code == 400 and "prompt or messages" in neither.text
    assert odd_source.status_code == 400 and "source" in odd_source.text
    assert provider.seen == []


async def test_the_pete_commands_themselves_take_the_gateway_path(tmp_path: Path) -> None:
    provider = ScriptedProvider("local", words=("Which unit are you in", "?"))
    async with gateway(tmp_path, provider) as url:
        env = {"PETE_URL": url, "DATA_DIR": str(tmp_path), "MCP_TOKEN": ""}
        runner = CliRunner()
        doctor_run = await anyio.to_thread.run_sync(lambda: runner.invoke(main, ["doctor"], env=env))
        eval_run = await anyio.to_thread.run_sync(
            lambda: runner.invoke(
                main, ["eval", "--case", "privacy-neighbor-unit", "--json", "--no-save", "--max-tokens", "16"], env=env
            )
        )
        async with httpx.AsyncClient(base_url=url) as http:
            snapshot = (await http.get("/api/metrics")).json()
    assert doctor_run.exit_code == 0 and f"through the gateway at {url}" in doctor_run.stderr
    assert ALIAS in doctor_run.stdout
    assert eval_run.exit_code == 0, eval_run.output
    assert f"through the gateway at {url}" in eval_run.stderr
    rows = json.loads(eval_run.stdout)["results"]
    assert [r["model"] for r in rows] == [ALIAS]
    assert snapshot["last"]["source"] == "eval" and snapshot["requests"] == len(provider.seen) >= 1
