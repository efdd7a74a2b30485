// Eval scores panel: the latest saved `pete eval` run per model (GET /api/evals/latest).
// Self-contained: it touches only #evals-section, so the rest of the dashboard is independent of it.
"use strict";
(() => {
  const body = document.querySelector("#evals-table tbody");
  const gate = document.getElementById("evals-gate");
  if (!body || !gate) return;

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function render(data) {
    const min = data.gate && data.gate.min_score;
    gate.textContent = min == null ? "Quality gate: off." : `Quality gate: switches and deploys need a score of at least ${min.toFixed(2)}.`;
    if (!data.latest || data.latest.length === 0) return;
    body.replaceChildren(
      ...data.latest.map((row) => {
        const tr = document.createElement("tr");
        const weakest = Object.entries(row.checks)
          .filter(([, rate]) => rate < 1)
          .sort((a, b) => a[1] - b[1])
          .slice(0, 3)
          .map(([name, rate]) => `${name} ${Math.round(rate * 100)}%`)
          .join(", ");
        const score = cell(row.score.toFixed(3));
        if (min != null && row.score < min) score.classList.add("bad");
        tr.append(cell(row.model), cell(`${row.suite} v${row.suite_version}`), score, cell(`${row.cases_passed}/${row.cases}`), cell(weakest || "all pass"));
        return tr;
      }),
    );
  }

  async function refresh() {
    try {
      const response = await fetch("/api/evals/latest", { cache: "no-store" });
      if (response.ok) render(await response.json());
    } catch {
      // the panel keeps its last content; the rest of the page reports connectivity
    }
  }

  refresh();
  setInterval(refresh, 60000);
})();
