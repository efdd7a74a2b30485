/* Pete dashboard: reads /api/metrics, /api/health and /api/models, follows /api/events (SSE),
   and sends the token-guarded actions. No framework, no build step. */
(() => {
"use strict";

const { renderLineChart, renderBars, formatSeconds } = window.PeteCharts;
window.PeteAuth = () => authHeaders();
window.PeteFetch = (url, options) => apiFetch(url, options);  // operator.js and evals.js read through it
const TOKEN_KEY = "pete-token";
const METRICS_EVERY_MS = 5000;
const HEALTH_EVERY_MS = 30000;
const $ = (id) => document.getElementById(id);
const { setStatus, errorMessage } = window.PeteUI;

const state = { models: [], active: "", lastSnapshot: null, refreshQueued: false };

/* --- helpers --------------------------------------------------------------------------- */
function setText(id, value) {
  const el = $(id);
  const text = value === null || value === undefined ? "–" : String(value);
  if (el && el.textContent !== text) el.textContent = text;
}

function percent(share) {
  return share === null || share === undefined ? "–" : `${(share * 100).toFixed(share >= 0.995 || share === 0 ? 0 : 1)}%`;
}

function when(seconds) {
  return new Date(seconds * 1000).toLocaleString();
}

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function listItems(list, items, empty) {
  list.replaceChildren();
  if (!items.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = empty;
    list.appendChild(li);
    return;
  }
  for (const item of items) list.appendChild(item);
}

function token() {
  return $("token").value.trim();
}

function authHeaders() {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

/* Every /api call carries the token when one is entered: beyond loopback reads need it too. */
function apiFetch(url, options = {}) {
  return fetch(url, { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
}

/* --- rendering the snapshot ------------------------------------------------------------ */
function renderSnapshot(s) {
  state.lastSnapshot = s;
  setText("active-model", s.active_model || state.active || "–");
  const pod = s.runpod;
  const endpoint = $("endpoint-state");
  if (!pod) {
    endpoint.textContent = "N/A";
    endpoint.className = "state state-unknown";
    setText("endpoint-detail", "No RunPod provider in this gateway.");
  } else {
    const live = pod.live || (pod.reachable && pod.serving_workers > 0);
    endpoint.textContent = live ? "LIVE" : "DOWN";
    endpoint.className = `state ${live ? "state-live" : "state-down"}`;
    setText("endpoint-detail", pod.detail);
  }
  const totals = s.totals;
  setText("success-rate", percent(totals.success_rate));
  setText("requests-24h", totals.requests);
  setText("errors-24h", s.errors_24h);
  const kinds = Object.entries(totals.errors_by_kind || {}).map(([k, n]) => `${k} ${n}`).join(", ");
  setText("errors-detail", kinds || "none");
  setText("active-conversations", s.active_conversations);
  setText("conversations-total", s.conversations_total);
  setText("live-calls", s.live_calls);
  setText("live-calls-big", s.live_calls);
  setText("fallbacks", s.fallbacks);
  setText("active-jobs", s.active_jobs);
  setText("ttft-p50", formatSeconds(s.last_5m.ttft.p50));
  setText("ttft-p95", formatSeconds(s.last_5m.ttft.p95));
  if (pod) {
    setText("queue-depth", pod.in_queue);
    setText("in-progress", pod.in_progress);
    setText("serving-workers", pod.serving_workers);
    setText("workers-detail", Object.entries(pod.workers).map(([k, n]) => `${k} ${n}`).join(", "));
  }
  renderAlerts(s.alerts);
  renderCharts(s);
  renderModelsTable(s.models);
  renderErrors(s.recent_errors);
  renderHistory(s);
  const updated = $("updated");
  updated.textContent = new Date(s.generated_at * 1000).toLocaleTimeString();
  updated.dateTime = new Date(s.generated_at * 1000).toISOString();
}

function renderAlerts(alerts) {
  const items = alerts.map((a) => {
    const li = document.createElement("li");
    li.className = `alert sev-${a.severity}`;
    const title = document.createElement("strong");
    title.textContent = a.title;
    li.append(title, document.createTextNode(` — ${a.detail} (since ${clock(a.since)}, ${a.severity})`));
    return li;
  });
  listItems($("alerts-list"), items, "No alerts firing.");
}

function renderCharts(s) {
  const points = s.series;
  const first = points.length ? clock(points[0].at) : "";
  const last = points.length ? clock(points[points.length - 1].at) : "";
  const latest = [...points].reverse().find((p) => p.requests > 0);
  const describeTtft = latest
    ? `Time to first token per minute; latest minute with traffic at ${clock(latest.at)}: p50 ${formatSeconds(latest.ttft_p50)}, p95 ${formatSeconds(latest.ttft_p95)}.`
    : "Time to first token per minute: no requests in the last hour.";
  const describeLatency = latest
    ? `Total latency per minute; latest minute with traffic at ${clock(latest.at)}: p50 ${formatSeconds(latest.duration_p50)}, p95 ${formatSeconds(latest.duration_p95)}.`
    : "Total latency per minute: no requests in the last hour.";
  renderLineChart($("chart-ttft"), [
    { name: "p50", values: points.map((p) => p.ttft_p50) },
    { name: "p95", values: points.map((p) => p.ttft_p95) },
  ], { firstLabel: first, lastLabel: last, describe: describeTtft });
  renderLineChart($("chart-latency"), [
    { name: "p50", values: points.map((p) => p.duration_p50) },
    { name: "p95", values: points.map((p) => p.duration_p95) },
  ], { firstLabel: first, lastLabel: last, describe: describeLatency });
  const rows = s.models.map((m) => ({ label: m.alias || m.model, values: [m.ttft.p95, m.duration.p95] }));
  const describe = rows.length
    ? "p95 per model: " + s.models.map((m) => `${m.alias || m.model} TTFT ${formatSeconds(m.ttft.p95)}, latency ${formatSeconds(m.duration.p95)}`).join("; ")
    : "No requests in the last 24 hours.";
  renderBars($("chart-models"), rows, ["TTFT p95", "latency p95"], describe);
}

function cell(text, numeric) {
  const td = document.createElement("td");
  td.textContent = text;
  if (numeric) td.className = "num";
  return td;
}

function renderModelsTable(models) {
  const body = $("models-table").tBodies[0];
  body.replaceChildren();
  if (!models.length) {
    const tr = document.createElement("tr");
    const td = cell("No requests yet.");
    td.colSpan = 9;
    td.className = "muted";
    tr.appendChild(td);
    body.appendChild(tr);
    return;
  }
  for (const m of models) {
    const tr = document.createElement("tr");
    tr.append(
      cell(`${m.alias} (${m.model})`), cell(m.provider), cell(m.requests, true), cell(m.errors, true),
      cell(formatSeconds(m.ttft.p50), true), cell(formatSeconds(m.ttft.p95), true),
      cell(formatSeconds(m.duration.p95), true), cell(`${m.input_tokens ?? 0} / ${m.output_tokens ?? 0}`, true),
      cell(m.tokens_per_s ? m.tokens_per_s.toFixed(1) : "–", true),
    );
    body.appendChild(tr);
  }
}

function renderErrors(errors) {
  const body = $("errors-table").tBodies[0];
  body.replaceChildren();
  if (!errors.length) {
    const tr = document.createElement("tr");
    const td = cell("No errors in the last 24 hours.");
    td.colSpan = 4;
    td.className = "muted";
    tr.appendChild(td);
    body.appendChild(tr);
    return;
  }
  for (const e of errors.slice(0, 20)) {
    const tr = document.createElement("tr");
    tr.append(cell(when(e.at)), cell(`${e.alias || e.model} (${e.provider})`), cell(e.kind), cell(e.message));
    body.appendChild(tr);
  }
}

function renderHistory(s) {
  listItems($("switches-list"), s.switches.map((w) => {
    const li = document.createElement("li");
    const warm = w.warmup_s === null ? "" : `, warmed in ${formatSeconds(w.warmup_s)}`;
    li.textContent = `${when(w.at)}: ${w.from_model || "?"} → ${w.to_model} by ${w.by}${w.ok ? "" : " (failed)"}${warm}`;
    return li;
  }), "None yet.");
  listItems($("deploys-list"), s.deploys.map((d) => {
    const li = document.createElement("li");
    li.textContent = `${when(d.at)}: ${d.kind} ${d.image} — ${d.status}${d.detail ? " (" + d.detail + ")" : ""}`;
    return li;
  }), "None yet.");
}

/* --- fetching ----------------------------------------------------------------------------- */
async function refreshMetrics() {
  try {
    const response = await apiFetch("/api/metrics", { cache: "no-store" });
    if (response.ok) renderSnapshot(await response.json());
  } catch (_) { /* the connection badge says so */ }
}

function refreshSoon() {
  if (state.refreshQueued) return;
  state.refreshQueued = true;
  setTimeout(() => { state.refreshQueued = false; refreshMetrics(); }, 250);
}

async function refreshHealth() {
  const badge = $("health");
  try {
    const response = await apiFetch("/api/health", { cache: "no-store" });
    const body = await response.json();
    setText("health-summary", `${body.passed}/${body.counted} checks ok`);
    badge.className = `pill ${body.status === "ok" ? "pill-ok" : body.status === "failing" ? "pill-bad" : "pill-warn"}`;
    const bad = body.checks.filter((c) => c.status === "warn" || c.status === "fail");
    badge.title = bad.map((c) => `${c.name}: ${c.detail}${c.hint ? " — " + c.hint : ""}`).join("\n") || "All checks pass.";
    document.dispatchEvent(new CustomEvent("pete:health", { detail: body }));
  } catch (_) {
    setText("health-summary", "health unknown");
    badge.className = "pill pill-unknown";
  }
}

async function refreshModels() {
  const response = await apiFetch("/api/models", { cache: "no-store" });
  const body = await response.json();
  state.models = body.models;
  state.active = body.active;
  setText("active-model", body.active);
  const servable = body.models.filter((m) => m.servable !== false);
  setText("models-available", `${servable.length} of ${body.models.length}`);
  setText("models-detail", servable.map((m) => `${m.alias} (${m.where || m.provider})`).join(", ") || "none can be served now");
  document.dispatchEvent(new CustomEvent("pete:models", { detail: body }));
  const switchSelect = $("switch-model");
  const chosen = switchSelect.value;
  switchSelect.replaceChildren(...servable.map((m) => {
    const option = new Option(`${m.alias}${m.active ? " (active)" : ""}`, m.alias);
    return option;
  }));
  const firstOther = servable.find((m) => !m.active);
  switchSelect.value = chosen && chosen !== body.active ? chosen : (firstOther ? firstOther.alias : body.active);
  const promptSelect = $("prompt-model");
  const promptChosen = promptSelect.value;
  promptSelect.replaceChildren(new Option("active model", ""), ...servable.map((m) => new Option(m.alias, m.alias)));
  promptSelect.value = promptChosen;
}

/* --- live events ----------------------------------------------------------------------- */
function connectEvents() {
  const source = new EventSource(token() ? `/api/events?access_token=${encodeURIComponent(token())}` : "/api/events");
  const conn = $("conn");
  source.onopen = () => { setText("conn-status", "live"); conn.className = "pill pill-ok"; refreshMetrics(); };
  source.onerror = () => { setText("conn-status", "reconnecting…"); conn.className = "pill pill-warn"; };
  source.onmessage = (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch (_) { return; }
    addEvent(event);
    document.dispatchEvent(new CustomEvent("pete:event", { detail: event }));
    if (event.kind.startsWith("model.")) refreshModels();
    if (event.kind.startsWith("provider.") || event.kind.startsWith("alert.") || event.kind.startsWith("deploy.")) refreshHealth();
    refreshSoon();
  };
}

function addEvent(event) {
  const list = $("events-list");
  if (list.firstElementChild && list.firstElementChild.classList.contains("muted")) list.replaceChildren();
  const li = document.createElement("li");
  const data = Object.entries(event.data || {})
    .filter(([, v]) => v !== null && v !== undefined && typeof v !== "object")
    .map(([k, v]) => `${k}=${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(3) : v}`).join(" ");
  li.textContent = `${clock(event.at)} ${event.kind} ${data}`;
  list.prepend(li);
  while (list.children.length > 30) list.removeChild(list.lastChild);
}

/* --- actions ------------------------------------------------------------------------------ */
async function sendPrompt(event) {
  event.preventDefault();
  const output = $("prompt-output");
  const button = $("prompt-send");
  output.textContent = "";
  output.setAttribute("aria-busy", "true");
  button.disabled = true;
  setStatus("prompt-status", "Sending…");
  const body = { prompt: $("prompt-text").value, model: $("prompt-model").value || null, max_tokens: 96 };
  try {
    const response = await apiFetch("/api/prompt", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream", ...authHeaders() },
      body: JSON.stringify(body),
    });
    if (!response.ok) { setStatus("prompt-status", await errorMessage(response), "error"); return; }
    setStatus("prompt-status", "Streaming…");
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = frame.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
        if (!data) continue;
        const part = JSON.parse(data);
        if (part.type === "delta") output.textContent += part.text;
        else if (part.type === "done") {
          setStatus("prompt-status", `Done: ${part.alias} on ${part.provider}, first token ${formatSeconds(part.ttft_s)}, total ${formatSeconds(part.total_s)}.`, "ok");
        } else if (part.type === "error") setStatus("prompt-status", `${part.message} (${part.code})`, "error");
      }
    }
  } catch (err) {
    setStatus("prompt-status", `The request failed: ${err}`, "error");
  } finally {
    output.setAttribute("aria-busy", "false");
    button.disabled = false;
  }
}

async function switchModel(event) {
  event.preventDefault();
  const model = $("switch-model").value;
  const button = $("switch-send");
  button.disabled = true;
  setStatus("switch-status", `Warming ${model}…`);
  try {
    const response = await apiFetch("/api/switch", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify({ model }),
    });
    if (!response.ok) { setStatus("switch-status", await errorMessage(response), "error"); return; }
    const result = await response.json();
    const warm = result.warmup_s === null ? "" : ` (warm-up ${formatSeconds(result.warmup_s)})`;
    setStatus("switch-status", `Switched from ${result.previous} to ${result.active}${warm}.`, "ok");
    await refreshModels();
    refreshSoon();
  } catch (err) {
    setStatus("switch-status", `The request failed: ${err}`, "error");
  } finally {
    button.disabled = false;
  }
}

async function deploy(event) {
  event.preventDefault();
  const image = $("deploy-image").value.trim();
  const button = $("deploy-send");
  button.disabled = true;
  try {
    const preview = await apiFetch(`/api/deploy/preview?image=${encodeURIComponent(image)}`, { headers: authHeaders(), cache: "no-store" });
    if (!preview.ok) { setStatus("deploy-status", await errorMessage(preview), "error"); return; }
    const plan = await preview.json();
    const ok = await window.PeteOperator.confirm("Deploy a new worker image?", `RunPod rolls workers onto ${plan.image}; requests in flight finish on their worker.`, plan.current_image || "unknown", plan.image, "Deploy");
    if (!ok) { setStatus("deploy-status", "Deploy cancelled; nothing changed."); return; }
    setStatus("deploy-status", `Starting the deploy of ${image}…`);
    const response = await apiFetch("/api/deploy", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify({ image }),
    });
    if (!response.ok) { setStatus("deploy-status", await errorMessage(response), "error"); return; }
    const record = await response.json();
    setStatus("deploy-status", `Deploy #${record.id}: ${record.previous_image || "?"} → ${record.image} is ${record.status}.`, "ok");
    window.PeteOperator.followRollout(record.id);
    refreshSoon();
  } catch (err) {
    setStatus("deploy-status", `The request failed: ${err}`, "error");
  } finally {
    button.disabled = false;
  }
}

