/* Pete dashboard, operator panels: system checks grid, calls (live + transcript + recent), the desk,
   jobs (with cancel), models as they are, deploy confirmation, rollout progress and rollback.
   Reads /api/calls, /api/jobs, /api/desk/*, /api/models; follows app.js's events ("pete:event"). */
(() => {
"use strict";

const $ = (id) => document.getElementById(id);
const { setStatus, errorMessage } = window.PeteUI;
const JOBS_EVERY_MS = 2000;
const CALLS_EVERY_MS = 5000;
const state = { transcriptFor: null, callsQueued: false, deskMissing: false, deployId: null };

function fmtSeconds(s) {
  if (s === null || s === undefined) return "–";
  return s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(2)} s`;
}
function fmtAge(s) {
  if (s === null || s === undefined) return "–";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${(s / 3600).toFixed(1)} h`;
}
function clock(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleTimeString() : "–";
}
function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined || text === "" ? "–" : String(text);
  if (cls) td.className = cls;
  return td;
}
function emptyRow(body, columns, message) {
  const tr = document.createElement("tr");
  const td = cell(message, "muted");
  td.colSpan = columns;
  tr.appendChild(td);
  body.replaceChildren(tr);
}
const auth = () => (window.PeteAuth ? window.PeteAuth() : {});

/* --- confirmation dialog ----------------------------------------------------------------- */
function confirmAction(title, body, current, next, okLabel) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-body").textContent = body;
  const images = $("confirm-images");
  images.hidden = current === null;
  $("confirm-current").textContent = current || "–";
  $("confirm-new").textContent = next || "–";
  $("confirm-ok").textContent = okLabel || "Confirm";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "cancel";
    dialog.showModal();
    $("confirm-cancel").focus();
  });
}

/* --- system checks ------------------------------------------------------------------------ */
const CALM = { warn: "advice", fail: "failing", ok: "ok", skip: "not checked" };
function renderHealth(body) {
  const list = $("health-grid");
  list.replaceChildren(...body.checks.map((c) => {
    const li = document.createElement("li");
    li.className = `tile tile-${c.status}`;
    const head = document.createElement("p");
    head.className = "tile-head";
    const name = document.createElement("strong");
    name.textContent = c.name;
    const badge = document.createElement("span");
    badge.className = `badge badge-${c.status}`;
    badge.textContent = CALM[c.status] || c.status;
    head.append(name, document.createTextNode(" "), badge);
    const detail = document.createElement("p");
    detail.className = "detail";
    detail.textContent = c.detail;
    li.append(head, detail);
    if (c.hint) {
      const hint = document.createElement("p");
      hint.className = "hint";
      hint.textContent = `Fix: ${c.hint}`;
      li.appendChild(hint);
    }
    return li;
  }));
}

/* --- models ------------------------------------------------------------------------------- */
function renderModels(body) {
  const list = $("models-list");
  list.replaceChildren(...body.models.map((m) => {
    const li = document.createElement("li");
    const servable = m.servable !== false;
    li.className = `tile ${servable ? "tile-ok" : "tile-skip"}`;
    const head = document.createElement("p");
    head.className = "tile-head";
    const name = document.createElement("strong");
    name.textContent = m.alias + (m.active ? " (active)" : "");
    const badge = document.createElement("span");
    badge.className = `badge badge-${servable ? "ok" : "skip"}`;
    badge.textContent = servable ? `servable · ${m.served_by} · ${m.where}` : "cannot be served here";
    head.append(name, document.createTextNode(" "), badge);
    const detail = document.createElement("p");
    detail.className = "detail";
    detail.textContent = servable ? (m.description || m.provider_model || "") : m.unservable_reason;
    li.append(head, detail);
    return li;
  }));
}

