/* Small SVG charts for the dashboard (no library): a line chart with gaps, and horizontal bars.
   Each chart also sets an aria-label that says in words what it shows. */
(() => {
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(name, attrs) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  return el;
}

function formatSeconds(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (value < 1) return `${Math.round(value * 1000)} ms`;
  return `${value.toFixed(value < 10 ? 2 : 1)} s`;
}

/* series: [{name, values: [number|null]}]; labels: x labels for first and last point. */
function renderLineChart(svg, series, { firstLabel = "", lastLabel = "", describe = "" } = {}) {
  const width = Math.max(svg.clientWidth || 600, 200);
  const height = Math.max(svg.clientHeight || 190, 120);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const pad = { left: 52, right: 10, top: 10, bottom: 22 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const all = series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined));
  const max = Math.max(0.05, ...all) * 1.1;
  const count = Math.max(...series.map((s) => s.values.length), 2);
  const x = (i) => pad.left + (plotW * i) / (count - 1);
  const y = (v) => pad.top + plotH - (plotH * v) / max;

  for (const fraction of [0, 0.5, 1]) {
    const value = max * fraction;
    svg.appendChild(svgEl("line", { class: "grid-line", x1: pad.left, x2: width - pad.right, y1: y(value), y2: y(value) }));
    const label = svgEl("text", { class: "axis-label", x: pad.left - 6, y: y(value) + 4, "text-anchor": "end" });
    label.textContent = formatSeconds(value);
    svg.appendChild(label);
  }
  const left = svgEl("text", { class: "axis-label", x: pad.left, y: height - 4 });
  left.textContent = firstLabel;
  const right = svgEl("text", { class: "axis-label", x: width - pad.right, y: height - 4, "text-anchor": "end" });
  right.textContent = lastLabel;
  svg.append(left, right);

  series.forEach((s, index) => {
    let d = "";
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) { pen = false; return; }
      d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)} `;
      pen = true;
    });
    if (d) svg.appendChild(svgEl("path", { class: `series-${index}`, d }));
    // Dots on every point, so a minute with traffic between quiet minutes still shows.
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      svg.appendChild(svgEl("circle", { class: `point-${index}`, cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 2.5 }));
    });
  });
  svg.setAttribute("aria-label", describe || "No data yet");
}

/* rows: [{label, values: [number|null]}] drawn as bars relative to the largest value. */
function renderBars(container, rows, names, describe) {
  container.replaceChildren();
  const max = Math.max(0.001, ...rows.flatMap((r) => r.values.filter((v) => v !== null && v !== undefined)));
  for (const row of rows) {
    const line = document.createElement("div");
    line.className = "bar-row";
    const label = document.createElement("span");
    label.textContent = row.label;
    const track = document.createElement("div");
    track.className = "bar-track";
    row.values.forEach((value, index) => {
      const bar = document.createElement("div");
      bar.className = `bar bar-${index}`;
      bar.style.width = `${value ? Math.max(1, (100 * value) / max) : 0}%`;
      bar.title = `${names[index]}: ${formatSeconds(value)}`;
      track.appendChild(bar);
    });
    line.append(label, track);
    container.appendChild(line);
  }
  container.setAttribute("aria-label", describe || "No data yet");
}

window.PeteCharts = { renderLineChart, renderBars, formatSeconds };
})();
