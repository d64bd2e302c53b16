/* phenokg explorer: search, term and disease views with a Cytoscape.js neighbourhood graph, evidence
   thumbnails, image retrieval and training jobs. Plain DOM, no build step; every text goes in via textContent. */
"use strict";

const $ = (sel) => document.querySelector(sel);
const STARTERS = ["HP:0002090", "HP:0001640", "HP:0002202", "HP:0001250"];
const TOKEN_KEY = "phenokg.apiToken";
let cy = null;
let jobsTimer = null;

// ---------------------------------------------------------------- helpers
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

class ApiError extends Error {
  constructor(status, detail, retryAfter = null) { super(detail); this.status = status; this.retryAfter = retryAfter; }
}

async function api(path, options = {}) {
  const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
  const token = localStorage.getItem(TOKEN_KEY);
  if (token && options.method && options.method !== "GET") headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, Object.assign({}, options, { headers }));
  } catch (err) {
    throw new ApiError(0, `the service does not answer (${err.message})`);
  }
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const detail = body && (body.detail || body.title) ? (body.detail || body.title) : response.statusText;
    throw new ApiError(response.status, typeof detail === "string" ? detail : JSON.stringify(detail),
                       response.headers.get("Retry-After"));
  }
  return body;
}

/* A panel whose endpoint is missing (404) or not ready (503) says so instead of failing. */
function unavailable(container, what, err) {
  const reason = err.status === 404 ? `${what} is not available on this server (404).`
    : err.status === 503 ? `${what} is not ready: ${err.message} (503).`
    : err.status === 401 || err.status === 403 ? `${err.message} (${err.status}): set the API token at the top right.`
    : `${what} failed: ${err.message}${err.status ? ` (${err.status})` : ""}.`;
  container.replaceChildren(el("p", { class: "notice", "data-unavailable": String(err.status), text: reason }));
}

function showStatus(text) {
  const box = $("#status");
  box.textContent = text;
  box.hidden = !text;
}

const termLink = (id, name) => el("a", { href: `#/term/${id}`, text: name || id });
const diseaseLink = (id, name) => el("a", { href: `#/disease/${id}`, text: name || id });
const pct = (f) => (f === null || f === undefined ? "" : `${Math.round(f * 100)}%`);

// ---------------------------------------------------------------- search with autocomplete
function setupSearch() {
  const input = $("#q");
  const list = $("#suggestions");
  let active = -1;
  let seq = 0;
  let timer = null;
  const items = () => [...list.querySelectorAll("li")];
  const close = () => { list.hidden = true; active = -1; input.setAttribute("aria-expanded", "false"); };
  const highlight = (i) => {
    items().forEach((li, j) => li.setAttribute("aria-selected", String(i === j)));
    active = i;
  };
  const pick = (id) => { close(); input.blur(); location.hash = `#/term/${id}`; };

  async function suggest() {
    const q = input.value.trim();
    if (!q) { close(); return; }
    const mine = ++seq;
    try {
      const body = await api(`/search?mode=lexical&limit=12&q=${encodeURIComponent(q)}`);
      if (mine !== seq) return;
      list.replaceChildren(...body.hits.map((h) => el("li", {
        role: "option", "data-id": h.id, onmousedown: (e) => { e.preventDefault(); pick(h.id); },
      }, el("span", { class: "id", text: h.id }), el("span", { class: "name", text: h.name }),
         h.field !== "name" && h.field !== "id" ? el("span", { class: "via", text: `${h.field}: ${h.matched}` }) : null)));
      if (!body.hits.length) list.replaceChildren(el("li", { class: "muted", text: `no phenotype matches “${q}”` }));
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      highlight(body.hits.length ? 0 : -1);
    } catch (err) {
      list.replaceChildren(el("li", { class: "muted", text: `search failed: ${err.message}` }));
      list.hidden = false;
    }
  }
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(suggest, 120); });
  input.addEventListener("keydown", (e) => {
    const li = items();
    if (e.key === "ArrowDown" && li.length) { e.preventDefault(); highlight((active + 1) % li.length); }
    else if (e.key === "ArrowUp" && li.length) { e.preventDefault(); highlight((active - 1 + li.length) % li.length); }
    else if (e.key === "Enter") {
      e.preventDefault();
      const chosen = li[active] && li[active].dataset.id;
      if (chosen) pick(chosen); else suggest();
    } else if (e.key === "Escape") close();
  });
  input.addEventListener("blur", () => setTimeout(close, 150));
}

