"""``POST /rank``: diseases ranked for observed and explicitly absent phenotypes, each with an explanation.

Served from an in-memory :class:`kg.analysis.ranking.RankingIndex` of the current snapshot (sparse disease × term
matrices, rebuilt when the graph's build stamp changes). The score is documented in :mod:`kg.analysis.ranking`.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.deps import ServicesDep
from app.schemas.ranking import (
    AbsentEvidence,
    Contradicted,
    ExplanationOut,
    Matched,
    RankedDiseaseOut,
    RankQuery,
    RankRequest,
    RankResponse,
    ScorePartsOut,
)
from kg.analysis.hierarchy import resolve_term
from kg.analysis.ranking import AbsentTerm, Explanation, RankedDisease

router = APIRouter(tags=["ranking"])


def explanation_out(names: dict[str, str], e: Explanation) -> ExplanationOut:
    def n(term: str) -> str:
        return names.get(term, "")

    return ExplanationOut(
        matched=[Matched(observed=m.observed, observed_name=n(m.observed), typical=m.typical,
                         typical_name=n(m.typical), how=m.how, mica=m.mica, mica_name=n(m.mica),
                         ic=m.ic, frequency=m.frequency, contribution=m.contribution,
                         likelihood_ratio=m.likelihood_ratio) for m in e.matched],
        contradicted=[Contradicted(observed=c.observed, observed_name=n(c.observed), excluded=c.excluded,
                                   excluded_name=n(c.excluded), how=c.how,
                                   contribution=round(c.contribution, 4), likelihood_ratio=c.likelihood_ratio)
                      for c in e.contradicted],
        absent_consistent=[_absent(names, a) for a in e.absent_consistent],
        absent_conflicting=[_absent(names, a) for a in e.absent_conflicting],
        unmatched=e.unmatched,
        parts=ScorePartsOut(match=e.parts.match, contradiction=e.parts.contradiction,
                            absent_consistent=e.parts.absent_consistent,
                            absent_conflicting=e.parts.absent_conflicting),
    )


def _absent(names: dict[str, str], a: AbsentTerm) -> AbsentEvidence:
    return AbsentEvidence(absent=a.absent, absent_name=names.get(a.absent, ""), disease_term=a.disease_term,
                          disease_term_name=names.get(a.disease_term, ""), how=a.how,
                          frequency=a.frequency, contribution=a.contribution, likelihood_ratio=a.likelihood_ratio)


def ranked_out(names: dict[str, str], r: RankedDisease) -> RankedDiseaseOut:
    return RankedDiseaseOut(rank=r.rank, id=r.id, name=r.name, source=r.source, score=r.score,
                            explanation=explanation_out(names, r.explanation) if r.explanation else None,
                            pooled_with=r.pooled_with)


@router.post("/rank", response_model=RankResponse, response_model_exclude_none=True,
             summary="Rank diseases for observed and absent phenotypes",
             responses={422: {"description": "Malformed ids, empty or oversized lists, no known present id, "
                                             "or a phenotype both present and absent",
                              "content": {"application/problem+json": {}}}})
def rank(body: RankRequest, services: ServicesDep) -> Response:
    """Every disease (or those of ``sources``) scored from how well it explains the observed phenotypes —
    directly or through the hierarchy, weighted by annotated frequency and normalised for annotation-set size —
    with observed phenotypes it excludes counting hard against it, and absent phenotypes counting for it
    (it excludes them, or shows them in only some patients) or against it (its patients nearly always show
    them). The default ``method=likelihood`` gives each term's likelihood ratio in the explanation;
    ``method=ic`` is the earlier information-content score. Unknown ids are listed and ignored."""
    index = services.ranking()
    ranked = index.rank_query(body.present, body.absent, sources=body.sources, limit=body.limit,
                              explain=body.explain, method=body.method)
    candidates = int(index.source_mask(body.sources).sum())
    snapshot = services.cache.get()
    obsolete = [raw for raw in ranked.unknown if resolve_term(snapshot.view, raw, snapshot.terms).obsolete]
    query = RankQuery(present=ranked.present.ids, absent=ranked.absent.ids, redirected=ranked.redirected,
                      unknown=[raw for raw in ranked.unknown if raw not in obsolete], obsolete=obsolete)
    response = RankResponse(query=query, method=body.method, candidates=candidates,
                            results=[ranked_out(snapshot.view.names, r) for r in ranked.results])
    # serialised once here: FastAPI's re-validation of a 20-explanation response model costs more than the ranking
    return Response(response.model_dump_json(exclude_none=True), media_type="application/json")
