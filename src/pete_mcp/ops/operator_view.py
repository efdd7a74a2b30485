"""What the operator sees beyond the metrics: recent calls with their outcome, and which models can be
served now. Shared by the dashboard (`/api/calls`, `/api/models`) and the MCP face (`pete://calls/*`,
`list_models`), so both say the same thing.
"""

from __future__ import annotations

from typing import Any

from pete_mcp.gateway import Core

__all__ = ["OUTCOMES", "call_outcome", "recent_calls", "servable_models"]

OUTCOMES = ("emergency transfer", "transferred", "ticket opened", "message taken", "callback booked", "answered")

# Portable SQL (SQLite and PostgreSQL): the VAPI face's call rows, with what the desk recorded for each call.
_RECENT_CALLS = """
SELECT c.call_id, c.started_at, c.ended_at, c.status, c.ended_reason, c.caller, c.summary, c.duration_s,
       (SELECT COUNT(*) FROM maintenance_requests m WHERE m.call_id = c.call_id) AS tickets,
       (SELECT COUNT(*) FROM office_messages o WHERE o.call_id = c.call_id AND o.kind = 'message') AS messages,
       (SELECT COUNT(*) FROM office_messages o WHERE o.call_id = c.call_id AND o.kind = 'callback') AS callbacks,
       (SELECT COUNT(*) FROM emergencies e WHERE e.call_id = c.call_id) AS emergencies
FROM vapi_calls c
WHERE c.status = 'ended' OR c.ended_at IS NOT NULL
ORDER BY COALESCE(c.ended_at, c.updated_at) DESC
LIMIT ?
"""


def call_outcome(row: dict[str, Any]) -> str:
    """One word for how a call ended, most serious first."""
    if row.get("emergencies"):
        return "emergency transfer"
    reason = str(row.get("ended_reason") or "")
    if "forward" in reason or "transfer" in reason:
        return "transferred"
    if row.get("tickets"):
        return "ticket opened"
    if row.get("messages"):
        return "message taken"
    if row.get("callbacks"):
        return "callback booked"
    return "answered"


async def recent_calls(core: Core, *, limit: int = 50, outcome: str | None = None, query: str = "") -> list[dict]:
    """Ended calls, newest first: the persisted VAPI record joined with the board's turns and model."""
    rows = await core.store.query(_RECENT_CALLS, (max(limit, 1) * 4 if outcome or query else limit,))
    board = {c["call_id"]: c for c in core.calls.recent()}
    calls: list[dict[str, Any]] = []
    for row in rows:
        seen = board.pop(row["call_id"], {})
        calls.append(
            {
                "call_id": row["call_id"],
                "caller": row["caller"] or seen.get("caller", ""),
                "tenant": seen.get("tenant", ""),
                "started_at": row["started_at"] or seen.get("started_at"),
                "ended_at": row["ended_at"] or seen.get("ended_at"),
                "duration_s": row["duration_s"] if row["duration_s"] is not None else seen.get("duration_s"),
                "ended_reason": row["ended_reason"] or seen.get("ended_reason", ""),
                "summary": row["summary"],
                "turns": seen.get("turns"),
                "model": seen.get("model", ""),
                "outcome": call_outcome(row),
            }
        )
    for seen in board.values():  # ended on the board, not (yet) reported by VAPI
        calls.append({**seen, "summary": "", "outcome": "answered"})
    calls.sort(key=lambda c: c.get("ended_at") or 0, reverse=True)
    if outcome:
        calls = [c for c in calls if c["outcome"] == outcome]
    if query:
        needle = query.lower()
        calls = [c for c in calls if needle in " ".join(str(v) for v in c.values()).lower()]
    return calls[:limit]


def servable_models(core: Core) -> dict[str, dict[str, Any]]:
    """For each alias: can it be served now, by which provider, where, and why not.

    A route is servable when its provider is configured in this gateway and its breaker lets
    requests through; where says whether that is RunPod (a GPU elsewhere) or this machine.
    """
    metrics = core.metrics
    out: dict[str, dict[str, Any]] = {}
    for spec in core.models:
        routes: list[dict[str, Any]] = []
        for route in spec.chain:
            configured = route.provider in core.router.providers
            breaker = core.router.breakers.get(route.provider)
            allowed = configured and breaker is not None and breaker.retry_in_s() == 0.0  # asks, never takes a probe
            health = metrics.providers.get(route.provider)
            reachable = None if health is None else health.ok
            if not configured:
                reason = f"provider {route.provider!r} is not configured on this gateway"
            elif not allowed:
                reason = f"{route.provider} is failing (circuit breaker open)"
            elif reachable is False:
                reason = f"{route.provider} did not pass its last health check: {health.detail if health else ''}"
            else:
                reason = ""
            routes.append(
                {
                    "provider": route.provider,
                    "model": route.model,
                    "where": "runpod" if route.provider == "runpod" else "this machine",
                    "configured": configured,
                    "reachable": reachable,
                    "servable": configured and allowed and reachable is not False,
                    "reason": reason,
                }
            )
        serving = next((r for r in routes if r["servable"]), None)
        out[spec.alias] = {
            "servable": serving is not None,
            "provider": serving["provider"] if serving else None,
            "where": serving["where"] if serving else None,
            "reason": "" if serving else (routes[0]["reason"] if routes else "no route"),
            "routes": routes,
        }
    return out