// ---------------------------------------------------------------- graph drawing
const GRAPH_STYLE = [
  { selector: "node", style: {
      label: "data(label)", "font-size": 11, "text-wrap": "wrap", "text-max-width": 120, "text-valign": "bottom",
      "text-margin-y": 4, color: "#1d2733", "background-color": "#3d7cc9", width: 22, height: 22,
      "border-width": 2, "border-color": "#fff" } },
  { selector: "node[kind = 'phenotype'][role = 'center'], node[kind = 'disease'][role = 'center']", style: {
      width: 38, height: 38, "font-size": 13, "font-weight": 700, "border-color": "#0b3d6e", "border-width": 3 } },
  { selector: "node[kind = 'disease']", style: { shape: "round-rectangle", "background-color": "#e07b39", width: 26, height: 20 } },
  { selector: "node[kind = 'evidence']", style: { shape: "round-tag", "background-color": "#7d5fb8" } },
  { selector: "node[role = 'excluded']", style: { "border-color": "#d64541", "border-width": 3 } },
  { selector: "edge", style: { width: 2, "curve-style": "bezier", "target-arrow-shape": "triangle",
      "line-color": "#9aa3ad", "target-arrow-color": "#9aa3ad", "arrow-scale": 0.9 } },
  { selector: "edge[type = 'HAS_PHENOTYPE'], edge[type = 'SHOWS']", style: {
      "line-color": "#2e9e5b", "target-arrow-color": "#2e9e5b", width: 2.5 } },
  { selector: "edge[type = 'EXCLUDES'], edge[type = 'RULES_OUT']", style: {
      "line-color": "#d64541", "target-arrow-color": "#d64541", "line-style": "dashed", width: 3,
      "target-arrow-shape": "tee" } },
  { selector: "node:selected", style: { "overlay-opacity": 0.15, "overlay-color": "#0b5394" } },
];

/* Rows by role (OLS-like): parents above, the centre, children below; typical diseases left, excluded right,
   evidence at the bottom. */
function place(nodes) {
  const rows = { parent: [], center: [], child: [], typical: [], excluded: [], shows: [], rules_out: [] };
  nodes.forEach((n) => (rows[n.role] || rows.child).push(n));
  const pos = {};
  const spread = (list, y, width, x0 = 0) => list.forEach((n, i) => {
    pos[n.id] = { x: x0 + (list.length === 1 ? 0 : -width / 2 + (width * i) / (list.length - 1)), y };
  });
  const column = (list, x) => list.forEach((n, i) => { pos[n.id] = { x, y: -90 + i * 55 - Math.max(0, list.length - 4) * 12 }; });
  spread(rows.parent, -170, Math.min(600, 160 * rows.parent.length));
  spread(rows.center, 0, 0);
  const kids = rows.child;
  const perRow = 7;
  for (let r = 0; r * perRow < kids.length; r++) {
    const slice = kids.slice(r * perRow, (r + 1) * perRow);
    spread(slice, 150 + r * 70, Math.min(820, 125 * slice.length), r % 2 ? 40 : 0);
  }
  column(rows.typical, -420);
  column(rows.excluded, 420);
  spread([...rows.shows, ...rows.rules_out], 150 + Math.ceil(kids.length / perRow) * 70 + 40,
         Math.min(700, 150 * (rows.shows.length + rows.rules_out.length)));
  return pos;
}

function draw(graph, onTap) {
  const pos = place(graph.nodes);
  const elements = [
    ...graph.nodes.map((n) => ({ group: "nodes", data: Object.assign({}, n), position: pos[n.id] })),
    ...graph.edges.map((e, i) => ({ group: "edges", data: Object.assign({ id: `e${i}` }, e) })),
  ];
  if (cy) cy.destroy();
  cy = cytoscape({ container: $("#graph"), elements, style: GRAPH_STYLE, layout: { name: "preset", padding: 30 },
                   minZoom: 0.2, maxZoom: 3 });
  cy.on("tap", "node", (evt) => onTap(evt.target.data()));
  window.phenokgGraph = cy; // for tests and the console
}

