"""POST /github/webhook: signed GitHub deliveries deploy through the gated deploy path and report back.

GitHub is a `MockTransport` answering its documented REST shapes; RunPod is the REST stand-in.
Payloads follow GitHub's webhook docs (release, workflow_run, ping), trimmed to what Pete reads
plus the fields around them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from pete_mcp.app import build_app
from pete_mcp.core.eval_scores import EvalRunRow, EvalScoreBook
from pete_mcp.faces.github_webhook import github_webhook_face, verify_github_signature
from pete_mcp.gateway import Core
from pete_mcp.ops import deploy_gate
from tests.support.mcp import open_core, standin_deployer
from tests.support.runpod_rest_standin import FIRST_IMAGE, RunPodStandIn
from tests.support.vapi_stack import eventually

pytestmark = pytest.mark.anyio

SECRET = "It's a Secret to Everybody"
SHA = "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d"
REPO = "octo-org/pete"
TEMPLATE = "ghcr.io/octo-org/pete-worker:{tag}"


def test_the_signature_from_githubs_documentation_verifies() -> None:
    documented = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert verify_github_signature(SECRET.encode(), b"Hello, World!", documented)
    assert not verify_github_signature(SECRET.encode(), b"Hello, World?", documented)
    assert not verify_github_signature(SECRET.encode(), b"Hello, World!", documented.replace("sha256=", "sha1="))
    assert not verify_github_signature(SECRET.encode(), b"Hello, World!", None)


def release_published(tag: str = "v1.4.2") -> dict[str, Any]:
    return {
        "action": "published",
        "release": {
            "id": 1,
            "tag_name": tag,
            "target_commitish": "main",
            "name": tag,
            "draft": False,
            "prerelease": False,
            "html_url": f"https://github.com/{REPO}/releases/tag/{tag}",
        },
        "repository": {"id": 1296269, "name": "pete", "full_name": REPO, "private": False},
        "sender": {"login": "octocat", "id": 1},
    }


def workflow_run_completed(name: str = "Build worker", conclusion: str = "success") -> dict[str, Any]:
    return {
        "action": "completed",
        "workflow_run": {
            "id": 30433642,
            "name": name,
            "head_branch": "main",
            "head_sha": SHA,
            "event": "push",
            "status": "completed",
            "conclusion": conclusion,
            "workflow_id": 159038,
        },
        "workflow": {"id": 159038, "name": name, "path": ".github/workflows/deploy-worker.yml"},
        "repository": {"id": 1296269, "name": "pete", "full_name": REPO, "private": False},
        "sender": {"login": "octocat", "id": 1},
    }


@dataclass
class FakeGitHub:
    """GitHub's REST API for deployments and statuses, recording what Pete sent."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.host == "api.github.com"
        assert request.headers["authorization"] == "Bearer gh-token"
        body = json.loads(request.content)
        self.calls.append((request.url.path, body))
        if request.url.path.endswith("/deployments"):
            return httpx.Response(201, json={"id": 42, "sha": SHA, "ref": body["ref"], "environment": "production"})
        if "/deployments/42/statuses" in request.url.path:
            return httpx.Response(201, json={"id": 1, "state": body["state"]})
        if request.url.path.startswith(f"/repos/{REPO}/statuses/"):
            return httpx.Response(201, json={"id": 2, "state": body["state"], "context": body["context"]})
        return httpx.Response(404, json={"message": "Not Found"})

    def states(self) -> list[tuple[str, str]]:
        return [
            (path.rsplit("/", 2)[-2] if "deployments/" in path else "commit", b["state"])
            for path, b in self.calls
            if "state" in b
        ]


@dataclass
class Hook:
    core: Core
    client: httpx.AsyncClient
    github: FakeGitHub
    runpod: RunPodStandIn

    async def deliver(self, event: str, payload: Any, *, delivery: str = "d-1", secret: str = SECRET) -> httpx.Response:
        body = json.dumps(payload).encode()
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature}
        return await self.client.post("/github/webhook", content=body, headers=headers)


@asynccontextmanager
async def hook(tmp_path: Path, openai_standin: Any, runpod: RunPodStandIn, **settings: Any) -> AsyncIterator[Hook]:
    options = {
        "github_webhook_secret": SECRET,
        "deploy_image_template": TEMPLATE,
        "github_deploy_workflows": "Build worker",
        "github_token": "gh-token",
        "github_repo": REPO,
        **settings,
    }
    github = FakeGitHub()
    async with open_core(tmp_path, openai_standin, runpod=runpod, **options) as core:
        deployer = standin_deployer(core, runpod)
        deployer.gate = deploy_gate(core)  # as `gated_deployer` builds it for the real endpoint
        http = httpx.AsyncClient(transport=httpx.MockTransport(github.handle))
        face = github_webhook_face(core, deployer=deployer, http=http)
        app = build_app(core, faces=[face], manage_core=False)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://pete.test") as client,
        ):
            yield Hook(core, client, github, runpod)


