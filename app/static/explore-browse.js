/* phenokg explorer, browsing: the search box, a term's card and neighbourhood, a disease's card with its typical
   and excluded phenotypes, the home page. Large neighbourhoods are capped, with "show all". */

import { $, api, autocomplete, diseaseLink, el, pct, termLink } from "./explore-core.js";
import { draw, openNode } from "./explore-graph.js";
import { renderEvidence } from "./explore-evidence.js";

const STARTERS = ["HP:0002090", "HP:0001640", "HP:0002202", "HP:0001250"];
/* What a first view draws; "show all" draws everything (the API's largest limits for a term). */
const TERM_LIMITS = { children: 40, diseases: 25, evidence: 8 };
const TERM_ALL = { children: 200, diseases: 200, evidence: 8 };
export const DISEASE_CAP = { typical: 24, excluded: 12 };
const LIST_CAP = 25;

export function setupSearch() {
  autocomplete($("#q"), $("#suggestions"), (hit) => { $("#q").blur(); location.hash = `#/term/${hit.id}`; });
}

function enterEntity() {
  $("#home").hidden = true;
  $("#entity").hidden = false;
}

function propsList(rows) {
  const dl = el("dl", { class: "props" });
  for (const [label, value] of rows) {
    if (value === null || value === undefined || (Array.isArray(value) && !value.length) || value === "") continue;
    dl.append(el("dt", { text: label }), el("dd", {}, value));
  }
  return dl;
}

/* The note under the graph; with a "Show all" button when something was left out. */
function graphNote(text, capped, showAll) {
  const note = $("#graph-note");
  note.replaceChildren(text);
  if (capped) note.append(el("button", { type: "button", class: "secondary small-button", "data-action": "show-all",
                                         onclick: showAll, text: capped }));
}

// ---------------------------------------------------------------- term view
export async function showTerm(id, all = false) {
  enterEntity();
  const card = $("#card");
  if (!all) card.replaceChildren(el("p", { class: "muted", text: `Loading ${id}…` }));
  let term;
  let hood;
  try {
    const limits = new URLSearchParams(all ? TERM_ALL : TERM_LIMITS);
    [term, hood] = await Promise.all([api(`/terms/${encodeURIComponent(id)}`),
      api(`/terms/${encodeURIComponent(id)}/neighbourhood?${limits}`)]);
  } catch (err) {
    card.replaceChildren(el("p", { class: "notice", text: `${id}: ${err.message}` }));
    return;
  }
  if (term.id !== id) history.replaceState(null, "", `#/term/${term.id}`);
  const t = hood.totals;
  const count = (role) => hood.nodes.filter((n) => n.role === role).length;
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
      ["Children", children.length ? el("ul", { class: "columns" }, children.map((c) => el("li", {}, termLink(c.id, c.label))),
        t.children > children.length ? el("li", { class: "muted", text: `… ${t.children - children.length} more` }) : null) : "none (a leaf term)"],
      ["Alternative ids", term.alt_ids.join(", ")],
      ["Cross-references", term.xrefs.join(", ")],
      ["Depth / IC", `${term.depth ?? "–"} / ${term.ic !== null && term.ic !== undefined ? term.ic.toFixed(2) : "–"}`],
      ["Comment", term.comment],
    ]));
  const of = (role, total) => (count(role) < total ? `${count(role)} of ${total}` : `${total}`);
  $("#graph-title").textContent = `Neighbourhood of ${term.name}`;
  // what "show all" adds: each group up to the endpoint's largest limit
  const more = (role, total, limit) => Math.min(total, limit) - count(role);
  const hidden = more("child", t.children, TERM_ALL.children) + more("typical", t.typical, TERM_ALL.diseases)
    + more("excluded", t.excluded, TERM_ALL.diseases);
  graphNote(`${t.parents} parent(s), ${of("child", t.children)} child(ren), ${of("typical", t.typical)} disease(s) typical, ` +
    `${of("excluded", t.excluded)} excluded, ${t.evidence} evidence image(s). Click a node to open it; scroll to zoom. `,
    !all && hidden > 0 ? `Show ${hidden} more` : "", () => showTerm(term.id, true));
  draw(hood, openNode, { parent: "Parents", child: `Children (${of("child", t.children)})`,
    typical: `Diseases that show it (${of("typical", t.typical)})`,
    excluded: `Diseases that exclude it (${of("excluded", t.excluded)})`, evidence: "Image evidence" });
  renderTermDiseases(hood);
  if (!all) renderEvidence(term);
}

