/* phenokg explorer, the diagnosis page: present and absent phenotypes picked with autocomplete and/or a pasted
   clinical note, the ranked differential of POST /rank (explain: true) with each disease's likelihood ratio per
   query term; a row opens the disease's card (#/disease/<id>, the browse view's card).

   A note goes to POST /rank as ``text`` when the service's OpenAPI says RankRequest has that field (its linked
   mentions come back in ``query.mentions``); otherwise it is read with POST /annotate first (negated mentions
   are absent, hedged ones left out) and ranked by id. */

import { $, api, autocomplete, el, postJson, showStatus, unavailable } from "./explore-core.js";

const chosen = { present: new Map(), absent: new Map() };  // id -> name, in the order picked
let lastKey = null;  // the query the shown differential answers
let rankSeq = 0;
let timer = null;
let textSupport = null;  // Promise<boolean>: does POST /rank take ``text``?

function rankTakesText() {
  if (textSupport === null) {
    textSupport = api("/openapi.json")
      .then((spec) => Boolean(spec?.components?.schemas?.RankRequest?.properties?.text))
      .catch(() => false);
  }
  return textSupport;
}

// ---------------------------------------------------------------- picking terms
function chip(side, id, name) {
  const other = side === "present" ? "absent" : "present";
  return el("li", { "data-id": id, class: side },
    el("span", { class: "name", text: name || id }), el("span", { class: "curie", text: id }),
    el("button", { type: "button", class: "icon", "data-action": "move", title: `Move to ${other}`,
                   "aria-label": `Move ${name || id} to ${other}`, onclick: () => add(other, id, name), text: "⇄" }),
    el("button", { type: "button", class: "icon", "data-action": "remove", title: "Remove",
                   "aria-label": `Remove ${name || id}`, onclick: () => remove(id), text: "×" }));
}

function renderChips() {
  for (const side of ["present", "absent"]) {
    const list = $(`#dx-${side}`);
    list.replaceChildren(...[...chosen[side]].map(([id, name]) => chip(side, id, name)));
    list.dataset.count = String(chosen[side].size);
  }
}

function add(side, id, name) {
  chosen.present.delete(id);
  chosen.absent.delete(id);
  chosen[side].set(id, name);
  renderChips();
  schedule();
}

function remove(id) {
  chosen.present.delete(id);
  chosen.absent.delete(id);
  renderChips();
  schedule();
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(rank, 250);
}

// ---------------------------------------------------------------- the note
const USED = { present: "present", absent: "absent (negated)", uncertain: "hedged, not used",
               overridden: "negated, but the note also asserts it: not used" };

/* Mentions from POST /annotate, or from /rank's ``query.mentions`` (which also say how each was ``used_as``):
   ``{start, end, id, name, negated, uncertain}``. */
function noteView(text, mentions) {
  const out = el("p", { class: "dx-note-text" });
  let at = 0;
  const chars = [...text];  // offsets count code points
  for (const m of [...mentions].sort((a, b) => a.start - b.start)) {
    if (m.start < at) continue;
    out.append(chars.slice(at, m.start).join(""));
    const kind = m.used_as || (m.uncertain ? "uncertain" : m.negated ? "absent" : "present");
    out.append(el("mark", { class: kind, "data-id": m.id, "data-kind": kind, title: `${m.name} (${m.id}): ${USED[kind] || kind}` },
      chars.slice(m.start, m.end).join("")));
    at = m.end;
  }
  out.append(chars.slice(at).join(""));
  return el("div", { class: "dx-note-view" }, el("div", { class: "legend small" },
    el("mark", { class: "present", text: "present" }), el("mark", { class: "absent", text: "absent (negated)" }),
    el("mark", { class: "uncertain", text: "hedged or overridden: not used" })), out);
}

async function annotate(text) {
  const body = await postJson("/annotate", { documents: [{ id: "note", text }] });
  return body.documents[0].mentions;
}

// ---------------------------------------------------------------- ranking
const lrText = (lr) => (lr >= 100 ? `×${Math.round(lr)}` : `×${lr.toPrecision(2)}`);

const quoted = (entry) => (entry.spans && entry.spans.length
  ? `; the note: ${entry.spans.map((x) => `“${x.text}”`).join(", ")}` : "");

/* Per query term: its likelihood ratio for this disease and how the explanation got it (with the note's words
   for it, when the note gave the term). */
