"""RunPod: the httpx client for the serverless endpoint API (one public door), the client of a
load-balancing endpoint (`lb`), the REST management API and keep-warm.
"""

from __future__ import annotations

from ._endpoint_state import EndpointState, readiness_of
from .client import EndpointHealth, RunPodClient, runpod_client_from_settings
from .keepwarm import KeepWarm, KeepWarmSchedule
from .lb import LBCall, RunPodLBClient, lb_client_from_settings
from .rest import RunPodRest, rest_from_settings

__all__ = [
    "EndpointHealth",
    "EndpointState",
    "KeepWarm",
    "KeepWarmSchedule",
    "LBCall",
    "RunPodClient",
    "RunPodLBClient",
    "RunPodRest",
    "lb_client_from_settings",
    "readiness_of",
    "rest_from_settings",
    "runpod_client_from_settings",
]
