"""Pete's exceptions: one tree, each with a stable `code` and a message a person can act on.

    PeteError
     ├── ConfigError             a setting is missing or wrong ("set RUNPOD_API_KEY")
     ├── InputError              the caller sent something unusable
     │    ├── NotFound           unknown model, job, conversation
     │    ├── JsonInputError     the body is not strict JSON (bad UTF-8, NaN, too deep)
     │    └── BodyTooLarge       the body is over the route's limit (413)
     ├── ProviderError           a model provider failed
     │    ├── ProviderTimeout    no answer within the budget
     │    ├── ProviderUnavailable  cannot be reached, refused, or circuit open
     │    └── JobFailed          the RunPod job ran and failed (carries the worker's error)
     ├── AuthError               a credential was refused (ours, or upstream's)
     ├── DeployError             a RunPod deploy or rollback failed
     ├── QualityGateRefused      a switch or deploy failed the eval-score gate (EVAL_MIN_SCORE)
     └── StoreError              the store (SQLite or PostgreSQL) could not read or write
          └── StoreUnavailable   the database cannot be reached right now

Faces map these once: MCP tools raise `ToolError(str(err))`, Starlette handlers answer JSON
with `err.status`, the worker yields the job contract's `JobError`. Messages never contain
secrets.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BodyTooLarge",
    "ConfigError",
    "DeployError",
    "InputError",
    "JobFailed",
    "JsonInputError",
    "NotFound",
    "PeteError",
    "ProviderError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "QualityGateRefused",
    "StoreError",
    "StoreUnavailable",
]


class PeteError(Exception):
    code = "pete_error"
    status = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class ConfigError(PeteError):
    code = "config_error"
    status = 500


class InputError(PeteError):
    code = "bad_input"
    status = 400


class NotFound(InputError):
    code = "not_found"
    status = 404


class JsonInputError(InputError):
    """The body is not strict JSON (bad UTF-8, NaN, too deep, ...); `path` names where, when known."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class BodyTooLarge(InputError):
    """The body is over the route's limit (HTTP 413)."""

    code = "body_too_large"
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is over this route's limit of {limit} bytes.")
        self.limit = limit


class AuthError(PeteError):
    code = "unauthorized"
    status = 401


class Cancelled(PeteError):
    """A request an operator cancelled (dashboard or MCP); never failed over to another provider."""

    code = "cancelled"
    status = 409


class ProviderError(PeteError):
    code = "provider_error"
    status = 502

    def __init__(self, message: str, *, provider: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.provider = provider


class ProviderTimeout(ProviderError):
    code = "provider_timeout"
    status = 504


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"
    status = 503


class JobFailed(ProviderError):
    code = "job_failed"
    status = 502

    def __init__(self, message: str, *, provider: str = "", job_id: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, provider=provider, hint=hint)
        self.job_id = job_id


class DeployError(PeteError):
    code = "deploy_failed"
    status = 502


class StoreError(PeteError):
    code = "store_error"
    status = 500


class StoreUnavailable(StoreError):
    code = "store_unavailable"
    status = 503


class QualityGateRefused(PeteError):
    """A model's latest saved eval score is below EVAL_MIN_SCORE (or missing where one is required)."""

    code = "quality_gate"
    status = 409
