/* phenokg explorer, training jobs: the list with progress and loss curves, submit (JSON config) and cancel. */

import { $, api, el, showStatus, unavailable } from "./explore-core.js";

let jobsTimer = null;

/* The loss series of a run's history: ``loss`` (knowledge encoder), else ``total`` (clip: the summed loss), else
   the first series named like a loss. Not the first metric key: a finished job's metrics start with its headline
   figures, which the history does not hold. */
export function lossSeries(history) {
  const keys = new Set(history.flatMap((h) => Object.keys(h).filter((k) => typeof h[k] === "number")));
  if (keys.has("loss")) return "loss";
  if (keys.has("total")) return "total";
  return [...keys].find((k) => /loss/i.test(k)) || null;
}

function sparkline(history, name) {
  const pts = history.filter((h) => typeof h[name] === "number");
  const w = 140;
  const h = 32;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
  svg.setAttribute("role", "img");
  const label = name === "loss" ? "loss" : `loss (${name})`;
  svg.setAttribute("aria-label", `${label} over ${pts.length} step(s)`);
  const title = document.createElementNS(svg.namespaceURI, "title");
  title.textContent = pts.length ? `${label}: ${pts[0][name].toPrecision(4)} → ${pts[pts.length - 1][name].toPrecision(4)}` : label;
  svg.append(title);
  if (pts.length < 2) return svg;
  const xs = pts.map((p) => p.step);
  const ys = pts.map((p) => p[name]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (x) => 2 + ((x - x0) / (x1 - x0 || 1)) * (w - 4);
  const sy = (y) => h - 2 - ((y - y0) / (y1 - y0 || 1)) * (h - 4);
  const line = document.createElementNS(svg.namespaceURI, "polyline");
  line.setAttribute("points", pts.map((p) => `${sx(p.step).toFixed(1)},${sy(p[name]).toFixed(1)}`).join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#0b5394");
  line.setAttribute("stroke-width", "1.5");
  svg.append(line);
  return svg;
}

export async function loadJobs() {
  const out = $("#jobs-out");
  try {
    const body = await api("/jobs");
    const items = body.items || [];
    if (!items.length) { out.replaceChildren(el("p", { class: "muted", text: "No training jobs yet." })); return; }
    out.replaceChildren(el("table", {}, el("thead", {}, el("tr", {}, ["Job", "Kind", "Status", "Progress", "Metrics", "History", ""].map((t) => el("th", { text: t })))),
      el("tbody", {}, items.map((j) => {
        const names = Object.keys(j.metrics || {});
        const loss = lossSeries(j.history || []);
        return el("tr", { "data-job": j.id },
          el("td", {}, el("span", { class: "curie", text: j.id }), el("div", { class: "muted small", text: j.created_at })),
          el("td", { text: j.kind }),
          el("td", {}, el("span", { class: `st ${j.status}`, text: j.status }), j.error ? el("div", { class: "small", text: j.error }) : null),
          el("td", {}, el("span", { class: "progress", role: "progressbar", "aria-valuenow": String(Math.round(j.progress * 100)), "aria-valuemin": "0", "aria-valuemax": "100" },
            el("span", { style: `width:${(j.progress * 100).toFixed(1)}%` })), el("span", { class: "small", text: ` ${Math.round(j.progress * 100)}% · ${j.step}/${j.total_steps}` })),
          el("td", { class: "small", text: names.map((n) => `${n} ${Number(j.metrics[n]).toPrecision(4)}`).join(", ") || "–" }),
          el("td", {}, loss ? sparkline(j.history || [], loss) : el("span", { class: "muted small", text: "no loss logged yet" })),
          el("td", {}, ["queued", "running"].includes(j.status)
            ? el("button", { type: "button", class: "secondary", onclick: () => cancelJob(j.id), text: "Cancel" }) : j.model_version || ""));
      }))));
    const live = items.some((j) => ["queued", "running"].includes(j.status));
    clearTimeout(jobsTimer);
    if (live && location.hash.startsWith("#/jobs")) jobsTimer = setTimeout(loadJobs, 3000);
  } catch (err) {
    unavailable(out, "Training jobs", err);
  }
}

async function cancelJob(id) {
  try { await api(`/jobs/${encodeURIComponent(id)}/cancel`, { method: "POST" }); showStatus(""); }
  catch (err) { showStatus(`Cancel failed: ${err.message} (${err.status})`); }
  loadJobs();
}

export function setupJobs() {
  $("#jobs-refresh").addEventListener("click", loadJobs);
  $("#job-config").addEventListener("keydown", (e) => {  // Enter makes a new line; Ctrl+Enter submits
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); $("#job-form").requestSubmit(); }
  });
  $("#job-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    let config;
    try { config = JSON.parse($("#job-config").value || "{}"); }
    catch (err) { showStatus(`The job config is not JSON: ${err.message}`); return; }
    try {
      await api("/jobs", { method: "POST", headers: { "Content-Type": "application/json" },
                           body: JSON.stringify({ kind: $("#job-kind").value, config }) });
      showStatus("");
    } catch (err) { showStatus(`Submitting the job failed: ${err.message} (${err.status})`); }
    loadJobs();
  });
}
