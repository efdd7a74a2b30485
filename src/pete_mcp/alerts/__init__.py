"""Alerts: rules over the core's metrics and events, delivered to Slack, GitHub and MCP clients;
and paging a person about an emergency (`Pager`, through the same sinks plus a paging webhook).

`run_alerts(core)` runs the engine with `default_rules(settings)` and
`sinks_from_settings(...)`; each sink is one module behind the `AlertSink` protocol.
"""

from .base import Alert, AlertDeliveryError, AlertSink, Finding, Notice
from .engine import AlertBook, AlertEngine, run_alerts, sinks_from_settings
from .github import GitHubIssueSink
from .mcp_notify import EventBusSink
from .paging import AlertSinkPager, PageAttempt, PageProgress, Pager, PageResult, PagingSink, pager_from_settings
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
from .webhook import PageDetails, SignedWebhookSink, pagerduty_event, sign_body

__all__ = [
    "Alert",
    "AlertBook",
    "AlertDeliveryError",
    "AlertEngine",
    "AlertSink",
    "AlertSinkPager",
    "DeployFailed",
    "EndpointDown",
    "ErrorRateHigh",
    "EventBusSink",
    "FailoverActive",
    "Finding",
    "GitHubIssueSink",
    "NoWorkersWhileQueued",
    "Notice",
    "PageAttempt",
    "PageDetails",
    "PageProgress",
    "PageResult",
    "Pager",
    "PagingSink",
    "Rule",
    "SignedWebhookSink",
    "SlackWebhookSink",
    "TtftOverBudget",
    "default_rules",
    "pager_from_settings",
    "pagerduty_event",
    "run_alerts",
    "sign_body",
    "sinks_from_settings",
    "slack_message",
]
