"""No input breaks a face: hostile bodies on every HTTP face get a clear 4xx or a well-formed answer.

Property-based (hypothesis) over each face's request shape: the VAPI Custom LLM route and
webhook (authenticated, as VAPI calls them), the dashboard's actions (with the token), MCP
JSON-RPC over `/mcp` (with the token), and the local RunPod endpoint's `/run`. Every answer
must be below 500; every Custom LLM stream must end well-formed (finish frame, `[DONE]`).
`PETE_FUZZ_EXAMPLES` sets the examples per face (`bench/fuzz.py` runs 10,000).
Fixed cases pin the messages: each names the problem and, where it has one, the field.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pete_mcp.local.localpod import LocalPodConfig, PodState, build_localpod_app
from tests.support.hostile import GATEWAY_SECRETS, Gateway, Tally, bodies, fuzz_settings, running_gateway
from tests.support.vapi_stack import assert_vapi_stream, read_frames

LLM = {"Authorization": f"Bearer {GATEWAY_SECRETS['vapi_secret']}", "content-type": "application/json"}
DASH = {"Authorization": f"Bearer {GATEWAY_SECRETS['mcp_token']}", "content-type": "application/json"}
MCP = {**DASH, "accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(tmp_path_factory.mktemp("hostile")) as gw:
        yield gw


def _clear_4xx(response: httpx.Response) -> None:
    """A 4xx must say what was wrong, in JSON."""
    assert 400 <= response.status_code < 500, response.status_code
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        message = body["error"]["message"] if isinstance(body.get("error"), dict) else body.get("error")
        assert message, body


message_values = st.sampled_from(
    [
        [{"role": "user", "content": "When is rent due?"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        [{"role": "user", "content": "My sink is leaking"}],
        [],
    ]
)
llm_good = st.fixed_dictionaries(
    {"messages": message_values, "stream": st.booleans()},
    optional={
        "model": st.sampled_from(["jamie", "gemma", "unknown", ""]),
        "temperature": st.floats(min_value=-5, max_value=5, allow_nan=False),
        "max_tokens": st.integers(min_value=-10, max_value=100_000),
        "call": st.fixed_dictionaries({"id": st.text(min_size=1, max_size=12)}),
        "customer": st.fixed_dictionaries({"number": st.sampled_from(["+15551234567", "", "not a number"])}),
        "stop": st.one_of(st.text(max_size=5), st.lists(st.text(max_size=5), max_size=3)),
    },
)
LLM_FIELDS = ["model", "messages", "stream", "temperature", "max_tokens", "seed", "stop", "tools", "call", "customer"]


@fuzz_settings()
@given(body=bodies(LLM_FIELDS, llm_good))
def test_the_custom_llm_route_answers_hostile_bodies_with_a_4xx_or_a_well_formed_reply(
    gateway: Gateway, body: bytes
) -> None:
    tally = _tallies.setdefault("vapi-custom-llm", Tally("vapi-custom-llm"))
    response = gateway.post("/vapi/chat/completions", body, LLM)
    cut = False
    if response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream"):
        try:
            assert_vapi_stream(response.text)
        except (AssertionError, ValueError, KeyError):
            cut = True
    tally.record(response.status_code, cut=cut)
    assert not cut, f"a cut or malformed stream: {response.text[-300:]!r}"
    if response.status_code == 200 and not cut and "json" in response.headers["content-type"]:
        assert response.json()["choices"][0]["message"]["role"] == "assistant"
    elif response.status_code != 200:
        _clear_4xx(response)


webhook_good = st.fixed_dictionaries(
    {
        "message": st.fixed_dictionaries(
            {
                "type": st.sampled_from(
                    ["assistant-request", "tool-calls", "status-update", "end-of-call-report", "hang", "other"]
                )
            },
            optional={
                "call": st.fixed_dictionaries({"id": st.text(min_size=1, max_size=8)}),
                "customer": st.fixed_dictionaries({"number": st.text(max_size=14)}),
                "status": st.sampled_from(["in-progress", "ended", "ringing"]),
                "toolCallList": st.lists(
                    st.fixed_dictionaries(
                        {
                            "id": st.text(max_size=6),
                            "function": st.fixed_dictionaries(
                                {
                                    "name": st.sampled_from(["lookup_tenant", "take_message", "nope"]),
                                    "arguments": st.one_of(
                                        st.just('{"unit": "4B"}'), st.just("NaN"), st.just("[1"), st.text(max_size=10)
                                    ),
                                }
                            ),
                        }
                    ),
                    max_size=3,
                ),
            },
        )
    }
)


@fuzz_settings()
@given(body=bodies(["message"], webhook_good))
def test_the_vapi_webhook_answers_hostile_bodies_below_500(gateway: Gateway, body: bytes) -> None:
    tally = _tallies.setdefault("vapi-webhook", Tally("vapi-webhook"))
    response = gateway.post("/vapi/webhook", body, LLM)
    tally.record(response.status_code)
    if response.status_code != 200:
        _clear_4xx(response)


dash_good = st.one_of(
    st.tuples(st.just("/api/switch"), st.fixed_dictionaries({"model": st.sampled_from(["jamie", "gemma", "nope"])})),
    st.tuples(
        st.just("/api/prompt"),
        st.fixed_dictionaries(
            {"prompt": st.text(min_size=1, max_size=30)}, optional={"max_tokens": st.integers(-5, 5000)}
        ),
    ),
    st.tuples(st.just("/api/deploy"), st.fixed_dictionaries({"image": st.text(max_size=30)})),
)


@fuzz_settings()
@given(
    route=st.sampled_from(["/api/switch", "/api/prompt", "/api/deploy"]),
    body=bodies(["model", "prompt", "max_tokens", "image"], dash_good.map(lambda pair: pair[1])),
)
def test_the_dashboard_actions_answer_hostile_bodies_below_500(gateway: Gateway, route: str, body: bytes) -> None:
    tally = _tallies.setdefault("dashboard-api", Tally("dashboard-api"))
    response = gateway.post(route, body, DASH)
    cut = False
    if response.status_code == 200 and route == "/api/prompt":
        frames = read_frames(response.text)
        cut = not frames or frames[-1].get("type") not in ("done", "error")
    tally.record(response.status_code, cut=cut)
    assert not cut
    if response.status_code >= 300:
        _clear_4xx(response)


mcp_good = st.fixed_dictionaries(
    {
        "jsonrpc": st.sampled_from(["2.0", "1.0"]),
        "method": st.sampled_from(["initialize", "tools/list", "tools/call", "ping", "resources/read"]),
    },
    optional={
        "id": st.one_of(st.integers(-5, 5), st.text(max_size=4)),
        "params": st.fixed_dictionaries(
            {},
            optional={
                "protocolVersion": st.just("2025-06-18"),
                "capabilities": st.just({}),
                "clientInfo": st.just({"name": "fuzz", "version": "0"}),
                "name": st.sampled_from(["health", "list_models", "run_prompt"]),
                "arguments": st.dictionaries(st.text(max_size=6), st.integers(), max_size=2),
            },
        ),
    },
)


@fuzz_settings()
@given(body=bodies(["jsonrpc", "method", "id", "params"], mcp_good))
def test_mcp_over_http_answers_hostile_bodies_below_500(gateway: Gateway, body: bytes) -> None:
    tally = _tallies.setdefault("mcp-http", Tally("mcp-http"))
    response = gateway.post("/mcp", body, MCP)
    tally.record(response.status_code)
    assert response.status_code < 500, response.text[:300]


@pytest.fixture(scope="module")
def localpod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    from anyio.from_thread import start_blocking_portal

    config = LocalPodConfig(api_key="pod-key", run_dir=tmp_path_factory.mktemp("pod"), min_workers=0)
    with start_blocking_portal() as portal:

        async def make() -> tuple[PodState, httpx.AsyncClient]:
            webhooks = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(200)))
            state = PodState.create(config, http=webhooks, run_dir=config.run_dir or Path("."))
            transport = httpx.ASGITransport(app=build_localpod_app(state))
            return state, httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8780")

        state, client = portal.call(make)
        try:
            yield Gateway(portal, client)
        finally:
            state.begin_closing()
            portal.call(client.aclose)
            portal.call(state.webhooks.aclose)


run_good = st.fixed_dictionaries(
    {"input": st.fixed_dictionaries({}, optional={"prompt": st.text(max_size=20), "messages": st.just([])})},
    optional={
        "webhook": st.sampled_from(["http://127.0.0.1:9/hook", "ftp://x", 3]),
        "policy": st.fixed_dictionaries(
            {}, optional={"ttl": st.integers(-5, 10**7), "executionTimeout": st.integers()}
        ),
    },
)


@fuzz_settings()
@given(body=bodies(["input", "webhook", "policy"], run_good))
def test_the_local_runpod_endpoint_answers_hostile_run_bodies_below_500(localpod: Gateway, body: bytes) -> None:
    tally = _tallies.setdefault("localpod-run", Tally("localpod-run"))
    response = localpod.post("/v2/local/run", body, {"Authorization": "Bearer pod-key"})
    tally.record(response.status_code)
    if response.status_code != 200:
        _clear_4xx(response)


_tallies: dict[str, Tally] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_tallies() -> Iterator[None]:
    yield
    for tally in _tallies.values():
        tally.save()


# --- fixed cases: the messages name the problem -----------------------------------------


def test_nan_temperature_is_a_400_naming_the_field_in_both_stream_modes(gateway: Gateway) -> None:
    for stream in ("true", "false"):
        body = b'{"stream": %s, "temperature": NaN, "messages": [{"role": "user", "content": "hi"}]}' % stream.encode()
        response = gateway.post("/vapi/chat/completions", body, LLM)
        assert response.status_code == 400
        assert response.json()["error"]["message"] == "NaN is not a JSON number at temperature."


def test_invalid_utf8_in_a_dashboard_action_is_a_400_not_a_500(gateway: Gateway) -> None:
    response = gateway.post("/api/switch", b'{"model": "\xff\xfe"}', DASH)
    assert response.status_code == 400
    assert "not UTF-8" in response.json()["error"]["message"]


def test_a_wrong_type_names_the_field(gateway: Gateway) -> None:
    response = gateway.post("/api/prompt", b'{"prompt": "hi", "max_tokens": "lots"}', DASH)
    assert response.status_code == 400
    assert "max_tokens" in response.json()["error"]["message"]


def test_deep_nesting_is_refused_with_the_depth_named(gateway: Gateway) -> None:
    body = b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = gateway.post("/vapi/chat/completions", body, LLM)
    assert response.status_code == 400
    assert "nested deeper than 64 levels" in response.json()["error"]["message"]


def test_a_body_over_the_vapi_limit_is_a_413_naming_the_limit(gateway: Gateway) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "x" * (2 * 1024 * 1024)}]}).encode()
    response = gateway.post("/vapi/chat/completions", body, LLM)
    assert response.status_code == 413
    assert response.json()["error"]["message"] == "the request body is over this route's limit of 2097152 bytes."


def test_a_chunked_body_over_the_limit_is_cut_off_with_a_413(gateway: Gateway) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 65536  # 2.5 MiB in all, with no Content-Length

    async def go() -> httpx.Response:
        return await gateway.client.post("/api/switch", content=chunks(), headers=DASH)

    response = gateway.portal.call(go)
    assert response.status_code == 413
    assert "1048576 bytes" in response.json()["error"]["message"]


def test_an_oversized_mcp_body_is_a_413_not_the_sdks_500(gateway: Gateway) -> None:
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "' + b"x" * (1024 * 1024) + b'"}}'
    response = gateway.post("/mcp", body, MCP)
    assert response.status_code == 413


def test_nan_in_a_webhook_tool_argument_string_is_a_tool_error_not_a_crash(gateway: Gateway) -> None:
    body = {
        "message": {
            "type": "tool-calls",
            "call": {"id": "c-nan"},
            "toolCallList": [{"id": "t1", "function": {"name": "take_message", "arguments": '{"name": NaN}'}}],
        }
    }
    response = gateway.post("/vapi/webhook", json.dumps(body).encode(), LLM)
    assert response.status_code == 200
    assert "NaN is not a JSON number at name" in response.json()["results"][0]["error"]


def test_the_local_endpoint_refuses_nan_with_a_400(localpod: Gateway) -> None:
    response = localpod.post("/v2/local/run", b'{"input": {"temperature": NaN}}', {"Authorization": "Bearer pod-key"})
    assert response.status_code == 400
    assert "NaN is not a JSON number" in response.json()["error"]
