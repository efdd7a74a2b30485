"""Alerts: rules over the core's metrics and events, delivered to Slack, GitHub and MCP clients.

`run_alerts(core)` runs the engine with `default_rules(settings)` and
`sinks_from_settings(...)`; each sink is one module behind the `AlertSink` protocol.
"""

from .base import Alert, AlertDeliveryError, AlertSink, Finding, Notice
from .engine import AlertBook, AlertEngine, run_alerts, sinks_from_settings
from .github import GitHubIssueSink
from .mcp_notify import EventBusSink
from .rules import (
    DeployFailed,
    EndpointDown,
    ErrorRateHigh,
    FailoverActive,
    NoWorkersWhileQueued,
    Rule,
    TtftOverBudget,
    default_rules,
)
from .slack import SlackWebhookSink, slack_message

__all__ = [
    "Alert",
    "AlertBook",
    "AlertDeliveryError",
    "AlertEngine",
    "AlertSink",
    "DeployFailed",
    "EndpointDown",
    "ErrorRateHigh",
    "EventBusSink",
    "FailoverActive",
    "Finding",
    "GitHubIssueSink",
    "NoWorkersWhileQueued",
    "Notice",
    "Rule",
    "SlackWebhookSink",
    "TtftOverBudget",
    "default_rules",
    "run_alerts",
    "sinks_from_settings",
    "slack_message",
]