/* --- calls -------------------------------------------------------------------------------- */
async function refreshCalls() {
  const outcome = $("calls-outcome").value;
  const q = $("calls-q").value.trim();
  const params = new URLSearchParams({ limit: "30" });
  if (outcome) params.set("outcome", outcome);
  if (q) params.set("q", q);
  try {
    const response = await window.PeteFetch(`/api/calls?${params}`, { cache: "no-store" });
    if (!response.ok) return;
    const body = await response.json();
    renderLiveCalls(body.live);
    renderRecentCalls(body.recent);
    const select = $("calls-outcome");
    if (select.options.length <= 1) {
      for (const o of body.outcomes) select.appendChild(new Option(o, o));
      select.value = outcome;
    }
  } catch (_) { /* the connection badge says so */ }
}
function callsSoon() {
  if (state.callsQueued) return;
  state.callsQueued = true;
  setTimeout(() => { state.callsQueued = false; refreshCalls(); }, 200);
}
function renderLiveCalls(calls) {
  const body = $("live-calls-table").tBodies[0];
  if (!calls.length) { emptyRow(body, 8, "No calls under way."); return; }
  body.replaceChildren(...calls.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.callId = c.call_id;
    const stateCell = cell(c.state, `state-${c.state}`);
    const action = document.createElement("td");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Transcript";
    button.setAttribute("aria-label", `Transcript of the call from ${c.caller || "an unknown number"}`);
    button.addEventListener("click", () => openTranscript(c.call_id, c.caller));
    action.appendChild(button);
    tr.append(cell(c.caller || "unknown"), cell(c.tenant), stateCell, cell(c.turns), cell(c.model),
      cell(fmtSeconds(c.last_ttft_s)), cell(fmtAge(c.duration_s)), action);
    return tr;
  }));
}
function renderRecentCalls(calls) {
  const body = $("recent-calls-table").tBodies[0];
  if (!calls.length) { emptyRow(body, 6, "No ended calls match."); return; }
  body.replaceChildren(...calls.map((c) => {
    const tr = document.createElement("tr");
    tr.append(cell(clock(c.ended_at)), cell(c.caller || "unknown"), cell(c.outcome, `outcome`),
      cell(fmtAge(c.duration_s)), cell(c.turns), cell(c.ended_reason));
    return tr;
  }));
}
async function openTranscript(callId, caller) {
  state.transcriptFor = callId;
  $("transcript-panel").hidden = false;
  $("transcript-title").textContent = `Transcript — ${caller || callId}`;
  const list = $("transcript-list");
  list.replaceChildren();
  const response = await window.PeteFetch(`/api/calls/${encodeURIComponent(callId)}`, { cache: "no-store" });
  if (!response.ok) { list.appendChild(line({ role: "note", text: await errorMessage(response) })); return; }
  const call = await response.json();
  for (const entry of call.transcript) list.appendChild(line(entry));
}
function line(entry) {
  const li = document.createElement("li");
  li.className = `said said-${entry.role}`;
  const who = document.createElement("strong");
  who.textContent = entry.role === "caller" ? "Caller: " : entry.role === "assistant" ? "Jamie: " : "";
  li.append(who, document.createTextNode(entry.text));
  return li;
}

/* --- desk (GET /api/desk/{kind}, POST /api/desk/{kind}/{id}/close) ------------------------- */
async function refreshDesk() {
  const kind = $("desk-kind").value;
  const status = $("desk-status").value;
  const list = $("desk-list");
  try {
    const response = await window.PeteFetch(`/api/desk/${kind}?status=${status}&limit=50`, { cache: "no-store" });
    if (response.status === 404 && !(await response.clone().json().catch(() => ({}))).items) {
      state.deskMissing = true;
      list.replaceChildren(item("The desk lists are not available on this gateway.", "muted"));
      return;
    }
    if (!response.ok) { list.replaceChildren(item(await errorMessage(response), "muted")); return; }
    const body = await response.json();
    if (!body.items.length) { list.replaceChildren(item(`No ${status === "all" ? "" : status + " "}${kind}.`, "muted")); return; }
    list.replaceChildren(...body.items.map((d) => {
      const li = document.createElement("li");
      li.className = `desk desk-${d.status}`;
      const what = [d.category, d.urgency, d.unit ? `unit ${d.unit}` : "", d.caller].filter(Boolean).join(" · ");
      const text = document.createElement("span");
      text.textContent = `#${d.id} ${d.status}: ${d.summary || ""}${what ? " (" + what + ")" : ""}`;
      li.appendChild(text);
      if (d.status === "open") {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = "Close";
        button.setAttribute("aria-label", `Close ${kind.replace(/s$/, "")} ${d.id}`);
        button.addEventListener("click", () => closeDesk(kind, d.id));
        li.append(document.createTextNode(" "), button);
      }
      return li;
    }));
  } catch (_) { /* offline */ }
}
function item(text, cls) {
  const li = document.createElement("li");
  li.textContent = text;
  if (cls) li.className = cls;
  return li;
}
async function closeDesk(kind, id) {
  const ok = await confirmAction(`Close ${kind.replace(/s$/, "")} #${id}?`, "It moves to the closed list with your note.", null, null, "Close it");
  if (!ok) return;
  const response = await window.PeteFetch(`/api/desk/${kind}/${encodeURIComponent(id)}/close`, {
    method: "POST", headers: { "Content-Type": "application/json", ...auth() }, body: JSON.stringify({ note: "closed from the dashboard" }),
  });
  setStatus("desk-status-line", response.ok ? `Closed #${id}.` : await errorMessage(response), response.ok ? "ok" : "error");
  refreshDesk();
}