function diseaseSet(kind, title, rows, empty, total = rows.length, more = null) {
  return el("div", { class: `set ${kind}`, "data-set": kind },
    el("h4", {}, el("span", { class: "dot" }), `${title} (${total})`),
    rows.length ? el("ul", {}, rows, more) : el("p", { class: "muted small", text: empty }));
}

function renderTermDiseases(hood) {
  const typical = hood.nodes.filter((n) => n.role === "typical");
  const excluded = hood.nodes.filter((n) => n.role === "excluded");
  const moreOf = (shown, total) => (total > shown ? el("li", { class: "muted", text: `… ${total - shown} more` }) : null);
  $("#disease-sets").replaceChildren(el("h3", { text: "Diseases" }), el("div", { class: "sets" },
    diseaseSet("typical", "Typical: the disease shows it", typical.map((d) => el("li", {},
      el("span", { class: "name" }, diseaseLink(d.id, d.label)), el("span", { class: "meta", text: `${d.source} ${pct(d.frequency)}` }))),
      "No disease lists it as typical.", hood.totals.typical, moreOf(typical.length, hood.totals.typical)),
    diseaseSet("excluded", "Excluded: the disease rules it out", excluded.map((d) => el("li", {},
      el("span", { class: "name" }, diseaseLink(d.id, d.label)), el("span", { class: "meta", text: d.source }))),
      "No disease excludes it.", hood.totals.excluded, moreOf(excluded.length, hood.totals.excluded))));
}

// ---------------------------------------------------------------- disease view
export async function showDisease(id) {
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
  $("#graph-title").textContent = `Phenotypes of ${d.name}`;
  renderDisease(d, false);
  $("#evidence").replaceChildren(el("h3", { text: "Image evidence" }),
    el("p", { class: "muted", text: "Open a phenotype to see the images whose captions show or rule it out." }));
}

/* The graph and the lists of a disease's phenotypes: the most frequent first, capped unless ``all``. */
function renderDisease(d, all) {
  const typical = all ? d.typical : d.typical.slice(0, DISEASE_CAP.typical);
  const excluded = all ? d.excluded : d.excluded.slice(0, DISEASE_CAP.excluded);
  const nodes = [{ id: d.id, label: d.name, kind: "disease", role: "center" },
    ...typical.map((p) => ({ id: p.id, label: p.name || p.id, kind: "phenotype", role: "typical" })),
    ...excluded.map((p) => ({ id: p.id, label: p.name || p.id, kind: "phenotype", role: "excluded" }))];
  const edges = [...typical.map((p) => ({ source: d.id, target: p.id, type: "HAS_PHENOTYPE" })),
    ...excluded.map((p) => ({ source: d.id, target: p.id, type: "EXCLUDES" }))];
  const left = d.typical.length - typical.length + d.excluded.length - excluded.length;
  const of = (shown, total) => (shown.length < total.length ? `${shown.length} of ${total.length}` : `${total.length}`);
  const showAll = () => renderDisease(d, true);
  graphNote(`Green: typical set (HAS_PHENOTYPE${left ? ", most frequent first" : ""}); red dashed: excluded set ` +
    "(EXCLUDES). Click a phenotype to open it. ", left ? `Show all ${d.typical.length + d.excluded.length} phenotypes` : "",
    showAll);
  draw({ nodes, edges }, openNode, { typical: `Typical phenotypes (${of(typical, d.typical)})`,
                                     excluded: `Excluded phenotypes (${of(excluded, d.excluded)})` });
  const row = (p, isExcluded) => el("li", {}, el("span", { class: "name" }, termLink(p.id, p.name)),
    el("span", { class: "meta", text: [isExcluded ? "" : pct(p.frequency), p.frequencies.join(" "), p.evidence.join(" ")].filter(Boolean).join(" · ") }));
  const listed = (list) => (all ? list : list.slice(0, LIST_CAP));
  const more = (list) => (!all && list.length > LIST_CAP ? el("li", { class: "more" }, el("button", {
    type: "button", class: "secondary small-button", "data-action": "show-all-list", onclick: showAll,
    text: `Show all ${list.length}` })) : null);
  $("#disease-sets").replaceChildren(el("h3", { text: "Phenotype sets" }), el("div", { class: "sets" },
    diseaseSet("typical", "Typical set", listed(d.typical).map((p) => row(p, false)), "No typical phenotypes.",
               d.typical.length, more(d.typical)),
    diseaseSet("excluded", "Excluded set", listed(d.excluded).map((p) => row(p, true)), "No excluded phenotypes.",
               d.excluded.length, more(d.excluded))));
}

// ---------------------------------------------------------------- home
export async function showHome() {
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