function openNode(data) {
  if (data.role === "center") return;
  if (data.kind === "phenotype") location.hash = `#/term/${data.id}`;
  else if (data.kind === "disease") location.hash = `#/disease/${data.id}`;
  else if (data.kind === "evidence") window.open(`/evidence/${encodeURIComponent(data.id)}/image`, "_blank");
}

// ---------------------------------------------------------------- term view
function propsList(rows) {
  const dl = el("dl", { class: "props" });
  for (const [label, value] of rows) {
    if (value === null || value === undefined || (Array.isArray(value) && !value.length) || value === "") continue;
    dl.append(el("dt", { text: label }), el("dd", {}, value));
  }
  return dl;
}

async function showTerm(id) {
  enterEntity();
  const card = $("#card");
  card.replaceChildren(el("p", { class: "muted", text: `Loading ${id}…` }));
  let term;
  let hood;
  try {
    [term, hood] = await Promise.all([api(`/terms/${encodeURIComponent(id)}`),
      api(`/terms/${encodeURIComponent(id)}/neighbourhood?children=40&diseases=25&evidence=8`)]);
  } catch (err) {
    card.replaceChildren(el("p", { class: "notice", text: `${id}: ${err.message}` }));
    return;
  }
  if (term.id !== id) history.replaceState(null, "", `#/term/${term.id}`);
  const children = hood.nodes.filter((n) => n.role === "child");
  card.replaceChildren(
    el("div", { class: "term-title" }, el("h2", { id: "term-name", text: term.name }),
       el("span", { class: "curie", text: term.id }), el("span", { class: "badge", text: "Phenotype" }),
       term.resolved_from ? el("span", { class: "badge", text: `resolved from ${term.requested_id}` }) : null),
    el("p", { class: "definition", text: term.definition || "No definition." }),
    propsList([
      ["Synonyms", term.synonyms.length ? el("ul", {}, term.synonyms.map((s) => el("li", {}, s.text,
        s.scope ? el("span", { class: "muted small", text: ` (${s.scope.toLowerCase()})` }) : null))) : null],
      ["Parents", term.parents.length ? el("ul", {}, term.parents.map((p) => el("li", {}, termLink(p.id, p.name)))) : null],
      ["Children", children.length ? el("ul", {}, children.map((c) => el("li", {}, termLink(c.id, c.label))),
        hood.totals.children > children.length ? el("li", { class: "muted", text: `… ${hood.totals.children - children.length} more` }) : null) : "none (a leaf term)"],
      ["Alternative ids", term.alt_ids.join(", ")],
      ["Cross-references", term.xrefs.join(", ")],
      ["Depth / IC", `${term.depth ?? "–"} / ${term.ic !== null && term.ic !== undefined ? term.ic.toFixed(2) : "–"}`],
      ["Comment", term.comment],
    ]));
  $("#graph-title").textContent = `Neighbourhood of ${term.name}`;
  $("#graph-note").textContent = `${hood.totals.parents} parent(s), ${hood.totals.children} child(ren), ` +
    `${hood.totals.typical} disease(s) typical, ${hood.totals.excluded} excluded, ${hood.totals.evidence} evidence image(s). ` +
    "Click a node to open it; scroll to zoom.";
  draw(hood, openNode);
  renderTermDiseases(hood);
  renderEvidence(term);
}

function diseaseSet(kind, title, rows, empty) {
  return el("div", { class: `set ${kind}`, "data-set": kind },
    el("h4", {}, el("span", { class: "dot" }), `${title} (${rows.length})`),
    rows.length ? el("ul", {}, rows) : el("p", { class: "muted small", text: empty }));
}

