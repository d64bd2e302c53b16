/* phenokg explorer, a term's image evidence: GET /terms/{id}/evidence, images that show the term first, a
   relation filter (shows / rules out / all, each with its count) and paging. */

import { $, api, el, unavailable } from "./explore-core.js";

export const EVIDENCE_PAGE = 12;
const FILTERS = [["all", "All"], ["shows", "Shows"], ["rules_out", "Rules out"]];

function thumb(e) {
  return el("figure", { class: "thumb", "data-evidence": e.id, "data-relation": e.relation },
    el("a", { href: e.image_url, target: "_blank", rel: "noopener" },
      el("img", { src: `${e.image_url}?size=128`, alt: e.caption, loading: "lazy" })),
    el("figcaption", {}, el("div", { class: `rel ${e.relation}`, text: e.relation === "shows" ? "shows" : "rules out" }),
      e.caption));
}

/* The panel of one term; a newer call (another term) makes an older one's late answers go nowhere. */
let current = 0;

export async function renderEvidence(term) {
  const mine = ++current;
  const box = $("#evidence");
  const base = `/terms/${encodeURIComponent(term.id)}/evidence`;
  box.replaceChildren(el("h3", { text: "Image evidence" }), el("p", { class: "muted", text: "Loading…" }));
  let counts;
  try {
    const [shows, rulesOut] = await Promise.all(["shows", "rules_out"].map((r) => api(`${base}?relation=${r}&limit=1`)));
    counts = { shows: shows.total, rules_out: rulesOut.total, all: shows.total + rulesOut.total };
  } catch (err) {
    if (mine !== current) return;
    box.replaceChildren(el("h3", { text: "Image evidence" }));
    const slot = el("div");
    box.append(slot);
    unavailable(slot, "Evidence", err);
    return;
  }
  if (mine !== current) return;
  if (!counts.all) {
    box.replaceChildren(el("h3", { text: "Image evidence (0)" }),
      el("p", { class: "muted", text: "No evidence image mentions this phenotype." }));
    return;
  }
  const state = { relation: "all", offset: 0 };
  const filter = el("div", { class: "segmented", role: "group", "aria-label": "Which images" });
  const grid = el("div", { class: "thumbs", "aria-live": "polite" });
  const pager = el("div", { class: "pager small" });
  box.replaceChildren(el("div", { class: "card-head" }, el("h3", { text: `Image evidence (${counts.all})` })),
    filter, grid, pager);

  async function load() {
    for (const b of filter.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.relation === state.relation));
    const query = new URLSearchParams({ offset: state.offset, limit: EVIDENCE_PAGE });
    if (state.relation !== "all") query.set("relation", state.relation);
    let page;
    try {
      page = await api(`${base}?${query}`);
    } catch (err) {
      if (mine === current) unavailable(grid, "Evidence", err);
      return;
    }
    if (mine !== current) return;
    grid.replaceChildren(...page.items.map(thumb));
    if (!page.items.length) grid.replaceChildren(el("p", { class: "muted", text: "No image here." }));
    const last = page.offset + page.items.length;
    const move = (delta) => { state.offset = Math.max(0, state.offset + delta); load(); };
    pager.replaceChildren(
      el("button", { type: "button", class: "secondary", "data-page": "prev", disabled: page.offset === 0,
                     onclick: () => move(-EVIDENCE_PAGE), text: "‹ Previous" }),
      el("span", { "data-range": "", text: page.total ? `${page.offset + 1}–${last} of ${page.total}` : "0 of 0" }),
      el("button", { type: "button", class: "secondary", "data-page": "next", disabled: last >= page.total,
                     onclick: () => move(EVIDENCE_PAGE), text: "Next ›" }));
    pager.hidden = page.total <= EVIDENCE_PAGE;
  }
  filter.replaceChildren(...FILTERS.map(([relation, label]) => el("button", {
    type: "button", class: "secondary", "data-relation": relation, disabled: counts[relation] === 0,
    onclick: () => { state.relation = relation; state.offset = 0; load(); },
    text: `${label} (${counts[relation]})` })));
  await load();
}
