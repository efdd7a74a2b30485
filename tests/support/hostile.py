"""Hostile request bodies for every face, and a whole gateway to throw them at.

`bodies(fields)` builds JSON objects shaped like a face's request model (its field names, with
values of any JSON type, including the right one), then encodes them hostilely: NaN and
Infinity (which `json.dumps` writes), numbers too large for a float or for 64 bits, lone
surrogate escapes, invalid UTF-8 bytes, truncation, and nesting far deeper than any real
request. `Tally` counts what came back, so `bench/fuzz.py` can report 5xx answers and cut
streams over a long run. The number of examples per face is `PETE_FUZZ_EXAMPLES` (default 150).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from pete_mcp.app import build_app
from pete_mcp.core.models import ModelRegistry, ModelSpec, Route
from pete_mcp.core.settings import Settings
from pete_mcp.faces.dashboard import dashboard_face
from pete_mcp.faces.mcp import mcp_face
from pete_mcp.gateway import build_core
from pete_vapi import vapi_face

__all__ = [
    "GATEWAY_SECRETS",
    "Gateway",
    "Tally",
    "bodies",
    "fuzz_examples",
    "fuzz_settings",
    "json_values",
    "running_gateway",
]

GATEWAY_SECRETS = {
    "mcp_token": "fuzz-mcp-token-7Q2",
    "vapi_secret": "fuzz-vapi-secret-K9",
}


def fuzz_examples() -> int:
    return int(os.environ.get("PETE_FUZZ_EXAMPLES", "150"))


def fuzz_settings() -> settings:
    return settings(
        max_examples=fuzz_examples(),
        deadline=None,
        derandomize=os.environ.get("PETE_FUZZ_SEED") is None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        database=None,
    )


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN, ±Infinity included: json.dumps writes them as bare words
    st.text(max_size=40),
    st.sampled_from(["user", "assistant", "system", "tool", "jamie", "tool-calls", "assistant-request", ""]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _object(fields: Sequence[str], good: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    shaped = st.fixed_dictionaries({}, optional={name: json_values for name in fields})
    return st.one_of(good, shaped, st.builds(lambda a, b: {**a, **b}, good, shaped))


def _hostile(encoded: bytes, how: str, where: int) -> bytes:
    cut = where % (len(encoded) + 1)
    if how == "plain":
        return encoded
    if how == "bad-utf8":
        return encoded[:cut] + b"\xff\xc3(" + encoded[cut:]
    if how == "truncated":
        return encoded[:cut]
    if how == "deep":
        depth = 64 + where % 5000
        return b'{"messages":' + b"[" * depth + b"]" * depth + b"}"
    if how == "surrogate":
        return encoded.replace(b'"', b'"\\ud83d', 1)
    if how == "huge-number":
        return encoded.replace(b"{", b'{"temperature":1e999,"max_tokens":123456789012345678901234567890,', 1)
    if how == "nan":
        return encoded.replace(b"{", b'{"temperature":NaN,"seed":-Infinity,', 1)
    return encoded


def bodies(fields: Sequence[str], good: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    """Encoded bodies for a model with `fields`: good ones, wrong-typed ones, and hostile encodings."""
    how = st.sampled_from(["plain", "plain", "bad-utf8", "truncated", "deep", "surrogate", "huge-number", "nan"])
    top = st.one_of(_object(fields, good), json_values)
    return st.builds(
        lambda value, h, where: _hostile(json.dumps(value).encode(), h, where),
        top,
        how,
        st.integers(min_value=0, max_value=1_000_000),
    )


@dataclass
class Tally:
    """What a fuzz run got back: status counts, 5xx answers, streams that did not end well-formed."""

    face: str
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: int = 0
    cut_streams: int = 0

    def record(self, status: int, *, cut: bool = False) -> None:
        self.statuses[status] += 1
        self.server_errors += status >= 500
        self.cut_streams += cut

    def save(self) -> None:
        """Append this tally to `PETE_FUZZ_REPORT` (JSON lines) when set, for `bench/fuzz.py`."""
        target = os.environ.get("PETE_FUZZ_REPORT")
        if target:
            line = {
                "face": self.face,
                "cases": sum(self.statuses.values()),
                "server_errors": self.server_errors,
                "cut_streams": self.cut_streams,
                "statuses": dict(sorted(self.statuses.items())),
            }
            with Path(target).open("a") as out:
                out.write(json.dumps(line) + "\n")


@dataclass
class Gateway:
    """The whole app (MCP, VAPI, dashboard) over scripted providers, driven from sync test code."""

    portal: BlockingPortal
    client: httpx.AsyncClient

    def post(self, path: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        async def go() -> httpx.Response:
            response = await self.client.post(path, content=content, headers=headers)
            await response.aread()
            return response

        return self.portal.call(go)

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        async def go() -> httpx.Response:
            return await self.client.get(path, headers=headers or {})

        return self.portal.call(go)


@contextmanager
def running_gateway(tmp_path: Path, **overrides: Any) -> Iterator[Gateway]:
    """Every face over one core with VAPI bearer auth and an MCP token (the production shape), in-process."""
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "hedging": False,
        "vapi_auth": "bearer",
        "vapi_secret": SecretStr(GATEWAY_SECRETS["vapi_secret"]),
        "mcp_token": SecretStr(GATEWAY_SECRETS["mcp_token"]),
        "vapi_answer_deadline_s": 3.0,
        "switch_budget_s": 5.0,
        **overrides,
    }
    config = Settings.model_validate(values)
    spec = ModelSpec("jamie", (Route("p", "m"),), 2048, "Jamie", "You are Jamie.")
    other = ModelSpec("gemma", (Route("p", "g"),), 2048, "Gemma", "You are Gemma.")
    registry = ModelRegistry({"jamie": spec, "gemma": other}, "jamie")
    # Not at import: pytest loads this module as a plugin before these.
    from pete_mcp.core.tenant_directory import DEMO_TENANTS, upsert_tenants
    from tests.support.mcp import standin_deployer
    from tests.support.runpod_rest_standin import RunPodStandIn, RunPodStandInState, build_runpod_standin
    from tests.support.scripted import ScriptedProvider

    provider = ScriptedProvider("p", words=("Rent", " is", " due", "."))
    core = build_core(config, providers={"p": provider}, registry=registry)
    runpod = RunPodStandInState()  # deploys reach a stand-in of RunPod's REST API, as in test_dashboard_api
    deployer = standin_deployer(core, RunPodStandIn(runpod, build_runpod_standin(runpod)))
    dashboard = dashboard_face(core, services=False, sse_max_s=0.5, deployer=deployer)
    app = build_app(core, faces=[mcp_face(core), vapi_face(core), dashboard])
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(app.router.lifespan_context(app)):
        transport = httpx.ASGITransport(app=app)
        client = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765", timeout=30)
        portal.call(upsert_tenants, core.store, DEMO_TENANTS)  # the callers the tests ring from
        try:
            yield Gateway(portal, client)
        finally:
            portal.call(client.aclose)
