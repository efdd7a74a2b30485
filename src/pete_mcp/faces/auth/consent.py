"""The consent page: where the operator signs in and approves a client's access (no JavaScript).

`GET /authorize/consent?request=…` (where the provider's `authorize` sent the browser) shows the
client, where it will send the answer, and the scopes it asked for as check boxes; the operator
signs in with a `pete users` account and approves or denies. CSRF: a fresh token per page, in a
`SameSite=Strict` cookie and in the form, and its hash on the pending request; all three must
agree. The page cannot be framed. A denial redirects with `error=access_denied`.
"""

from __future__ import annotations

import html
import logging
from typing import Any
from urllib.parse import urlsplit

from mcp.server.auth.provider import construct_redirect_uri
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ._records import new_secret
from .provider import CODE_TTL_S, PeteAuthProvider
from .scopes import SCOPE_HELP
from .users import Operators, SignInRefused

__all__ = ["ConsentPage"]

log = logging.getLogger(__name__)

COOKIE = "pete_consent_csrf"
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#222}"
    "label{display:block;margin:.6rem 0}input[type=text],input[type=password]{width:100%;padding:.4rem}"
    ".err{color:#a00}.muted{color:#666;font-size:.9rem}button{padding:.5rem 1rem;margin-right:.5rem}"
)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    doc = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<meta name=viewport content='width=device-width'><style>{STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(doc, status_code=status, headers=HEADERS)


def _gone() -> HTMLResponse:
    return _page(
        "Sign-in link expired", "<p>This sign-in link expired or was already used. Start again from your app.</p>", 400
    )


class ConsentPage:
    def __init__(self, provider: PeteAuthProvider, operators: Operators) -> None:
        self.provider = provider
        self.operators = operators
        self.secure_cookie = provider.issuer.startswith("https://")

    async def show(self, request: Request) -> Response:
        request_id = request.query_params.get("request", "")
        pending = await self.provider.pending(request_id)
        if pending is None:
            return _gone()
        return await self._form(request_id, pending)

    async def _form(self, request_id: str, pending: dict[str, Any], error: str = "", status: int = 200) -> Response:
        client = await self.provider.get_client(pending["client_id"])
        if client is None:
            return _gone()
        csrf = new_secret()
        await self.provider.records.set_csrf(request_id, csrf)
        params = pending["params"]
        name = html.escape(client.client_name or "An unnamed app")
        client_id = html.escape(client.client_id)
        to = html.escape(urlsplit(params["redirect_uri"]).netloc or params["redirect_uri"])
        boxes = "".join(
            f"<label><input type=checkbox name=scope value='{html.escape(s)}' checked> <b>{html.escape(s)}</b> — "
            f"{html.escape(SCOPE_HELP.get(s, ''))}</label>"
            for s in params["scopes"]
        )
        body = (
            f"<p><b>{name}</b> wants to use Pete.</p>"
            f"<p class=muted>Client id: {client_id}<br>It will receive the answer at: {to}</p>"
            + (f"<p class=err role=alert>{html.escape(error)}</p>" if error else "")
            + "<form method=post action='/authorize/consent'>"
            f"<input type=hidden name=request value='{html.escape(request_id)}'>"
            f"<input type=hidden name=csrf value='{csrf}'>"
            f"<fieldset><legend>Allow</legend>{boxes}</fieldset>"
            "<label>Operator name <input type=text name=name autocomplete=username required></label>"
            "<label>Password <input type=password name=password autocomplete=current-password required></label>"
            "<button type=submit name=action value=approve>Sign in and allow</button>"
            "<button type=submit name=action value=deny formnovalidate>Deny</button></form>"
        )
        response = _page("Allow access to Pete?", body, status)
        response.set_cookie(
            COOKIE, csrf, httponly=True, samesite="strict", secure=self.secure_cookie, path="/authorize"
        )
        return response

    async def answer(self, request: Request) -> Response:
        form = await request.form()
        field = {k: v for k, v in form.items() if isinstance(v, str)}
        request_id = field.get("request", "")
        pending = await self.provider.pending(request_id)
        if pending is None:
            return _gone()
        csrf = field.get("csrf", "")
        if not csrf or request.cookies.get(COOKIE) != csrf or not self.provider.csrf_matches(pending, csrf):
            log.warning("consent form with a bad CSRF token from %s", _address(request))
            return _page("Form expired", "<p>This form expired. Go back and reload the page.</p>", 403)
        params = pending["params"]
        if field.get("action") != "approve":
            await self.provider.records.close_request(request_id)
            log.info("operator denied client %s", pending["client_id"])
            return self._back(params, error="access_denied", error_description="The operator denied access.")
        try:
            operator = await self.operators.sign_in(field.get("name", ""), field.get("password", ""), _address(request))
        except SignInRefused as exc:
            if exc.locked:
                response = _page("Too many attempts", f"<p>{html.escape(str(exc))}</p>", 429)
                response.headers["Retry-After"] = str(exc.retry_after_s)
                return response
            return await self._form(request_id, pending, str(exc), 401)
        chosen = {str(s) for s in form.getlist("scope")}
        granted = [s for s in params["scopes"] if s in chosen and s in operator.scopes]
        if not granted:
            await self.provider.records.close_request(request_id)
            return self._back(params, error="access_denied", error_description="No scope was approved.")
        code = new_secret("pc_")
        if not await self.provider.records.issue_code(request_id, code, operator.name, granted, CODE_TTL_S):
            return _gone()
        log.info("operator %s approved client %s for %s", operator.name, pending["client_id"], " ".join(granted))
        return self._back(params, code=code)

    def _back(self, params: dict[str, Any], **answer: str) -> RedirectResponse:
        url = construct_redirect_uri(params["redirect_uri"], **answer, state=params["state"], iss=self.provider.issuer)
        response = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
        response.delete_cookie(COOKIE, path="/authorize")
        return response


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