function renderTermDiseases(hood) {
  const box = $("#disease-sets");
  const typical = hood.nodes.filter((n) => n.role === "typical");
  const excluded = hood.nodes.filter((n) => n.role === "excluded");
  box.replaceChildren(el("h3", { text: "Diseases" }), el("div", { class: "sets" },
    diseaseSet("typical", "Typical: the disease shows it", typical.map((d) => el("li", {},
      el("span", { class: "name" }, diseaseLink(d.id, d.label)), el("span", { class: "meta", text: `${d.source} ${pct(d.frequency)}` }))),
      "No disease lists it as typical."),
    diseaseSet("excluded", "Excluded: the disease rules it out", excluded.map((d) => el("li", {},
      el("span", { class: "name" }, diseaseLink(d.id, d.label)), el("span", { class: "meta", text: d.source }))),
      "No disease excludes it.")));
}

async function renderEvidence(term) {
  const box = $("#evidence");
  box.replaceChildren(el("h3", { text: "Image evidence" }), el("p", { class: "muted", text: "Loading…" }));
  try {
    const page = await api(`/terms/${encodeURIComponent(term.id)}/evidence?limit=12`);
    const grid = el("div", { class: "thumbs" }, page.items.map((e) => el("figure", { class: "thumb", "data-evidence": e.id },
      el("a", { href: e.image_url, target: "_blank", rel: "noopener" },
        el("img", { src: `${e.image_url}?size=128`, alt: e.caption, loading: "lazy" })),
      el("figcaption", {}, el("div", { class: `rel ${e.relation}`, text: e.relation === "shows" ? "shows" : "rules out" }),
        e.caption))));
    box.replaceChildren(el("h3", { text: `Image evidence (${page.total})` }),
      page.items.length ? grid : el("p", { class: "muted", text: "No evidence image mentions this phenotype." }));
  } catch (err) {
    box.replaceChildren(el("h3", { text: "Image evidence" }));
    const slot = el("div");
    box.append(slot);
    unavailable(slot, "Evidence", err);
  }
}

// ---------------------------------------------------------------- disease view
async function showDisease(id) {
  enterEntity();
  const card = $("#card");
  card.replaceChildren(el("p", { class: "muted", text: `Loading ${id}…` }));
  let d;
  try {
    d = await api(`/diseases/${encodeURIComponent(id)}`);
  } catch (err) {
    card.replaceChildren(el("p", { class: "notice", text: `${id}: ${err.message}` }));
    return;
  }
  card.replaceChildren(
    el("div", { class: "term-title" }, el("h2", { id: "term-name", text: d.name }), el("span", { class: "curie", text: d.id }),
       el("span", { class: "badge", text: `Disease · ${d.source}` })),
    propsList([["Typical", `${d.typical.length} phenotype(s)`], ["Excluded", `${d.excluded.length} phenotype(s)`],
               ["Genes", (d.properties.genes || []).join(", ")],
               ["Aspect", d.aspect === "P" ? "phenotypic abnormality (P)" : d.aspect]]));
  const nodes = [{ id: d.id, label: d.name, kind: "disease", role: "center" },
    ...d.typical.map((p) => ({ id: p.id, label: p.name || p.id, kind: "phenotype", role: "typical" })),
    ...d.excluded.map((p) => ({ id: p.id, label: p.name || p.id, kind: "phenotype", role: "excluded" }))];
  const edges = [...d.typical.map((p) => ({ source: d.id, target: p.id, type: "HAS_PHENOTYPE" })),
    ...d.excluded.map((p) => ({ source: d.id, target: p.id, type: "EXCLUDES" }))];
  $("#graph-title").textContent = `Phenotypes of ${d.name}`;
  $("#graph-note").textContent = "Green: typical set (HAS_PHENOTYPE); red dashed: excluded set (EXCLUDES). Click a phenotype to open it.";
  draw({ nodes, edges }, openNode);
  const row = (p, excluded) => el("li", {}, el("span", { class: "name" }, termLink(p.id, p.name)),
    el("span", { class: "meta", text: [excluded ? "" : pct(p.frequency), p.frequencies.join(" "), p.evidence.join(" ")].filter(Boolean).join(" · ") }));
  $("#disease-sets").replaceChildren(el("h3", { text: "Phenotype sets" }), el("div", { class: "sets" },
    diseaseSet("typical", "Typical set", d.typical.map((p) => row(p, false)), "No typical phenotypes."),
    diseaseSet("excluded", "Excluded set", d.excluded.map((p) => row(p, true)), "No excluded phenotypes.")));
  $("#evidence").replaceChildren(el("h3", { text: "Image evidence" }),
    el("p", { class: "muted", text: "Open a phenotype to see the images whose captions show or rule it out." }));
}

