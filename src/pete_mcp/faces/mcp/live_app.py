"""Pete live in the chat: an MCP App (`ui://pete/live.html`) showing the live metrics, the calls
under way and a deploy's rollout, inline in hosts that render apps.

The app is one self-contained HTML page (no network, no build step). Hosts that render MCP
Apps (the SDK's `Apps` extension, `io.modelcontextprotocol/ui`) show it for the tools whose
`_meta.ui.resourceUri` names it (`health`, `endpoint_status`, `live_status`); it draws the
tool's structured result and then polls `live_status` through the host every few seconds.
`live_status` reads the same snapshot as `GET /api/metrics` and `pete://metrics/live`.
Hosts without app support get the tools' text content, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from mcp.server import MCPServer
from mcp.server.apps import Apps
from pydantic import BaseModel, Field

from pete_mcp.core import ConfigError, PeteError
from pete_mcp.gateway import Core
from pete_mcp.ops import Deployer

from ._tooling import READ_ONLY_LOCAL
from .jobs import JobTracker
from .tool_models import RolloutView
from .views import rollout_view

__all__ = ["LIVE_APP_HTML", "LIVE_APP_URI", "UI_META", "CallUnderWay", "LiveView", "live_apps", "register_live_tool"]

LIVE_APP_URI = "ui://pete/live.html"
UI_META: dict[str, Any] = {"ui": {"resourceUri": LIVE_APP_URI}}


class CallUnderWay(BaseModel):
    job_id: str
    model: str
    status: str
    elapsed_s: float
    tokens: int = Field(description="Text pieces received so far.")


class LiveView(BaseModel):
    metrics: dict[str, Any] = Field(description="The live metrics snapshot (as GET /api/metrics).")
    calls_under_way: list[CallUnderWay] = Field(description="run_prompt jobs still waiting or generating.")
    rollout: RolloutView | None = Field(default=None, description="The endpoint's rollout, with RunPod REST set.")
    summary: str


def live_apps() -> Apps:
    """The Apps extension carrying the live page; pass it to `MCPServer(extensions=[...])`."""
    apps = Apps()
    apps.add_html_resource(
        LIVE_APP_URI,
        LIVE_APP_HTML,
        name="live",
        title="Pete live",
        description="Live metrics, calls under way and the rollout, drawn inline by hosts that render MCP Apps.",
        prefers_border=True,
    )
    return apps


def register_live_tool(mcp: MCPServer, core: Core, tracker: JobTracker, get_deployer: Callable[[], Deployer]) -> None:
    @mcp.tool(title="Live status", annotations=READ_ONLY_LOCAL, meta=UI_META)
    async def live_status() -> LiveView:
        """Live metrics, run_prompt jobs under way and the endpoint's rollout (what the live app draws)."""
        snapshot = core.metrics.snapshot()
        calls = [
            CallUnderWay(
                job_id=j.id, model=j.alias, status=j.status, elapsed_s=round(j.elapsed_s, 2), tokens=len(j.parts)
            )
            for j in tracker.unfinished()
        ]
        rollout: RolloutView | None = None
        try:
            deployer = get_deployer()
        except ConfigError:
            deployer = None
        if deployer is not None:
            with anyio.move_on_after(3):
                try:
                    rollout = rollout_view(await deployer.rollout())
                except PeteError:
                    rollout = None
        summary = (
            f"{snapshot.get('active_jobs', 0)} request(s) being answered, {len(calls)} prompt job(s) under way, "
            f"{snapshot.get('live_calls', 0)} live call(s)"
            + (f"; rollout {rollout.percent_on_latest:.0f}% on the latest release" if rollout else "")
            + "."
        )
        return LiveView(metrics=snapshot, calls_under_way=calls, rollout=rollout, summary=summary)


