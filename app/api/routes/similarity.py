"""``POST /similarity``: semantic similarity of two phenotype sets (Resnik / Lin / Jiang–Conrath; BMA or funSimAvg).

Served from an in-memory :class:`kg.analysis.semsim.SemSimIndex` of the current snapshot (rebuilt with it).
"""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import ServicesDep
from app.schemas.ranking import SimilarityRequest, SimilarityResponse, TermBestMatch
from kg.analysis.semsim import BestMatch, SemSimIndex
from kg.errors import ValidationError

router = APIRouter(tags=["similarity"])


def resolve(index: SemSimIndex, ids: list[str], redirected: dict[str, str], unknown: list[str]) -> list[str]:
    """Current ids in input order (duplicates dropped); alt/obsolete ids recorded, unknown ones listed."""
    out: list[str] = []
    for raw in ids:
        current = index.resolve(raw)
        if current is None:
            if raw not in unknown:
                unknown.append(raw)
            continue
        if current != raw:
            redirected[raw] = current
        if current not in out:
            out.append(current)
    return out


def _best(names: dict[str, str], m: BestMatch) -> TermBestMatch:
    return TermBestMatch(term=m.term, name=names.get(m.term, ""), match=m.match, match_name=names.get(m.match, ""),
                         score=round(m.score, 6), mica=m.mica, mica_name=names.get(m.mica, ""),
                         mica_ic=round(m.mica_ic, 6))


@router.post("/similarity", response_model=SimilarityResponse, summary="Similarity of two phenotype sets",
             responses={422: {"description": "Malformed ids, empty or oversized lists, or no known id on a side",
                              "content": {"application/problem+json": {}}}})
def similarity(body: SimilarityRequest, services: ServicesDep) -> SimilarityResponse:
    """Term similarity by ``method`` for every pair, combined by best-match average (``bma``: all best
    matches of both directions averaged) or ``funsimavg`` (mean of the two directions' averages). Unknown
    ids are listed and ignored; alternative and obsolete ids are resolved."""
    index = services.semsim()
    names = services.cache.get().view.names
    redirected: dict[str, str] = {}
    unknown: list[str] = []
    a = resolve(index, body.a, redirected, unknown)
    b = resolve(index, body.b, redirected, unknown)
    for side, ids in (("a", a), ("b", b)):
        if not ids:
            raise ValidationError(f"no known phenotype id in '{side}' (unknown: {', '.join(unknown)})")
    result = index.set_similarity(a, b, body.method, body.combine)
    return SimilarityResponse(score=round(result.score, 6), method=body.method, combine=body.combine,
                              a=[_best(names, m) for m in result.a_best], b=[_best(names, m) for m in result.b_best],
                              redirected=redirected, unknown=unknown)