// ---------------------------------------------------------------- image retrieval
/* POST /retrieval/image (app/schemas/retrieval.py): phenotypes grounded in the evidence graph, what the nearest
   evidence rules out, findings ranked by the likelihood ranker, the nearest evidence images. */
const RETRIEVAL_QUERY = { k: 10, findings: 5, evidence: 6 };

function setupRetrieval() {
  const form = $("#upload-form");
  const file = $("#upload-file");
  const scope = $("#upload-scope");
  const out = $("#retrieval-out");
  file.addEventListener("change", () => {
    const preview = $("#upload-preview");
    if (file.files[0] && file.files[0].type.startsWith("image/")) {
      preview.src = URL.createObjectURL(file.files[0]);
      preview.hidden = false;
    } else preview.hidden = true;
  });
  async function submit() {
    if (!file.files[0]) return;
    const data = new FormData();
    data.append("file", file.files[0]);
    const wanted = scope.value === "all" ? "all" : "model";
    const query = new URLSearchParams(Object.assign({}, RETRIEVAL_QUERY, { scope: wanted }));
    out.replaceChildren(el("p", { class: "muted", text: "Uploading and searching…" }));
    try {
      const r = await api(`/retrieval/image?${query}`, { method: "POST", body: data });
      renderRetrieval(out, r);
    } catch (err) {
      if (err.status === 503 && err.retryAfter) retryLater(out, err, submit);
      else unavailable(out, "Image retrieval", err);
    }
  }
  form.addEventListener("submit", (e) => { e.preventDefault(); submit(); });
}

/* A 503 with Retry-After: scope=all while the ontology's prompts are being embedded. Say so plainly; the user
   retries with the same image. */
function retryLater(out, err, again) {
  const seconds = Number(err.retryAfter);
  const when = Number.isFinite(seconds) && seconds > 0 ? `in about ${seconds} s` : "in a little while";
  out.replaceChildren(el("div", { class: "notice", "data-unavailable": "503", "data-retry-after": err.retryAfter },
    el("strong", { text: "Not ready yet. " }), err.message,
    el("p", { class: "small", text: `The server asks to try again ${when}. Scope “model” answers now.` }),
    el("button", { type: "button", class: "secondary", "data-action": "retry", onclick: again, text: "Try again" })));
}

/* A small thumbnail of one evidence image (its caption on hover when the answer has it), linking to the image. */
const thumbLink = (id, caption = "", size = 64) => el("a", { class: "mini", href: `/evidence/${encodeURIComponent(id)}/image`,
  target: "_blank", rel: "noopener", title: caption ? `${caption} (${id})` : id, "data-evidence": id },
  el("img", { src: `/evidence/${encodeURIComponent(id)}/image?size=${size}`, alt: caption || id, width: 32, height: 32 }));

function probabilityBar(p, kind = "", label = "", what = "probability") {
  const fill = el("span");
  fill.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
  return el("span", { class: `prob ${kind}`, title: `${what} ${(p * 100).toFixed(1)}%` },
    label ? el("span", { class: "muted small", text: label }) : null,
    el("span", { class: "bar", "aria-hidden": "true" }, fill), el("span", { class: "pct", text: pct(p) }));
}

function names(r) {
  const map = new Map();
  for (const p of [...r.findings, ...r.ruled_out, ...r.phenotypes]) if (p.name) map.set(p.id, p.name);
  return (id) => map.get(id) || id;
}

