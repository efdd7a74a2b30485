"""Sign-in for Pete's faces: the built-in OAuth 2.1 server (MCP SDK handlers over the store), the
consent page, operator accounts, Client ID Metadata Documents, external-IdP JWTs, and the one
scope table every tool and dashboard action is checked against.
"""

from __future__ import annotations

from .routes import auth_face, build_provider, protected_resource_routes
from .scopes import ALL_SCOPES, DASHBOARD_SCOPES, TOOL_SCOPES, ScopeGuard, missing_scope_message
from .users import Operator, Operators, SignInRefused
from .verifiers import AuthPlan, auth_plan, build_verifier

__all__ = [
    "ALL_SCOPES",
    "DASHBOARD_SCOPES",
    "TOOL_SCOPES",
    "AuthPlan",
    "Operator",
    "Operators",
    "ScopeGuard",
    "SignInRefused",
    "auth_face",
    "auth_plan",
    "build_provider",
    "build_verifier",
    "missing_scope_message",
    "protected_resource_routes",
]
