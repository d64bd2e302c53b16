"""Shape one image's grounded result (:class:`models.serving.ImageResult`) into the answer of
``POST /retrieval/image``: phenotypes with probabilities and the evidence behind each, what the neighbours rule
out, findings ranked by the likelihood ranker, the nearest evidence, and plain warnings.

Findings: the present phenotypes (probability at least the model's ``present_threshold``) and the ruled-out
ones are a present / absent query to the likelihood ranker over the diseases of the model's sources (the chest
X-ray pack for a chest X-ray model), restricted to the model's own findings with ``scope=model``. Image-derived
absences are not ascertained by clinical suspicion, so the ranker runs with ``ascertainment = 1``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from app.schemas.retrieval import (
    EvidenceHit,
    FindingHit,
    ModelRef,
    PhenotypeHit,
    RetrievalResponse,
    RuledOutHit,
    Scope,
)

if TYPE_CHECKING:
    from app.services import Services
    from app.services.retrieval import RetrievalService, _State

__all__ = ["AnswerRequest", "build_answer"]

OUT_OF_DOMAIN: Final = ("This image is less like every evidence image than 99 % of the validation images were "
                        "(domain similarity {near:.3f} < {threshold:.3f}): it is probably not the kind of image "
                        "this model was trained on. Treat every answer below as unreliable.")
EXTRAPOLATION: Final = ("scope=all ranks every phenotypic abnormality by image–text similarity alone; terms "
                        "outside the model's vocabulary have no probability and are an extrapolation.")
UNCALIBRATED: Final = ("This model carries no calibration (trained without a validation split or elsewhere): "
                       "probabilities are the neighbours' label shares, not calibrated.")
SUPPORT_LIST: Final = 5


@dataclass(frozen=True)
class AnswerRequest:
    k: int
    findings: int
    evidence: int
    scope: Scope
    sources: list[str] | None


def build_answer(service: RetrievalService, services: Services, state: _State, result: Any,
                 request: AnswerRequest) -> RetrievalResponse:
    index = state.index
    vocab = index.vocabulary
    params = index.grounding.params
    names = service.cache.get().view.names
    g = result.grounding
    neighbours = g.neighbours[:params.k]
    labels = [index.labels_of(j) for j in neighbours]
    ids = [index.evidence_ids[j] for j in neighbours]

    def backing(col: int, sign: int) -> list[str]:
        return [ids[i] for i, lab in enumerate(labels) if lab[col] == sign][:SUPPORT_LIST]

    def hit(col: int) -> PhenotypeHit:
        return PhenotypeHit(id=vocab.ids[col], name=names.get(vocab.ids[col], vocab.names[col]),
                            probability=round(float(g.probability[col]), 4),
                            similarity=round(float(g.similarity[col]), 4),
                            neighbour_share=_rounded(g.raw_share(col)),
                            in_vocabulary=True, supporting_evidence=backing(col, 1),
                            contradicting_evidence=backing(col, -1))

    order = np.lexsort((np.arange(len(vocab.ids)), -g.probability))
    present_cols = [int(c) for c in order if g.probability[c] >= params.present_threshold]
    ruled_cols = [int(c) for c in np.argsort(-g.rule_out_share, kind="stable")
                  if g.rule_out_share[c] >= params.rule_out_threshold and g.probability[c] < params.present_threshold
                  and float(g.labelled[c]) > 1e-9]
    if request.scope == "all":
        phenotypes = _whole_ontology_hits(service, state, result, request.k, hit)
    else:
        phenotypes = [hit(int(c)) for c in order[:request.k]]
    ruled_out = [RuledOutHit(id=vocab.ids[c], name=names.get(vocab.ids[c], vocab.names[c]),
                             probability=round(float(g.probability[c]), 4),
                             neighbour_share=round(1.0 - (g.raw_share(c) or 0.0), 4), evidence=backing(c, -1))
                 for c in ruled_cols[:request.k]]
    near, threshold = g.domain_similarity, params.domain_threshold
    in_domain = not (near is not None and threshold is not None and near < threshold)
    warnings = []
    if not in_domain:
        warnings.append(OUT_OF_DOMAIN.format(near=near, threshold=threshold))
    if request.scope == "all":
        warnings.append(EXTRAPOLATION)
    if not params.calibrated:
        warnings.append(UNCALIBRATED)
    findings = _findings(services, vocab, [vocab.ids[c] for c in present_cols], [vocab.ids[c] for c in ruled_cols],
                         request, lambda f: _finding_probability(service, vocab, g.probability, f))
    if not findings and request.findings > 0:
        if not (request.sources or vocab.sources):
            warnings.append("No findings are ranked: the model's training data names no finding or disease "
                            "(pass sources=… to rank the diseases of a source).")
        else:
            warnings.append("No phenotype is present or ruled out with enough confidence to rank findings.")
    evidence = []
    for h in result.evidence[:request.evidence]:
        info = state.evidence.get(h.id)
        evidence.append(EvidenceHit(id=h.id, caption=info.caption if info else "", score=h.score,
                                    image_url=f"/evidence/{h.id}/image", phenotypes=info.shows if info else [],
                                    rules_out=info.rules_out if info else [], finding=info.finding if info else None))
    return RetrievalResponse(
        model=ModelRef(**state.model.to_dict(), calibrated=params.calibrated, vocabulary_size=len(vocab.ids)),
        device=str(index.device), elapsed_ms=0.0, scope=request.scope, in_domain=in_domain,
        warning=" ".join(warnings) or None, nearest_similarity=_rounded(g.nearest_similarity),
        domain_similarity=_rounded(near), domain_threshold=_rounded(threshold), phenotypes=phenotypes,
        ruled_out=ruled_out, findings=findings, evidence=evidence)


def _whole_ontology_hits(service: RetrievalService, state: _State, result: Any, k: int,
                         hit: Any) -> list[PhenotypeHit]:
    ids, embeddings = service.whole_ontology(state)
    sims = (result.embedding.unsqueeze(0) @ embeddings.T).squeeze(0)
    top = sims.topk(min(k, len(ids)))
    names = service.cache.get().view.names
    vocab = state.index.vocabulary
    known = vocab.all_ids
    out = []
    for value, j in zip(top.values.cpu().tolist(), top.indices.cpu().tolist(), strict=True):
        term = ids[j]
        col = vocab.column.get(term)
        if col is not None:
            out.append(hit(col).model_copy(update={"similarity": round(float(value), 4)}))
            continue
        out.append(PhenotypeHit(id=term, name=names.get(term, term), probability=None,
                                similarity=round(float(value), 4), neighbour_share=None,
                                in_vocabulary=term in known, supporting_evidence=[], contradicting_evidence=[]))
    return out


def _finding_probability(service: RetrievalService, vocab: Any, probability: np.ndarray, finding: str
                         ) -> float | None:
    """See :class:`app.schemas.retrieval.FindingHit` ``probability``: only for the model's own findings."""
    if finding not in vocab.findings:
        return None
    snapshot = service.cache.get()
    typical = [(a.frequency or 0.0, vocab.column[a.phenotype]) for a in snapshot.typical.get(finding, ())
               if a.phenotype in vocab.column]
    if typical:
        top = max(f for f, _ in typical)
        return round(max(float(probability[c]) for f, c in typical if f == top), 4)
    excluded = [vocab.column[p] for p in snapshot.excluded.get(finding, ()) if p in vocab.column]
    if excluded:
        return round(1.0 - max(float(probability[c]) for c in excluded), 4)
    return None


def _findings(services: Services, vocab: Any, present: Sequence[str], absent: Sequence[str],
              request: AnswerRequest, probability: Callable[[str], float | None]) -> list[FindingHit]:
    if request.findings <= 0 or (not present and not absent):
        return []
    sources = request.sources or vocab.sources
    if not sources:
        return []
    index = services.image_ranking(tuple(sorted(sources)))
    ranked = index.rank(list(present), list(absent), limit=len(index.disease_ids), explain=True,
                        require_present=False)
    if request.scope == "model" and not request.sources and vocab.findings:
        allowed = set(vocab.findings)
        ranked = [r for r in ranked if r.id in allowed]
    out = []
    for position, r in enumerate(ranked[:request.findings], start=1):
        e = r.explanation
        out.append(FindingHit(
            rank=position, id=r.id, name=r.name, source=r.source, score=round(r.score, 4),
            probability=probability(r.id),
            supported_by=sorted({m.observed for m in e.matched}) if e else [],
            contradicted_by=sorted({c.observed for c in e.contradicted}) if e else [],
            absent_consistent=sorted({a.absent for a in e.absent_consistent}) if e else [],
            absent_conflicting=sorted({a.absent for a in e.absent_conflicting}) if e else []))
    return out


def _rounded(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None