function retrievalMeta(r) {
  const m = r.model || {};
  const fixed = (x) => (x === null || x === undefined ? "–" : x.toFixed(3));
  const near = fixed(r.nearest_similarity);
  const threshold = r.domain_threshold === null || r.domain_threshold === undefined ? "no threshold (not fitted)"
    : `threshold ${r.domain_threshold.toFixed(3)}`;
  const domain = fixed(r.domain_similarity);
  const item = (label, value, attrs = {}) => el("li", attrs, el("span", { class: "muted", text: `${label} ` }), value);
  return el("ul", { class: "retrieval-meta", "data-meta": "" },
    item("Model", el("span", { class: "curie", text: m.id || "none" }),
      { title: m.active ? "the registry's active clip version" : "not the registry's active version" }),
    item("Device", r.device, { "data-device": r.device }),
    item("Calibrated", m.calibrated ? "yes" : "no", { "data-calibrated": String(Boolean(m.calibrated)) }),
    item("Vocabulary", `${m.vocabulary_size ?? "–"} phenotypes`),
    item("Nearest evidence", `similarity ${near}`),
    item("Domain check", `similarity ${domain} vs ${threshold}`,
      { title: "nearest reference image in generic ImageNet features; below the threshold the image is out of domain" }),
    item("Scope", r.scope === "all" ? "all phenotypes (extrapolation)" : "the model's phenotypes"),
    item("Time", `${Math.round(r.elapsed_ms)} ms`));
}

function retrievalBanner(r) {
  if (!r.in_domain) {
    return el("div", { class: "banner out", role: "alert", "data-domain": "out" },
      el("strong", { text: "Outside what this model knows" }),
      el("p", { text: r.warning || "This image is unlike every evidence image the model knows: treat every answer as unreliable." }));
  }
  return r.warning ? el("div", { class: "banner caution", role: "note", "data-warning": "" },
    el("strong", { text: "Caveat" }), el("p", { text: r.warning })) : null;
}

function phenotypeRow(p, ctx) {
  const extrapolated = p.in_vocabulary === false;
  const score = p.probability === null || p.probability === undefined
    ? el("span", { class: "prob none", title: "image–text similarity; no probability outside the model's vocabulary",
                   text: `similarity ${p.similarity.toFixed(3)}` })
    : probabilityBar(p.probability);
  const support = p.supporting_evidence || [];
  const against = p.contradicting_evidence || [];
  const evidence = [];
  if (support.length) evidence.push(el("span", { class: "ev-for", "data-supporting": String(support.length) },
    el("span", { class: "muted", text: "shown in " }), support.map((id) => thumbLink(id, ctx.caption(id)))));
  if (against.length) evidence.push(el("span", { class: "ev-against", "data-contradicting": String(against.length),
    title: against.join(", "), text: `${against.length} neighbour${against.length > 1 ? "s" : ""} rule${against.length > 1 ? "" : "s"} it out` }));
  if (p.neighbour_share !== null && p.neighbour_share !== undefined) {
    evidence.push(el("span", { class: "muted", text: `${pct(p.neighbour_share)} of labelled neighbours show it` }));
  }
  if (!evidence.length) evidence.push(el("span", { class: "muted", text: "no nearby evidence image is labelled for it" }));
  const ruledOut = ctx.ruledOut.has(p.id);
  return el("li", { "data-id": p.id, "data-extrapolated": extrapolated ? "" : null, class: ruledOut ? "also-ruled-out" : null },
    el("div", { class: "hit-head" }, el("span", { class: "name" }, termLink(p.id, p.name)),
      el("span", { class: "curie", text: p.id }),
      extrapolated ? el("span", { class: "badge extrapolated", text: "extrapolated",
                                  title: "outside what the model learned: ranked by image–text similarity alone" }) : null,
      ruledOut ? el("span", { class: "badge ruled", text: "ruled out", title: "see Ruled out" }) : null, score),
    el("div", { class: "hit-ev small" }, evidence));
}

function ruledOutRow(p, ctx) {
  return el("li", { "data-id": p.id },
    el("div", { class: "hit-head" }, el("span", { class: "name" }, termLink(p.id, p.name)),
      el("span", { class: "curie", text: p.id }), probabilityBar(p.probability, "low", "shows it", "probability that the image shows it")),
    el("div", { class: "hit-ev small" },
      el("span", { class: "muted", text: `${pct(p.neighbour_share)} of labelled neighbours rule it out` }),
      p.evidence.length ? el("span", {}, el("span", { class: "muted", text: "ruled out in " }),
        p.evidence.map((id) => thumbLink(id, ctx.caption(id)))) : null));
}

