"""The worker's exceptions: each carries the job contract's `ErrorCode` it is reported as.

    WorkerError                  INTERNAL
     ├── BadInput                BAD_INPUT        the job input is unusable
     │    └── ModelNotFound      MODEL_NOT_FOUND  the model server does not have that model
     └── ModelServerError        MODEL_SERVER_ERROR
          ├── ModelServerTimeout       TIMEOUT
          └── ModelServerUnavailable   MODEL_SERVER_UNAVAILABLE

The worker ships alone in its image and imports only the job contract from Pete, so it has its
own small tree; the handler turns any of them into the contract's `JobError`, which the gateway
decodes into its own errors. Messages never contain secrets.
"""

from __future__ import annotations

from pete_mcp.contract import ErrorCode

__all__ = [
    "BadInput",
    "ModelNotFound",
    "ModelServerError",
    "ModelServerTimeout",
    "ModelServerUnavailable",
    "WorkerError",
]


class WorkerError(Exception):
    code = ErrorCode.INTERNAL

    def __init__(self, message: str, *, provider: str = "", hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class BadInput(WorkerError):
    code = ErrorCode.BAD_INPUT


class ModelNotFound(BadInput):
    code = ErrorCode.MODEL_NOT_FOUND


class ModelServerError(WorkerError):
    code = ErrorCode.MODEL_SERVER_ERROR


class ModelServerTimeout(ModelServerError):
    code = ErrorCode.TIMEOUT


class ModelServerUnavailable(ModelServerError):
    code = ErrorCode.MODEL_SERVER_UNAVAILABLE
