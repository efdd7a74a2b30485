"""Metrics: recording, histograms, rollups, the live snapshot, Prometheus text and the
background service that keeps them current.
"""

from __future__ import annotations

from ._fleet import fleet_snapshot
from ._prometheus import CONTENT_TYPE_LATEST, prometheus_name, prometheus_registry, render_prometheus
from ._recorder import Metrics
from ._records import RequestRecord
from .service import run_metrics_service
from .snapshot import AlertEntry, StorageFigures
from .telemetry import Telemetry, face_span, span_attributes

__all__ = [
    "CONTENT_TYPE_LATEST",
    "AlertEntry",
    "Metrics",
    "RequestRecord",
    "StorageFigures",
    "Telemetry",
    "face_span",
    "fleet_snapshot",
    "prometheus_name",
    "prometheus_registry",
    "render_prometheus",
    "run_metrics_service",
    "span_attributes",
]