function findingRow(f, nameOf) {
  const reasons = [["supported by", f.supported_by, "for"], ["contradicted by", f.contradicted_by, "against"],
    ["absent, as expected", f.absent_consistent, "for"], ["absent, but typical of it", f.absent_conflicting, "against"]];
  return el("li", { "data-id": f.id, "data-rank": String(f.rank) },
    el("div", { class: "hit-head" }, el("span", { class: "rank", text: `${f.rank}.` }),
      el("span", { class: "name" }, diseaseLink(f.id, f.name)), el("span", { class: "curie", text: f.id }),
      el("span", { class: "badge", text: f.source }),
      f.probability === null || f.probability === undefined
        ? el("span", { class: "muted small", text: `log LR ${f.score.toFixed(1)}`, title: "the likelihood ranker's score (no probability for a finding the model was not trained on)" })
        : probabilityBar(f.probability, "", "", "calibrated probability of its defining phenotype")),
    el("dl", { class: "why small" }, reasons.filter(([, ids]) => ids && ids.length).flatMap(([label, ids, kind]) => [
      el("dt", { class: kind, text: label }), el("dd", { text: ids.map(nameOf).join(", ") })])));
}

function resultCard(kind, title, note, items, empty, list = "ol") {
  return el("div", { class: `card ${kind}`, "data-result": kind }, el("h3", { text: `${title} (${items.length})` }),
    note ? el("p", { class: "muted small", text: note }) : null,
    items.length ? el(list, { class: "hits" }, items) : el("p", { class: "muted", text: empty }));
}

function renderRetrieval(out, r) {
  const nameOf = names(r);
  const captions = new Map(r.evidence.map((e) => [e.id, e.caption]));
  const ctx = { caption: (id) => captions.get(id) || "", ruledOut: new Set(r.ruled_out.map((p) => p.id)) };
  const calibration = r.model && r.model.calibrated ? "probability that the image shows it"
    : "probabilities are not calibrated";
  const phen = resultCard("phenotypes", "Present phenotypes",
    r.scope === "all" ? `Every phenotypic abnormality, by image–text similarity; ${calibration} where the model learned it.`
      : `Most probable first; ${calibration}.`,
    r.phenotypes.map((p) => phenotypeRow(p, ctx)), "No phenotype.");
  const ruled = resultCard("ruled-out", "Ruled out", "What the nearest labelled evidence images rule out.",
    r.ruled_out.map((p) => ruledOutRow(p, ctx)), "The nearest evidence rules nothing out.", "ul");
  const found = resultCard("findings", "Findings",
    "Ranked by the likelihood ranker from the present and ruled-out phenotypes; the bar is the calibrated probability of the finding's defining phenotype (the model's own findings; others show the ranker's log likelihood ratio).",
    r.findings.map((f) => findingRow(f, nameOf)), "No finding ranked.");
  const ev = el("div", { class: "card evidence", "data-result": "evidence" }, el("h3", { text: `Nearest evidence (${r.evidence.length})` }),
    r.evidence.length ? el("div", { class: "thumbs" }, r.evidence.map((e) => el("figure", { class: "thumb", "data-evidence": e.id },
      el("a", { href: e.image_url, target: "_blank", rel: "noopener" }, el("img", { src: `${e.image_url}?size=128`, alt: e.caption })),
      el("figcaption", {}, el("div", { class: "rel shows", text: `similarity ${e.score.toFixed(3)}` }),
        e.finding ? el("div", { class: "finding", text: `finding: ${nameOf(e.finding)}` }) : null,
        e.caption,
        e.phenotypes.length ? el("div", { class: "muted", text: `shows ${e.phenotypes.map(nameOf).join(", ")}` }) : null,
        e.rules_out.length ? el("div", { class: "muted", text: `rules out ${e.rules_out.map(nameOf).join(", ")}` }) : null))))
      : el("p", { class: "muted", text: "No evidence image." }));
  out.replaceChildren(...[retrievalMeta(r), retrievalBanner(r)].filter(Boolean),
    el("div", { class: `results retrieval${r.in_domain ? "" : " unreliable"}` }, phen, el("div", { class: "stack" }, found, ruled), ev));
}