async def test_a_published_release_deploys_its_tag_and_reports_success_to_github(
    tmp_path: Path, openai_standin: Any, runpod_standin: RunPodStandIn
) -> None:
    async with hook(tmp_path, openai_standin, runpod_standin) as h:
        response = await h.deliver("release", release_published("v1.4.2"))
        assert response.status_code == 202
        assert response.json()["image"] == "ghcr.io/octo-org/pete-worker:v1.4.2"
        await eventually(lambda: ("42", "success") in h.github.states(), timeout_s=10)
    assert runpod_standin.state.patches == [{"image": "ghcr.io/octo-org/pete-worker:v1.4.2"}]
    deployment = h.github.calls[0]
    assert deployment[0] == f"/repos/{REPO}/deployments" and deployment[1]["ref"] == "v1.4.2"
    assert h.github.states() == [("42", "in_progress"), ("commit", "pending"), ("42", "success"), ("commit", "success")]
    commit = [b for p, b in h.github.calls if p == f"/repos/{REPO}/statuses/{SHA}"]
    assert commit[-1]["context"] == "pete/deploy"


async def test_a_successful_run_of_the_configured_workflow_deploys_its_commit(
    tmp_path: Path, openai_standin: Any, runpod_standin: RunPodStandIn
) -> None:
    async with hook(tmp_path, openai_standin, runpod_standin) as h:
        other = await h.deliver("workflow_run", workflow_run_completed(name="Lint"), delivery="d-1")
        failed = await h.deliver("workflow_run", workflow_run_completed(conclusion="failure"), delivery="d-2")
        ok = await h.deliver("workflow_run", workflow_run_completed(), delivery="d-3")
        assert other.status_code == 200 and "GITHUB_DEPLOY_WORKFLOWS" in other.json()["ignored"]
        assert failed.status_code == 200 and "ignored" in failed.json()
        assert ok.status_code == 202
        await eventually(lambda: ("commit", "success") in h.github.states(), timeout_s=10)
    assert runpod_standin.state.patches == [{"image": f"ghcr.io/octo-org/pete-worker:{SHA}"}]


async def test_unsigned_or_wrongly_signed_deliveries_get_401_and_deploy_nothing(
    tmp_path: Path, openai_standin: Any, runpod_standin: RunPodStandIn
) -> None:
    async with hook(tmp_path, openai_standin, runpod_standin) as h:
        wrong = await h.deliver("release", release_published(), secret="guess")
        body = json.dumps(release_published()).encode()
        unsigned = await h.client.post(
            "/github/webhook", content=body, headers={"X-GitHub-Event": "release", "X-GitHub-Delivery": "d-9"}
        )
        assert wrong.status_code == 401 and unsigned.status_code == 401
        assert "secret" not in wrong.text.lower().replace("the secret", "")
    assert runpod_standin.state.patches == [] and h.github.calls == []
    assert runpod_standin.state.endpoint["image"] == FIRST_IMAGE


async def test_without_a_secret_the_webhook_refuses_everything(
    tmp_path: Path, openai_standin: Any, runpod_standin: RunPodStandIn
) -> None:
    async with hook(tmp_path, openai_standin, runpod_standin, github_webhook_secret=None) as h:
        response = await h.deliver("release", release_published())
        assert response.status_code == 503 and "GITHUB_WEBHOOK_SECRET" in response.text
    assert runpod_standin.state.patches == []


async def test_ping_is_answered_and_a_redelivery_is_ignored(
    tmp_path: Path, openai_standin: Any, runpod_standin: RunPodStandIn
) -> None:
    async with hook(tmp_path, openai_standin, runpod_standin) as h:
        ping = await h.deliver("ping", {"zen": "Keep it logically awesome.", "hook_id": 1}, delivery="p-1")
        assert ping.status_code == 200 and ping.json()["event"] == "ping"
        first = await h.deliver("release", release_published(), delivery="same")
        again = await h.deliver("release", release_published(), delivery="same")
        assert first.status_code == 202 and again.json()["duplicate"] is True
        await eventually(lambda: ("commit", "success") in h.github.states(), timeout_s=10)
        issue = await h.deliver("issues", {"action": "opened", "repository": {"full_name": REPO}}, delivery="i-1")
        assert issue.status_code == 200 and "does not deploy" in issue.json()["ignored"]
    assert len(runpod_standin.state.patches) == 1


async def test_a_release_below_the_eval_gate_is_refused_and_reported_as_a_failure(
    tmp_path: Path, openai_standin: Any, runpod_standin: RunPodStandIn
) -> None:
    async with hook(tmp_path, openai_standin, runpod_standin, eval_min_score=0.8) as h:
        h.core.active_alias = "jamie"
        row = EvalRunRow("r1", 0.0, "jamie", "tenant_calls", 1, 10, 4, 0.55, {"ticket": 0.3}, ["maint-x: ticket"])
        await EvalScoreBook(h.core.store).record(row)
        response = await h.deliver("release", release_published())
        assert response.status_code == 422
        message = response.json()["error"]["message"]
        assert "0.55" in message and "ticket 30%" in message and "maint-x: ticket" in message
        await eventually(lambda: ("commit", "failure") in h.github.states(), timeout_s=10)
    assert runpod_standin.state.patches == []
