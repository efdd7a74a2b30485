"""The emulator's own errors: it imports nothing of Pete's but the job contract.

LocalPodError
├── InvalidRequest   a fault or admin request that cannot be carried out (400)
├── NotRunning       no such running job or worker (404)
└── InvalidConfig    settings the endpoint cannot run with
"""

from __future__ import annotations

__all__ = ["InvalidConfig", "InvalidRequest", "LocalPodError", "NotRunning"]


class LocalPodError(Exception):
    """Base of the emulator's errors; the message says what to change."""


class InvalidRequest(LocalPodError, ValueError):
    pass


class NotRunning(LocalPodError, LookupError):
    pass


class InvalidConfig(LocalPodError, ValueError):
    pass