function ratios(explanation) {
  const out = new Map();
  if (!explanation) return out;
  for (const m of explanation.matched) {
    out.set(m.observed, { lr: m.likelihood_ratio, kind: "matched",
      why: `matches ${m.typical_name || m.typical} (${m.how})${m.frequency == null ? "" : `, frequency ${Math.round(m.frequency * 100)}%`}${quoted(m)}` });
  }
  for (const c of explanation.contradicted) {
    out.set(c.observed, { lr: c.likelihood_ratio, kind: "contradicted", why: `the disease excludes ${c.excluded_name || c.excluded}${quoted(c)}` });
  }
  const freq = (a) => (a.frequency == null ? "" : `, frequency ${Math.round(a.frequency * 100)}%`);
  for (const a of explanation.absent_consistent) {
    out.set(a.absent, { lr: a.likelihood_ratio, kind: "absent-consistent",
      why: `absent, which the disease allows (${a.disease_term_name || a.disease_term}${freq(a)})${quoted(a)}` });
  }
  for (const a of explanation.absent_conflicting) {
    out.set(a.absent, { lr: a.likelihood_ratio, kind: "absent-conflicting",
      why: `absent, though the disease typically shows ${a.disease_term_name || a.disease_term}${freq(a)}${quoted(a)}` });
  }
  for (const u of explanation.unmatched || []) if (!out.has(u)) out.set(u, { lr: null, kind: "unmatched", why: "not explained by this disease" });
  return out;
}

function lrCell(entry, termName) {
  if (!entry) return el("td", { class: "lr none", text: "–" });
  if (entry.lr === null || entry.lr === undefined) {
    return el("td", { class: `lr ${entry.kind}`, title: `${termName}: ${entry.why}`, text: "–" });
  }
  const strength = Math.min(1, Math.abs(Math.log10(entry.lr)) / 2);  // ×100 or ×0.01: full colour
  const cell = el("td", { class: `lr ${entry.lr >= 1 ? "for" : "against"} ${entry.kind}`, "data-lr": String(entry.lr),
                          title: `${termName}: ${entry.why}; likelihood ratio ${entry.lr.toPrecision(3)}`, text: lrText(entry.lr) });
  cell.style.setProperty("--strength", strength.toFixed(2));
  return cell;
}

function renderResults(out, body, names, note) {
  const terms = [...body.query.present.map((id) => ({ id, side: "present" })),
                 ...body.query.absent.map((id) => ({ id, side: "absent" }))];
  const nameOf = (id) => names.get(id) || id;
  for (const r of body.results) {
    const e = r.explanation;
    if (!e) continue;
    for (const m of e.matched) if (m.observed_name) names.set(m.observed, m.observed_name);
    for (const c of e.contradicted) if (c.observed_name) names.set(c.observed, c.observed_name);
    for (const a of [...e.absent_consistent, ...e.absent_conflicting]) if (a.absent_name) names.set(a.absent, a.absent_name);
  }
  const head = el("tr", {}, el("th", { text: "#" }), el("th", { text: "Disease" }),
    el("th", { class: "num", text: "log LR", title: "The disease's score: the sum of the terms' log likelihood ratios" }),
    terms.map((t) => el("th", { class: `term ${t.side}`, "data-term": t.id, title: `${nameOf(t.id)} (${t.id}): ${t.side}` },
      el("span", { text: `${t.side === "absent" ? "no " : ""}${nameOf(t.id)}` }))));
  const rows = body.results.map((r) => {
    const lr = ratios(r.explanation);
    const twins = (r.equivalent_ids || []).map((x) => (typeof x === "string" ? { id: x } : x)).filter((x) => x.id !== r.id);
    return el("tr", { "data-disease": r.id, "data-rank": String(r.rank) },
      el("td", { class: "rank", text: String(r.rank) }),
      el("td", { class: "disease" },
        el("a", { href: `#/disease/${r.id}`, class: "name", "data-action": "open", text: r.name }),
        el("div", { class: "ids small" }, el("span", { class: "curie", text: r.id }),
          twins.length ? el("span", { class: "twins", "data-equivalent": twins.map((x) => x.id).join(" ") }, "same disease as ",
            twins.flatMap((x, i) => [i ? ", " : "", el("a", { href: `#/disease/${x.id}`, class: "curie", text: x.id,
              title: [x.name, x.score === undefined ? "" : `its own score ${x.score.toFixed(1)}`].filter(Boolean).join(": ") })])) : null,
          r.score_from ? el("span", { class: "muted", "data-score-from": r.score_from,
                                      text: `score and ratios of ${r.score_from}` }) : null,
          r.pooled_with && !twins.some((x) => x.id === r.pooled_with)
            ? el("span", { class: "muted", title: "scored on this entry's annotations too", text: ` also scored on ${r.pooled_with}` }) : null)),
      el("td", { class: "num", text: r.score.toFixed(1) }),
      terms.map((t) => lrCell(lr.get(t.id), nameOf(t.id))));
  });
  const q = body.query;
  const notes = [
    Object.keys(q.redirected || {}).length ? `redirected: ${Object.entries(q.redirected).map(([a, b]) => `${a} → ${b}`).join(", ")}` : "",
    (q.unknown || []).length ? `unknown ids (ignored): ${q.unknown.join(", ")}` : "",
    (q.obsolete || []).length ? `obsolete ids (ignored): ${q.obsolete.join(", ")}` : "",
  ].filter(Boolean);
  out.replaceChildren(
    el("div", { class: "card-head" }, el("h2", { text: "Differential" }),
      el("span", { class: "muted small", "data-summary": "",
                   text: `${body.results.length} of ${body.candidates} diseases · ${body.method} · likelihood ratio per phenotype` })),
    note || "",
    notes.length ? el("p", { class: "muted small", "data-query-notes": "", text: notes.join(" · ") }) : "",
    body.results.length
      ? el("div", { class: "dx-table-wrap" }, el("table", { class: "dx-table" }, el("thead", {}, head), el("tbody", {}, rows)))
      : el("p", { class: "muted", text: "No disease ranked." }),
    el("p", { class: "muted small", text: "×n: how many times likelier the finding (or its absence) is in the disease than in " +
      "patients at large; green counts for the disease, red against. Hover a cell for the reason; open a disease for its card." }));
}