LIVE_APP_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Pete live</title>
<style>
 body{font:13px/1.4 system-ui,sans-serif;margin:8px;color:#1d2330;background:transparent}
 h2{font-size:13px;margin:10px 0 4px;text-transform:uppercase;letter-spacing:.04em;color:#5a6475}
 .row{display:flex;gap:8px;flex-wrap:wrap}
 .card{border:1px solid #d5dae3;border-radius:6px;padding:6px 10px;min-width:90px}
 .v{font-size:18px;font-weight:600} .k{color:#5a6475;font-size:11px}
 table{border-collapse:collapse;width:100%} td,th{text-align:left;padding:2px 6px;border-bottom:1px solid #eef0f4}
 .bar{height:8px;background:#eef0f4;border-radius:4px;overflow:hidden}.bar>i{display:block;height:100%;background:#2f6fed}
 #err{color:#b42318}
 @media (prefers-color-scheme: dark){body{color:#e6e9ef}.card{border-color:#3a4150}td,th{border-color:#2a303b}}
</style></head>
<body>
<div id="summary">Waiting for Pete…</div>
<h2>Live</h2><div class="row" id="figures"></div>
<h2>Calls under way</h2><table id="calls"><tr><td>none</td></tr></table>
<h2>Rollout</h2><div id="rollout">no rollout data (RunPod REST not configured)</div>
<div id="err"></div>
<script>
(() => {
  const pending = new Map(); let nextId = 1;
  const send = (msg) => window.parent.postMessage(msg, "*");
  const request = (method, params) => new Promise((resolve, reject) => {
    const id = nextId++; pending.set(id, {resolve, reject});
    send({jsonrpc: "2.0", id, method, params});
  });
  const text = (s) => document.createTextNode(String(s));
  const num = (x, d) => (typeof x === "number" ? x.toFixed(d) : "–");
  function card(label, value) {
    const c = document.createElement("div"); c.className = "card";
    const v = document.createElement("div"); v.className = "v"; v.appendChild(text(value));
    const k = document.createElement("div"); k.className = "k"; k.appendChild(text(label));
    c.append(v, k); return c;
  }
  function pick(obj, path) { return path.split(".").reduce((o, p) => (o == null ? o : o[p]), obj); }
  function draw(data) {
    if (!data || typeof data !== "object") return;
    if (data.summary) document.getElementById("summary").textContent = data.summary;
    const m = data.metrics || (data.figures ? data.figures : null);
    if (m) {
      const f = document.getElementById("figures"); f.replaceChildren();
      f.append(card("active requests", m.active_jobs ?? "–"), card("live calls", m.live_calls ?? "–"),
               card("ttft p50 s (5 min)", num(pick(m, "last_5m.ttft.p50"), 2)),
               card("ttft p95 s (5 min)", num(pick(m, "last_5m.ttft.p95"), 2)),
               card("requests 24 h", m.requests ?? "–"), card("errors 24 h", m.errors_24h ?? "–"));
    }
    if (Array.isArray(data.calls_under_way)) {
      const t = document.getElementById("calls"); t.replaceChildren();
      if (!data.calls_under_way.length) { const r = t.insertRow(); r.insertCell().appendChild(text("none")); }
      for (const c of data.calls_under_way) {
        const r = t.insertRow();
        for (const v of [c.job_id, c.model, c.status, c.elapsed_s + " s", c.tokens + " tok"]) {
          r.insertCell().appendChild(text(v));
        }
      }
    }
    if (data.rollout) {
      const ro = data.rollout, box = document.getElementById("rollout"); box.replaceChildren();
      const release = ro.endpoint_version ?? "?";
      box.appendChild(text(`${ro.workers_on_latest}/${ro.workers_total} workers on release ${release}` +
                           (ro.in_progress ? " (rolling out)" : " (done)")));
      const bar = document.createElement("div"); bar.className = "bar";
      const fill = document.createElement("i");
      fill.style.width = Math.max(0, Math.min(100, ro.percent_on_latest)) + "%";
      bar.appendChild(fill); box.appendChild(bar);
    }
  }
  function fromResult(r) { return r && (r.structuredContent || (r.result && r.result.structuredContent)); }
  window.addEventListener("message", (event) => {
    const msg = event.data; if (!msg || msg.jsonrpc !== "2.0") return;
    if (msg.id !== undefined && pending.has(msg.id)) {
      const p = pending.get(msg.id); pending.delete(msg.id);
      msg.error ? p.reject(msg.error) : p.resolve(msg.result); return;
    }
    if (msg.method === "ui/notifications/tool-result") draw(fromResult(msg.params));
  });
  async function poll() {
    try { draw(fromResult(await request("tools/call", {name: "live_status", arguments: {}})));
          document.getElementById("err").textContent = ""; }
    catch (e) { document.getElementById("err").textContent = "live updates unavailable: " + (e && e.message || e); }
  }
  request("ui/initialize", {appInfo: {name: "pete-live", version: "1"}, appCapabilities: {},
                            protocolVersion: "2025-11-21"})
    .then(() => { send({jsonrpc: "2.0", method: "ui/notifications/initialized"}); poll(); setInterval(poll, 5000); })
    .catch(() => {});
})();
</script>
</body></html>
"""
