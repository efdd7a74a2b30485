"""`POST /github/webhook`: a published release or a successful CI run deploys the worker image it names.

Order of work: refuse everything while GITHUB_WEBHOOK_SECRET is unset (503); verify
`X-Hub-Signature-256` (HMAC-SHA256 of the raw body, compared in constant time; 401 and nothing
done otherwise); answer `ping`; ignore a delivery id already handled (`X-GitHub-Delivery`,
persisted in `github_deliveries`); then for `release` / `published` (GITHUB_DEPLOY_ON_RELEASE)
or `workflow_run` / `completed` with conclusion `success` from a workflow named in
GITHUB_DEPLOY_WORKFLOWS, deploy DEPLOY_IMAGE_TEMPLATE filled with the tag (`{tag}`: the
release tag, or the run's head SHA; `{sha}`: the commit) through the same gated `Deployer` the
MCP tool and dashboard use. The answer (202) does not wait for the rollout: a background task
follows it and reports it back to GitHub as a deployment status and a commit status
(GITHUB_TOKEN; GITHUB_API_URL is the only host it calls). Everything else: 200, ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from anyio.abc import TaskGroup
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pete_mcp.core import PeteError, Settings, Store
from pete_mcp.gateway import Core
from pete_mcp.ops import Deployer, gated_deployer
from pete_mcp.runpod import rest_from_settings

from ._face import Face

__all__ = ["DeployRequest", "GitHubReporter", "github_webhook_face", "verify_github_signature"]

log = logging.getLogger(__name__)

STATUS_CONTEXT = "pete/deploy"


def verify_github_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """True when `header` is `sha256=<hex HMAC-SHA256 of body>` under `secret` (constant-time)."""
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode())


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


@dataclass(frozen=True, slots=True)
class DeployRequest:
    """What a delivery asks for: the image, the commit or tag, and where to report."""

    image: str
    ref: str  # what GitHub's deployment is created for (the tag, or the commit SHA)
    sha: str  # the commit status target ("" when GitHub resolves it from `ref`)
    repo: str  # owner/name
    reason: str


def deploy_request(settings: Settings, event: str, payload: dict[str, Any]) -> DeployRequest | str:
    """The deploy a delivery asks for, or the reason it asks for none."""
    repo = str((payload.get("repository") or {}).get("full_name") or "")
    if settings.github_repo and repo != settings.github_repo:
        return f"repository {repo!r} is not GITHUB_REPO"
    if not settings.deploy_image_template:
        return "DEPLOY_IMAGE_TEMPLATE is not set"
    action = payload.get("action")
    if event == "release":
        release = payload.get("release") or {}
        if action != "published" or not settings.github_deploy_on_release:
            return f"release {action} does not deploy"
        if release.get("draft"):
            return "a draft release does not deploy"
        tag = str(release.get("tag_name") or "")
        if not tag:
            return "the release has no tag"
        image = settings.deploy_image_template.format(tag=tag, sha=tag)
        return DeployRequest(image, tag, "", repo, f"release {tag}")
    if event == "workflow_run":
        run = payload.get("workflow_run") or {}
        name = str(run.get("name") or (payload.get("workflow") or {}).get("name") or "")
        allowed = [w.strip() for w in settings.github_deploy_workflows.split(",") if w.strip()]
        if action != "completed" or run.get("conclusion") != "success":
            return f"workflow run {action}/{run.get('conclusion')} does not deploy"
        if name not in allowed:
            return f"workflow {name!r} is not in GITHUB_DEPLOY_WORKFLOWS"
        sha = str(run.get("head_sha") or "")
        if len(sha) != 40:
            return "the workflow run names no commit"
        image = settings.deploy_image_template.format(tag=sha, sha=sha)
        return DeployRequest(image, sha, sha, repo, f"workflow {name} run {run.get('id')}")
    return f"event {event!r} does not deploy"


class GitHubReporter:
    """Reports a deploy back to GitHub: a deployment with statuses, and a commit status."""

    def __init__(self, http: httpx.AsyncClient, *, api_url: str, token: str | None, environment: str) -> None:
        self.http = http
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.environment = environment

    @property
    def enabled(self) -> bool:
        return self.token is not None

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(f"{self.api_url}{path}", json=body, headers=self._headers())
        if response.status_code >= 300:
            raise PeteError(f"GitHub answered {response.status_code} to POST {path}.")
        return response.json()

    async def start(self, req: DeployRequest) -> tuple[int | None, str]:
        """Create the deployment; returns (its id, the commit SHA to put statuses on)."""
        if not self.enabled:
            return None, req.sha
        body = {
            "ref": req.ref,
            "environment": self.environment,
            "auto_merge": False,
            "required_contexts": [],
            "description": f"Pete deploys {req.image}"[:140],
            "payload": {"image": req.image},
        }
        created = await self._post(f"/repos/{req.repo}/deployments", body)
        return int(created["id"]), req.sha or str(created.get("sha") or "")

    async def status(self, req: DeployRequest, deployment: int | None, sha: str, state: str, text: str) -> None:
        """`state` is a deployment state (in_progress, success, failure, error); the commit status follows it."""
        if not self.enabled:
            return
        if deployment is not None:
            await self._post(
                f"/repos/{req.repo}/deployments/{deployment}/statuses",
                {"state": state, "description": text[:140], "environment": self.environment},
            )
        if sha:
            commit_state = {"in_progress": "pending", "queued": "pending"}.get(state, state)
            await self._post(
                f"/repos/{req.repo}/statuses/{sha}",
                {"state": commit_state, "description": text[:140], "context": STATUS_CONTEXT},
            )


class _Webhook:
    def __init__(self, core: Core, get_deployer: Callable[[], Deployer], reporter: GitHubReporter) -> None:
        self.core = core
        self.settings = core.settings
        self.get_deployer = get_deployer
        self.reporter = reporter
        self.tasks: TaskGroup | None = None

    async def handle(self, request: Request) -> JSONResponse:
        secret = self.settings.github_webhook_secret
        if secret is None:
            return _error(503, "webhook_disabled", "The GitHub webhook is off: set GITHUB_WEBHOOK_SECRET.")
        body = await request.body()
        if not verify_github_signature(
            secret.get_secret_value().encode(), body, request.headers.get("x-hub-signature-256")
        ):
            return _error(401, "bad_signature", "X-Hub-Signature-256 is missing or does not match the secret.")
        event = request.headers.get("x-github-event", "")
        if event == "ping":
            return JSONResponse({"ok": True, "event": "ping"})
        try:
            payload = json.loads(body)
        except ValueError:
            return _error(400, "bad_json", "The body is not valid JSON.")
        if not isinstance(payload, dict):
            return _error(400, "bad_json", "The body must be a JSON object.")
        delivery = request.headers.get("x-github-delivery", "")
        if not delivery:
            return _error(400, "missing_delivery", "X-GitHub-Delivery is missing.")
        if not await _claim_delivery(self.core.store, delivery, event):
            return JSONResponse({"ok": True, "duplicate": True, "delivery": delivery})
        wanted = deploy_request(self.settings, event, payload)
        if isinstance(wanted, str):
            await _finish_delivery(self.core.store, delivery, f"ignored: {wanted}")
            return JSONResponse({"ok": True, "ignored": wanted})
        try:
            deployer = self.get_deployer()
            record = await deployer.start(wanted.image)
        except PeteError as exc:
            await _finish_delivery(self.core.store, delivery, f"refused: {exc}")
            self._spawn(self._report_refusal, wanted, str(exc))
            return JSONResponse(
                {"ok": False, "deployed": False, "error": {"code": exc.code, "message": str(exc)}}, status_code=422
            )
        await _finish_delivery(self.core.store, delivery, f"deploy #{record.id} {wanted.image}")
        self._spawn(self._follow, deployer, record, wanted)
        return JSONResponse({"ok": True, "deploy_id": record.id, "image": wanted.image}, status_code=202)

    def _spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        if self.tasks is not None:
            self.tasks.start_soon(fn, *args)

    async def _report_refusal(self, req: DeployRequest, reason: str) -> None:
        try:
            deployment, sha = await self.reporter.start(req)
            await self.reporter.status(req, deployment, sha, "failure", f"Refused: {reason}")
        except (PeteError, httpx.HTTPError) as exc:
            log.warning("could not report the refused deploy to GitHub: %s", exc)

    async def _follow(self, deployer: Deployer, record: Any, req: DeployRequest) -> None:
        deployment, sha = None, req.sha
        try:
            deployment, sha = await self.reporter.start(req)
            await self.reporter.status(req, deployment, sha, "in_progress", f"Rolling out {req.image}")
        except (PeteError, httpx.HTTPError) as exc:
            log.warning("could not report deploy #%s to GitHub: %s", record.id, exc)
        try:
            state = await deployer.follow(record, timeout_s=self.settings.github_deploy_follow_s)
            final, text = (
                ("success", f"{req.image} on every worker")
                if state.finished
                else ("error", f"rollout not finished after {self.settings.github_deploy_follow_s:g} s")
            )
        except PeteError as exc:
            final, text = "failure", f"Following the rollout failed: {exc}"
        try:
            await self.reporter.status(req, deployment, sha, final, text)
        except (PeteError, httpx.HTTPError) as exc:
            log.warning("could not report deploy #%s to GitHub: %s", record.id, exc)


async def _claim_delivery(store: Store, delivery: str, event: str) -> bool:
    """Record the delivery id; False when it was already handled (GitHub redelivers)."""

    def txn(conn: Any) -> bool:
        cursor = conn.execute(
            "INSERT INTO github_deliveries(delivery_id, event, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (delivery, event, time.time()),
        )
        return cursor.rowcount == 1

    return await store.write(txn)


async def _finish_delivery(store: Store, delivery: str, outcome: str) -> None:
    await store.execute("UPDATE github_deliveries SET outcome = ? WHERE delivery_id = ?", (outcome[:300], delivery))


def github_webhook_face(core: Core, *, deployer: Deployer | None = None, http: httpx.AsyncClient | None = None) -> Face:
    """The webhook face; `deployer` defaults to the gated RunPod deployer, `http` (GitHub) to the core's client."""
    settings = core.settings
    built: list[Deployer] = [deployer] if deployer is not None else []

    def get_deployer() -> Deployer:
        if not built:
            built.append(gated_deployer(core, rest_from_settings(settings, core.http)))
        return built[0]

    token = settings.github_token.get_secret_value() if settings.github_token else None
    reporter = GitHubReporter(
        http or core.http, api_url=settings.github_api_url, token=token, environment=settings.github_deploy_environment
    )
    hook = _Webhook(core, get_deployer, reporter)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            hook.tasks = tasks
            yield
            tasks.cancel_scope.cancel()

    return Face("github", [Route("/github/webhook", hook.handle, methods=["POST"])], lifespan=lifespan)