/* --- jobs --------------------------------------------------------------------------------- */
async function refreshJobs() {
  try {
    const response = await window.PeteFetch("/api/jobs", { cache: "no-store" });
    if (!response.ok) return;
    const body = await response.json();
    renderActiveJobs(body.active);
    renderRecentJobs(body.recent);
  } catch (_) { /* offline */ }
}
function renderActiveJobs(jobs) {
  const body = $("active-jobs-table").tBodies[0];
  if (!jobs.length) { emptyRow(body, 7, "No jobs running."); return; }
  body.replaceChildren(...jobs.map((j) => {
    const tr = document.createElement("tr");
    tr.dataset.jobId = j.id;
    const action = document.createElement("td");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Cancel";
    button.setAttribute("aria-label", `Cancel job ${j.job_id || j.id}`);
    button.addEventListener("click", () => cancelJob(j));
    action.appendChild(button);
    tr.append(cell(j.job_id || j.id, "mono"), cell(j.alias), cell(j.provider), cell(j.status), cell(fmtAge(j.age_s)), cell(j.worker_id), action);
    return tr;
  }));
}
function renderRecentJobs(jobs) {
  const body = $("recent-jobs-table").tBodies[0];
  if (!jobs.length) { emptyRow(body, 8, "None in the last hour."); return; }
  body.replaceChildren(...jobs.slice(0, 30).map((j) => {
    const tr = document.createElement("tr");
    const tokens = j.output_tokens === null ? "–" : `${j.input_tokens ?? "–"} / ${j.output_tokens}`;
    tr.append(cell(j.job_id || j.id, "mono"), cell(j.alias), cell(j.status), cell(fmtSeconds(j.ttft_s)),
      cell(fmtSeconds(j.total_s)), cell(tokens), cell(j.worker_id), cell(j.source));
    return tr;
  }));
}
async function cancelJob(job) {
  const id = job.job_id || job.id;
  const ok = await confirmAction(`Cancel job ${id}?`, `The ${job.alias} reply for ${job.source} stops now and the caller gets an error.`, null, null, "Cancel the job");
  if (!ok) return;
  const response = await window.PeteFetch(`/api/jobs/${encodeURIComponent(job.id)}/cancel`, { method: "POST", headers: auth() });
  setStatus("jobs-status", response.ok ? `Cancelled ${id}.` : await errorMessage(response), response.ok ? "ok" : "error");
  refreshJobs();
}

/* --- deploy: rollout progress and rollback -------------------------------------------------- */
function showProgress(percent, text) {
  const bar = $("deploy-progress");
  bar.value = Math.max(0, Math.min(100, percent || 0));
  bar.textContent = `${Math.round(bar.value)}%`;
  $("deploy-progress-text").textContent = text;
}
function followRollout(id) {
  state.deployId = id;
  showProgress(0, `Deploy #${id}: rolling out…`);
}
function onDeployEvent(data) {
  if (state.deployId !== null && data.id !== state.deployId) return;
  state.deployId = data.id;
  const percent = data.status === "done" ? 100 : (data.percent ?? $("deploy-progress").value);
  showProgress(percent, `${data.action} #${data.id} of ${data.image}: ${data.status}${data.percent !== undefined ? ` (${Math.round(percent)}% of workers on it)` : ""}`);
}
async function rollback() {
  const ok = await confirmAction("Roll back the last deploy?", "Workers return to the image the last deploy replaced.", null, null, "Roll back");
  if (!ok) return;
  const response = await window.PeteFetch("/api/rollback", { method: "POST", headers: auth() });
  if (!response.ok) { setStatus("deploy-status", await errorMessage(response), "error"); return; }
  const record = await response.json();
  setStatus("deploy-status", `Rollback #${record.id}: ${record.previous_image} → ${record.image} is ${record.status}.`, "ok");
  followRollout(record.id);
}

/* --- events -------------------------------------------------------------------------------- */
function onEvent(event) {
  const kind = event.kind;
  const data = event.data || {};
  if (kind.startsWith("call.")) {
    if (kind === "call.said" && data.call_id === state.transcriptFor) $("transcript-list").appendChild(line(data));
    callsSoon();
  } else if (kind === "request.done" || kind === "job.cancelled") {
    refreshJobs();
  } else if (kind === "deploy.progress") {
    onDeployEvent(data);
  } else if (kind === "emergency.escalated" && !state.deskMissing) {
    refreshDesk();
  }
}

function start() {
  document.addEventListener("pete:event", (e) => onEvent(e.detail));
  document.addEventListener("pete:health", (e) => renderHealth(e.detail));
  document.addEventListener("pete:models", (e) => renderModels(e.detail));
  $("calls-outcome").addEventListener("change", refreshCalls);
  $("calls-q").addEventListener("input", callsSoon);
  $("calls-filter").addEventListener("submit", (e) => { e.preventDefault(); refreshCalls(); });
  $("desk-kind").addEventListener("change", refreshDesk);
  $("desk-status").addEventListener("change", refreshDesk);
  $("desk-filter").addEventListener("submit", (e) => e.preventDefault());
  $("transcript-close").addEventListener("click", () => { state.transcriptFor = null; $("transcript-panel").hidden = true; });
  $("rollback-send").addEventListener("click", rollback);
  $("token").addEventListener("input", () => { refreshDesk(); refreshCalls(); refreshJobs(); });  // lists a token unlocks
  refreshCalls();
  refreshJobs();
  refreshDesk();
  setInterval(refreshJobs, JOBS_EVERY_MS);
  setInterval(refreshCalls, CALLS_EVERY_MS);
}

window.PeteOperator = { confirm: confirmAction, followRollout };
document.addEventListener("DOMContentLoaded", start);
})();
