"""`/openapi.json` describes the HTTP API, and schemathesis finds no 5xx and no undocumented answer.

Schemathesis generates requests from the document the app serves (positive and negative
cases), the test sends them to the real app in-process (all faces, every credential
configured, the token sent) and validates each response against the document: no server
error, a documented status, a documented content type. Deploys reach a stand-in of RunPod's
REST API. `/api/events` is left out: an SSE
stream that ends only by time. `PETE_FUZZ_EXAMPLES` sets the examples per operation.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, status_code_conformance

from pete_mcp.openapi import openapi_document
from tests.support.hostile import GATEWAY_SECRETS, Gateway, fuzz_examples, running_gateway

schema = schemathesis.openapi.from_dict(openapi_document()).exclude(path="/api/events")
TOKEN_HEADERS = {
    "Authorization": f"Bearer {GATEWAY_SECRETS['vapi_secret']}",
}
DASH_HEADERS = {"Authorization": f"Bearer {GATEWAY_SECRETS['mcp_token']}"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(tmp_path_factory.mktemp("openapi")) as gw:
        yield gw


def test_the_app_serves_its_openapi_document(gateway: Gateway) -> None:
    response = gateway.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert {"/healthz", "/api/switch", "/vapi/chat/completions", "/vapi/webhook"} <= set(document["paths"])
    body = document["paths"]["/vapi/chat/completions"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ChatCompletionRequest"}
    assert "temperature" in document["components"]["schemas"]["ChatCompletionRequest"]["properties"]


@schema.parametrize()
@settings(
    max_examples=max(20, fuzz_examples() // 5),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    database=None,
)
def test_generated_requests_get_no_5xx_and_documented_answers(case: schemathesis.Case, gateway: Gateway) -> None:
    headers = DASH_HEADERS if case.path.startswith(("/api/", "/metrics")) else TOKEN_HEADERS
    kwargs = case.as_transport_kwargs(base_url="http://127.0.0.1:8765", headers=headers)
    kwargs.pop("cookies", None)
    if isinstance(kwargs.get("data"), bytes | str):  # requests' raw-body keyword is httpx's `content`
        kwargs["content"] = kwargs.pop("data")

    async def send() -> object:
        return await gateway.client.request(**kwargs)

    response = gateway.portal.call(send)
    assert isinstance(response, httpx.Response)
    case.validate_response(response, checks=[status_code_conformance, content_type_conformance])
    assert response.status_code < 500, response.text[:300]