async function viewLogs() {
  const output = $("logs-output");
  try {
    const response = await apiFetch("/api/logs?limit=200", { headers: authHeaders(), cache: "no-store" });
    if (!response.ok) { setStatus("logs-status", await errorMessage(response), "error"); output.hidden = true; return; }
    const body = await response.json();
    output.textContent = body.entries.map((e) => `${new Date(e.at * 1000).toLocaleTimeString()} ${e.level} ${e.source}: ${e.message}`).join("\n") || "(no log lines yet)";
    output.hidden = false;
    setStatus("logs-status", `${body.entries.length} recent lines.`, "ok");
    output.scrollTop = output.scrollHeight;
  } catch (err) {
    setStatus("logs-status", `The request failed: ${err}`, "error");
  }
}

/* --- start ------------------------------------------------------------------------------- */
function start() {
  const tokenInput = $("token");
  tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || "";
  tokenInput.addEventListener("input", () => sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim()));
  $("token-form").addEventListener("submit", (e) => e.preventDefault());
  $("token-clear").addEventListener("click", () => { tokenInput.value = ""; sessionStorage.removeItem(TOKEN_KEY); tokenInput.focus(); });
  $("prompt-form").addEventListener("submit", sendPrompt);
  $("switch-form").addEventListener("submit", switchModel);
  $("deploy-form").addEventListener("submit", deploy);
  $("logs-button").addEventListener("click", viewLogs);
  window.addEventListener("resize", () => { if (state.lastSnapshot) renderCharts(state.lastSnapshot); });
  refreshModels();
  refreshMetrics();
  refreshHealth();
  connectEvents();
  setInterval(refreshMetrics, METRICS_EVERY_MS);
  setInterval(refreshHealth, HEALTH_EVERY_MS);
}

document.addEventListener("DOMContentLoaded", start);
})();