// ---------------------------------------------------------------- training jobs
function sparkline(history, name) {
  const pts = history.filter((h) => typeof h[name] === "number");
  const w = 140;
  const h = 32;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${name} over ${pts.length} step(s)`);
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

async function loadJobs() {
  const out = $("#jobs-out");
  try {
    const body = await api("/jobs");
    const items = body.items || [];
    if (!items.length) { out.replaceChildren(el("p", { class: "muted", text: "No training jobs yet." })); return; }
    out.replaceChildren(el("table", {}, el("thead", {}, el("tr", {}, ["Job", "Kind", "Status", "Progress", "Metrics", "History", ""].map((t) => el("th", { text: t })))),
      el("tbody", {}, items.map((j) => {
        const names = Object.keys(j.metrics || {});
        const first = names[0];
        return el("tr", { "data-job": j.id },
          el("td", {}, el("span", { class: "curie", text: j.id }), el("div", { class: "muted small", text: j.created_at })),
          el("td", { text: j.kind }),
          el("td", {}, el("span", { class: `st ${j.status}`, text: j.status }), j.error ? el("div", { class: "small", text: j.error }) : null),
          el("td", {}, el("span", { class: "progress", role: "progressbar", "aria-valuenow": String(Math.round(j.progress * 100)), "aria-valuemin": "0", "aria-valuemax": "100" },
            el("span", { style: `width:${(j.progress * 100).toFixed(1)}%` })), el("span", { class: "small", text: ` ${Math.round(j.progress * 100)}% · ${j.step}/${j.total_steps}` })),
          el("td", { class: "small", text: names.map((n) => `${n} ${Number(j.metrics[n]).toPrecision(4)}`).join(", ") || "–" }),
          el("td", {}, first ? sparkline(j.history || [], first) : ""),
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

function setupJobs() {
  $("#jobs-refresh").addEventListener("click", loadJobs);
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

// ---------------------------------------------------------------- routing
function enterEntity() {
  $("#home").hidden = true;
  $("#entity").hidden = false;
}

function showTab(name) {
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== name;
  for (const a of document.querySelectorAll(".tabs a[data-tab]")) a.classList.toggle("active", a.dataset.tab === name);
}

async function showHome() {
  $("#home").hidden = false;
  $("#entity").hidden = true;
  const chips = $("#starters");
  if (chips.childElementCount) return;
  for (const id of STARTERS) {
    try {
      const t = await api(`/terms/${id}`);
      chips.append(el("li", {}, el("a", { href: `#/term/${t.id}` }, t.name, el("span", { class: "muted small", text: ` ${t.id}` }))));
    } catch (err) { /* a release without this term: leave it out */ }
  }
  try {
    const v = await api("/version");
    $("#release").textContent = `${v.service}${v.hpo ? ` · HPO release ${v.hpo.version}` : " · the graph is not built yet"}`;
  } catch (err) { /* version is decoration */ }
}

function route() {
  const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ""));
  const [kind, ...rest] = hash.split("/");
  const id = rest.join("/");
  showStatus("");
  if (kind === "retrieval") { showTab("retrieval"); return; }
  if (kind === "jobs") { showTab("jobs"); loadJobs(); return; }
  showTab("browse");
  if (kind === "term" && id) showTerm(id);
  else if (kind === "disease" && id) showDisease(id);
  else showHome();
}

function setupToken() {
  const input = $("#token");
  input.value = localStorage.getItem(TOKEN_KEY) || "";
  input.addEventListener("change", () => {
    if (input.value) localStorage.setItem(TOKEN_KEY, input.value.trim());
    else localStorage.removeItem(TOKEN_KEY);
  });
}

setupSearch();
setupToken();
setupRetrieval();
setupJobs();
window.addEventListener("hashchange", route);
route();
