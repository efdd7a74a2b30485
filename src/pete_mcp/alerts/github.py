"""GitHub sink: one issue per alert — opened when it fires, commented on repeats, closed on recovery.

Uses the REST API (`POST /repos/{o}/{r}/issues`, `POST …/issues/{n}/comments`,
`PATCH …/issues/{n}` with `state: closed`, `GET …/issues?state=open&labels=…`) with the
headers GitHub documents (`Authorization: Bearer`, `Accept: application/vnd.github+json`,
`X-GitHub-Api-Version: 2022-11-28`). Each issue body carries a hidden marker with the alert
key, so after a restart a firing alert finds its open issue instead of opening a second one.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from pete_mcp.core import ConfigError

from .base import AlertDeliveryError, Notice

__all__ = ["GitHubIssueSink", "issue_marker"]

API_VERSION = "2022-11-28"
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def issue_marker(key: str) -> str:
    return f"<!-- pete-alert-key: {key} -->"


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


class GitHubIssueSink:
    name = "github"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        repo: str,
        token: str,
        api_url: str = "https://api.github.com",
        labels: tuple[str, ...] = ("pete-alert",),
        timeout_s: float = 10.0,
    ) -> None:
        """Raises ConfigError when `repo` is not `owner/name`."""
        if not _REPO.match(repo):
            raise ConfigError(f"GITHUB_REPO must be owner/name, not {repo!r}.")
        self._http = http
        self._base = f"{api_url.rstrip('/')}/repos/{repo}"
        self._labels = labels or ("pete-alert",)
        self._timeout = timeout_s
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "pete-alerts",
        }
        self.issues: dict[str, int] = {}  # alert key → open issue number

    async def send(self, notice: Notice) -> None:
        alert = notice.alert
        f = alert.finding
        number = self.issues.get(alert.key) or await self._find_open(alert.key)
        if notice.kind == "fired" and number is None:
            body = (
                f"{issue_marker(alert.key)}\n**{f.title}** (rule `{f.rule}`, severity {f.severity})\n\n"
                f"{f.detail}\n\nFiring since {_when(alert.since)}. Pete closes this issue when it recovers."
            )
            created = await self._call(
                "POST", "/issues", {"title": f"[pete] {f.title}", "body": body, "labels": list(self._labels)}
            )
            self.issues[alert.key] = int(created["number"])
            return
        if number is None:
            return  # nothing open to comment on or close (closed by hand, or never opened)
        self.issues[alert.key] = number
        if notice.kind == "resolved":
            lasted = max(0.0, notice.at - alert.since)
            await self._comment(number, f"Resolved at {_when(notice.at)} after {lasted:.0f} s.\n\nWas: {f.detail}")
            await self._call("PATCH", f"/issues/{number}", {"state": "closed", "state_reason": "completed"})
            self.issues.pop(alert.key, None)
        else:
            await self._comment(number, f"Still firing at {_when(notice.at)}: {f.detail}")

    async def _comment(self, number: int, body: str) -> None:
        await self._call("POST", f"/issues/{number}/comments", {"body": body})

    async def _find_open(self, key: str) -> int | None:
        marker = issue_marker(key)
        params = {"state": "open", "labels": self._labels[0], "per_page": "100"}
        issues = await self._call("GET", "/issues", params=params)
        for issue in issues if isinstance(issues, list) else []:
            if "pull_request" not in issue and marker in (issue.get("body") or ""):
                return int(issue["number"])
        return None

    async def _call(
        self, method: str, path: str, json: dict[str, Any] | None = None, *, params: dict[str, str] | None = None
    ) -> Any:
        try:
            response = await self._http.request(
                method, self._base + path, json=json, params=params, headers=self._headers, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            raise AlertDeliveryError(f"GitHub could not be reached ({type(exc).__name__}).") from None
        if response.status_code >= 400:
            try:
                message = str(response.json().get("message", ""))[:200]
            except ValueError:
                message = ""
            hint = "Check GITHUB_TOKEN and GITHUB_REPO." if response.status_code in (401, 403, 404) else None
            raise AlertDeliveryError(
                f"GitHub answered {response.status_code} to {method} {path}: {message}",
                hint=hint,
                status_code=response.status_code,
            )
        return response.json() if response.content else None
