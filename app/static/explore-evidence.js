/* phenokg explorer, a term's image evidence: GET /terms/{id}/evidence, images that show the term first, a
   relation filter (shows / rules out / all) and a source selector, each with its count from the answer's
   `facets` (each facet counts under the other filter), and paging: Next follows the answer's `next` cursor,
   Previous steps back by offset. One request per page, whatever the number of images. */

import { $, api, el, unavailable } from "./explore-core.js";

export const EVIDENCE_PAGE = 12;
const FILTERS = [["all", "All"], ["shows", "Shows"], ["rules_out", "Rules out"]];
const fmt = (n) => Number(n).toLocaleString("en");

function thumb(e) {
  return el("figure", { class: "thumb", "data-evidence": e.id, "data-relation": e.relation, "data-source": e.source || "" },
    el("a", { href: e.image_url, target: "_blank", rel: "noopener" },
      el("img", { src: `${e.image_url}?size=128`, alt: e.caption, loading: "lazy" })),
    el("figcaption", {}, el("div", { class: `rel ${e.relation}`, text: e.relation === "shows" ? "shows" : "rules out" }),
      e.caption, e.source ? el("div", { class: "muted", "data-role": "source", text: e.source }) : null));
}

/* The panel of one term; a newer call (another term) makes an older one's late answers go nowhere. */
let current = 0;

export async function renderEvidence(term) {
  const mine = ++current;
  const box = $("#evidence");
  const base = `/terms/${encodeURIComponent(term.id)}/evidence`;
  box.replaceChildren(el("h3", { text: "Image evidence" }), el("p", { class: "muted", text: "Loading…" }));
  let first;
  try {
    first = await api(`${base}?limit=${EVIDENCE_PAGE}`);
  } catch (err) {
    if (mine !== current) return;
    box.replaceChildren(el("h3", { text: "Image evidence" }));
    const slot = el("div");
    box.append(slot);
    unavailable(slot, "Evidence", err);
    return;
  }
  if (mine !== current) return;
  if (!first.total) {
    box.replaceChildren(el("h3", { text: "Image evidence (0)" }),
      el("p", { class: "muted", text: "No evidence image mentions this phenotype." }));
    return;
  }
  const state = { relation: "all", source: "", offset: 0, after: null };
  const filter = el("div", { class: "segmented", role: "group", "aria-label": "Which images" });
  const sources = el("select", { "data-filter": "source", "aria-label": "Evidence source",
    onchange: () => { state.source = sources.value; restart(); } });
  const grid = el("div", { class: "thumbs", "aria-live": "polite" });
  const pager = el("div", { class: "pager small" });
  box.replaceChildren(el("div", { class: "card-head" }, el("h3", { text: `Image evidence (${fmt(first.total)})` })),
    el("div", { class: "evidence-filters" }, filter, sources), grid, pager);

  function restart() { state.offset = 0; state.after = null; load(); }

  function filters(facets) {
    const counts = { ...facets.relations, all: facets.relations.shows + facets.relations.rules_out };
    filter.replaceChildren(...FILTERS.map(([relation, label]) => el("button", {
      type: "button", class: "secondary", "data-relation": relation, "aria-pressed": String(relation === state.relation),
      disabled: counts[relation] === 0 && relation !== state.relation,
      onclick: () => { state.relation = relation; restart(); },
      text: `${label} (${fmt(counts[relation])})` })));
    const listed = facets.sources.slice();
    if (state.source && !listed.some((s) => s.source === state.source)) listed.push({ source: state.source, count: 0 });
    const all = facets.sources.reduce((n, s) => n + s.count, 0);
    sources.replaceChildren(el("option", { value: "", text: `All sources (${fmt(all)})` }),
      ...listed.map((s) => el("option", { value: s.source, text: `${s.source} (${fmt(s.count)})` })));
    sources.value = state.source;
    sources.hidden = listed.length < 2 && !state.source;  // one source: nothing to choose
  }

  async function load(page) {
    if (!page) {
      const query = new URLSearchParams({ limit: EVIDENCE_PAGE });
      if (state.after) query.set("after", state.after);
      else if (state.offset) query.set("offset", state.offset);
      if (state.relation !== "all") query.set("relation", state.relation);
      if (state.source) query.set("source", state.source);
      try {
        page = await api(`${base}?${query}`);
      } catch (err) {
        if (mine === current) unavailable(grid, "Evidence", err);
        return;
      }
    }
    if (mine !== current) return;
    filters(page.facets);
    grid.replaceChildren(...page.items.map(thumb));
    if (!page.items.length) grid.replaceChildren(el("p", { class: "muted", text: "No image here." }));
    const last = page.offset + page.items.length;
    pager.replaceChildren(
      el("button", { type: "button", class: "secondary", "data-page": "prev", disabled: page.offset === 0,
                     onclick: () => { state.after = null; state.offset = Math.max(0, page.offset - EVIDENCE_PAGE); load(); },
                     text: "‹ Previous" }),
      el("span", { "data-range": "", text: page.total ? `${fmt(page.offset + 1)}–${fmt(last)} of ${fmt(page.total)}` : "0 of 0" }),
      el("button", { type: "button", class: "secondary", "data-page": "next", disabled: !page.next,
                     onclick: () => { state.after = page.next; state.offset = 0; load(); }, text: "Next ›" }));
    pager.hidden = page.total <= EVIDENCE_PAGE && page.offset === 0;
  }
  await load(first);
}
