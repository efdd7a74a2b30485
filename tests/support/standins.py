"""Local stand-ins for Slack and GitHub, following their published API shapes, plus an in-loop server.

- Slack incoming webhook: `POST /services/T…/B…/X…` with a JSON body holding `text` and/or
  `blocks`; answers `200 ok`, or `400 invalid_payload` / `400 no_text` like Slack does.
- GitHub REST (issues): `POST /repos/{o}/{r}/issues` → 201 issue with `number`;
  `GET /repos/{o}/{r}/issues?state=&labels=`; `POST …/issues/{n}/comments` → 201;
  `PATCH …/issues/{n}` (`state`, `state_reason`) → 200. Requests must carry
  `Authorization: Bearer <token>` (else 401 "Bad credentials"), `Accept:
  application/vnd.github+json` and `X-GitHub-Api-Version: 2022-11-28` (else 400).

`serving(app)` runs any ASGI app under uvicorn on a free loopback port inside the test's own
event loop, so the test, the app and the core share one loop.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from pete_mcp.local.embedded_server import EmbeddedServer

SLACK_PATH = "/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX"
GITHUB_TOKEN = "ghp_standin_token_0123456789"
GITHUB_REPO = "pete-ops/pete"


@asynccontextmanager
async def serving(app: Any, *, lifespan: Literal["auto", "on", "off"] = "on") -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1:<free port> in this event loop; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan=lifespan, ws="none", timeout_graceful_shutdown=2
    )
    server = EmbeddedServer(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(30):
            while not server.started:
                if server.should_exit:
                    raise RuntimeError("the test server stopped while starting (see the log)")
                await anyio.sleep(0.02)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
    sock.close()


@dataclass
class Standins:
    """What the stand-ins received. `url` is their base; use `slack_url` and `url` as the GitHub API base."""

    url: str = ""
    token: str = GITHUB_TOKEN
    repo: str = GITHUB_REPO
    slack_messages: list[dict[str, Any]] = field(default_factory=list)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[str]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    @property
    def slack_url(self) -> str:
        return self.url + SLACK_PATH

    def created_issues(self) -> int:
        return sum(call.startswith("POST /repos/") and call.endswith("/issues") for call in self.calls)


def build_standins_app(record: Standins) -> Starlette:
    async def slack(request: Request) -> Response:
        record.calls.append(f"POST {request.url.path}")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return PlainTextResponse("invalid_payload", status_code=400)
        if not isinstance(body, dict):
            return PlainTextResponse("invalid_payload", status_code=400)
        if not body.get("text") and not body.get("blocks"):
            return PlainTextResponse("no_text", status_code=400)
        if "blocks" in body and not isinstance(body["blocks"], list):
            return PlainTextResponse("invalid_blocks", status_code=400)
        record.slack_messages.append(body)
        return PlainTextResponse("ok")

    def refuse(request: Request) -> Response | None:
        record.calls.append(f"{request.method} {request.url.path}")
        if request.headers.get("authorization") != f"Bearer {record.token}":
            return JSONResponse(
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}, status_code=401
            )
        if request.headers.get("accept") != "application/vnd.github+json":
            return JSONResponse({"message": "Unsupported Accept header"}, status_code=400)
        if request.headers.get("x-github-api-version") != "2022-11-28":
            return JSONResponse({"message": "Unsupported API version"}, status_code=400)
        if f"{request.path_params['owner']}/{request.path_params['repo']}" != record.repo:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        return None

    def issue_or_404(request: Request) -> dict[str, Any] | Response:
        issue = record.issues.get(int(request.path_params["number"]))
        return issue if issue is not None else JSONResponse({"message": "Not Found"}, status_code=404)

    async def issues(request: Request) -> Response:
        if (refused := refuse(request)) is not None:
            return refused
        if request.method == "GET":
            state = request.query_params.get("state", "open")
            wanted = {label for label in request.query_params.get("labels", "").split(",") if label}
            found = [
                issue
                for issue in sorted(record.issues.values(), key=lambda i: -i["number"])
                if state in ("all", issue["state"]) and wanted <= {label["name"] for label in issue["labels"]}
            ]
            return JSONResponse(found)
        body = await request.json()
        if not isinstance(body.get("title"), str) or not body["title"]:
            return JSONResponse(
                {
                    "message": "Validation Failed",
                    "errors": [{"resource": "Issue", "field": "title", "code": "missing_field"}],
                },
                status_code=422,
            )
        number = len(record.issues) + 1
        issue = {
            "id": 1000 + number,
            "number": number,
            "title": body["title"],
            "body": body.get("body") or "",
            "state": "open",
            "state_reason": None,
            "labels": [{"name": name} for name in body.get("labels", [])],
            "comments": 0,
            "html_url": f"https://github.com/{record.repo}/issues/{number}",
        }
        record.issues[number] = issue
        return JSONResponse(issue, status_code=201)

    async def issue(request: Request) -> Response:
        if (refused := refuse(request)) is not None:
            return refused
        found = issue_or_404(request)
        if isinstance(found, Response):
            return found
        body = await request.json()
        for key in ("state", "state_reason", "title", "body"):
            if key in body:
                found[key] = body[key]
        return JSONResponse(found)

    async def comments(request: Request) -> Response:
        if (refused := refuse(request)) is not None:
            return refused
        found = issue_or_404(request)
        if isinstance(found, Response):
            return found
        body = await request.json()
        if not isinstance(body.get("body"), str) or not body["body"]:
            return JSONResponse({"message": "Validation Failed"}, status_code=422)
        record.comments.setdefault(found["number"], []).append(body["body"])
        found["comments"] += 1
        return JSONResponse({"id": 5000 + found["comments"], "body": body["body"]}, status_code=201)

    return Starlette(
        routes=[
            Route("/services/{a}/{b}/{c}", slack, methods=["POST"]),
            Route("/repos/{owner}/{repo}/issues", issues, methods=["GET", "POST"]),
            Route("/repos/{owner}/{repo}/issues/{number:int}", issue, methods=["PATCH"]),
            Route("/repos/{owner}/{repo}/issues/{number:int}/comments", comments, methods=["POST"]),
        ]
    )


@pytest.fixture
async def alert_standins() -> AsyncIterator[Standins]:
    """Slack and GitHub stand-ins on a free loopback port, for the test's lifetime."""
    record = Standins()
    async with serving(build_standins_app(record), lifespan="off") as url:
        record.url = url
        yield record
