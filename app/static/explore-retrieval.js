/* phenokg explorer, image retrieval: upload an image, read the grounded answer (phenotypes with their evidence,
   what the nearest evidence rules out, findings, the nearest evidence images). */

import { $, api, el, pct, termLink, diseaseLink, unavailable } from "./explore-core.js";

/* POST /retrieval/image (app/schemas/retrieval.py): phenotypes grounded in the evidence graph, what the nearest
   evidence rules out, findings ranked by the likelihood ranker, the nearest evidence images. */
const RETRIEVAL_QUERY = { k: 10, findings: 5, evidence: 6 };

export function setupRetrieval() {
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