export async function rank() {
  clearTimeout(timer);
  const out = $("#dx-out");
  const text = $("#dx-note").value.trim();
  const limit = Number($("#dx-limit").value) || 20;
  const key = JSON.stringify([[...chosen.present.keys()], [...chosen.absent.keys()], text, limit]);
  const mine = ++rankSeq;
  if (!chosen.present.size && !text) {
    lastKey = null;
    out.replaceChildren(el("p", { class: "muted", "data-empty": "",
      text: "Add the patient's phenotypes (present, and absent ones looked for and not found), or paste a note." }));
    return;
  }
  out.setAttribute("aria-busy", "true");
  const names = new Map([...chosen.present, ...chosen.absent]);
  const request = { present: [...chosen.present.keys()], absent: [...chosen.absent.keys()], explain: true, limit };
  let mentions = null;
  try {
    if (text && await rankTakesText()) {
      request.text = text;
      if (!request.present.length) delete request.present;
    } else if (text) {
      mentions = await annotate(text);
      for (const m of mentions) {
        names.set(m.id, m.name);
        if (m.uncertain || chosen.present.has(m.id) || chosen.absent.has(m.id)) continue;
        if (!m.negated && !request.present.includes(m.id)) request.present.push(m.id);
      }
      for (const m of mentions) {  // present wins over a negated mention of the same term
        if (m.negated && !m.uncertain && !request.present.includes(m.id) && !request.absent.includes(m.id)
            && !chosen.present.has(m.id)) request.absent.push(m.id);
      }
      if (!request.present.length) {
        if (mine !== rankSeq) return;
        out.replaceChildren(noteView(text, mentions), el("p", { class: "notice", "data-unavailable": "no-present",
          text: "The note mentions no present phenotype; add one above." }));
        return;
      }
    }
    const body = await postJson("/rank", request);
    if (mine !== rankSeq) return;
    if (body.query.mentions) mentions = body.query.mentions;
    for (const m of mentions || []) if (m.name) names.set(m.id, m.name);
    renderResults(out, body, names, text && mentions ? noteView(text, mentions) : null);
    lastKey = key;
    const params = new URLSearchParams();
    if (chosen.present.size) params.set("present", [...chosen.present.keys()].join(","));
    if (chosen.absent.size) params.set("absent", [...chosen.absent.keys()].join(","));
    history.replaceState(null, "", `#/diagnosis${params.toString() ? `?${params}` : ""}`);
    showStatus("");
  } catch (err) {
    if (mine === rankSeq) unavailable(out, "Ranking", err);
  } finally {
    if (mine === rankSeq) out.removeAttribute("aria-busy");
  }
}

/* #/diagnosis?present=HP:…,HP:…&absent=…: the picked terms (a reload or a shared link ranks them again). */
export async function showDiagnosis(params) {
  const wanted = { present: (params.get("present") || "").split(",").filter(Boolean),
                   absent: (params.get("absent") || "").split(",").filter(Boolean) };
  const same = ["present", "absent"].every((s) => wanted[s].join(",") === [...chosen[s].keys()].join(","));
  if (same && lastKey !== null) return;  // back from a disease card: the differential is still on the page
  if (!wanted.present.length && !wanted.absent.length) { if (lastKey === null) rank(); return; }
  for (const side of ["present", "absent"]) {
    chosen[side].clear();
    for (const id of wanted[side]) {
      let name = id;
      try { name = (await api(`/terms/${encodeURIComponent(id)}`)).name; } catch (err) { /* ranked as given */ }
      chosen[side].set(id, name);
    }
  }
  renderChips();
  rank();
}

export function setupDiagnosis() {
  for (const side of ["present", "absent"]) {
    const input = $(`#dx-${side}-q`);
    autocomplete(input, $(`#dx-${side}-suggestions`), (hit) => { input.value = ""; add(side, hit.id, hit.name); input.focus(); });
  }
  $("#dx-form").addEventListener("submit", (e) => { e.preventDefault(); rank(); });
  $("#dx-limit").addEventListener("change", rank);
  $("#dx-clear").addEventListener("click", () => {
    chosen.present.clear();
    chosen.absent.clear();
    $("#dx-note").value = "";
    renderChips();
    rank();
  });
  renderChips();
}
