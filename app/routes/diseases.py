"""Diseases: which diseases show or exclude a phenotype (snapshot), one disease's sets (graph), name search."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.deps import CacheDep, GraphDep
from app.routes.terms import TERM_ERRORS, TermIdPath, resolve_or_raise, resolved_ref
from app.schemas_terms import (
    DISEASE_ID_PATTERN,
    MAX_OFFSET,
    MAX_PAGE,
    SOURCE_PATTERN,
    AspectFilter,
    Disease,
    DiseasePhenotype,
    DiseaseRef,
    DiseaseRelation,
    DiseaseSearch,
    OnsetRef,
    PhenotypeDisease,
    PhenotypeDiseasePage,
    Problem,
)
from kg.diseases import DiseaseAnnotation, NameIndex, PhenotypeDiseases, disease_detail
from kg.errors import NotFoundError
from kg.hierarchy import descendants
from kg.snapshot import GraphSnapshot

router = APIRouter(tags=["diseases"])

SourceQuery = Annotated[str | None, Query(pattern=SOURCE_PATTERN, examples=["OMIM"],
                                          description="OMIM, ORPHA, DECIPHER or CXR_PACK (case-insensitive)")]


class DiseaseIndex:
    """Per-snapshot: phenotype → diseases (both relations), the name index, and a memo of sorted answers."""

    MAX_ENTRIES = 256

    def __init__(self, snapshot: GraphSnapshot) -> None:
        self.snapshot = snapshot
        self.by_phenotype = PhenotypeDiseases.from_snapshot(snapshot)
        self.names = NameIndex((d.id, d.name, d.source) for d in snapshot.diseases.values())
        self._by_upper = {d.upper(): d for d in snapshot.diseases}
        self._memo: dict[tuple[str, DiseaseRelation, bool], list[PhenotypeDisease]] = {}
        self._lock = threading.Lock()

    def canonical(self, disease_id: str) -> str:
        """The stored id for ``disease_id`` compared case-insensitively (``omim:154700`` → ``OMIM:154700``)."""
        return disease_id if disease_id in self.snapshot.diseases else self._by_upper.get(disease_id.upper(),
                                                                                          disease_id)

    def for_phenotype(self, term_id: str, relation: DiseaseRelation,
                      include_descendants: bool) -> list[PhenotypeDisease]:
        key = (term_id, relation, include_descendants)
        found = self._memo.get(key)
        if found is not None:
            return found
        phenotypes = [term_id]
        if include_descendants:
            phenotypes += sorted(descendants(self.snapshot.view, term_id))
        rows = self.by_phenotype.diseases(phenotypes, relation)
        diseases = self.snapshot.diseases
        found = []
        for did, (frequency, via) in rows.items():
            info = diseases.get(did)
            found.append(PhenotypeDisease(id=did, name=info.name if info else "", source=info.source if info else "",
                                          relation=relation, frequency=frequency, phenotypes=via))
        found.sort(key=lambda r: (-(r.frequency if r.frequency is not None else -1.0), r.id))
        with self._lock:
            if len(self._memo) >= self.MAX_ENTRIES:
                self._memo.clear()
            self._memo[key] = found
        return found


def _index(cache: CacheDep) -> DiseaseIndex:
    return cache.derived("api.diseases.index", DiseaseIndex)


@router.get("/terms/{term_id}/diseases", response_model=PhenotypeDiseasePage, responses=TERM_ERRORS,
            summary="Diseases that show (typical) or exclude a phenotype",
            description="`relation=typical`: the disease's typical set holds the term (with the highest stated "
                        "frequency); `relation=excluded`: its excluded set does. `include_descendants=true` also "
                        "counts annotations to terms below it (one row per disease, `phenotypes` lists which).")
def term_diseases(
    term_id: TermIdPath, cache: CacheDep,
    relation: Annotated[DiseaseRelation, Query(description="typical or excluded")] = "typical",
    source: SourceQuery = None,
    include_descendants: Annotated[bool, Query(description="Also annotations to descendant terms")] = False,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> PhenotypeDiseasePage:
    index = _index(cache)
    snapshot = index.snapshot
    found = resolve_or_raise(snapshot, term_id)
    assert found.current is not None
    rows = index.for_phenotype(found.current, relation, include_descendants)
    if source:
        wanted = source.casefold()
        rows = [r for r in rows if r.source.casefold() == wanted]
    return PhenotypeDiseasePage(term=resolved_ref(snapshot, found), relation=relation, source=source,
                                include_descendants=include_descendants, total=len(rows), offset=offset,
                                limit=limit, items=rows[offset:offset + limit])


@router.get("/diseases", response_model=DiseaseSearch, summary="Search diseases by name",
            description="Case-insensitive and token-based: every word of `q` must start a word of the name "
                        "(plurals, accents and British spellings fold), e.g. `q=marfan synd`. An exact disease id "
                        "in `q` ranks first. Without `q`, diseases are listed by id. A `q` with no words finds "
                        "nothing.")
def search_diseases(
    cache: CacheDep,
    q: Annotated[str | None, Query(max_length=200, examples=["marfan"], description="Words of the name")] = None,
    source: SourceQuery = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> DiseaseSearch:
    index = _index(cache)
    rows = index.names.search(q, source=source) if q is not None else index.names.all(source=source)
    return DiseaseSearch(query=q, source=source, total=len(rows), limit=limit,
                         items=[DiseaseRef(id=i, name=n, source=s) for i, n, s in rows[:limit]])


def _annotation(snapshot: GraphSnapshot, a: DiseaseAnnotation) -> DiseasePhenotype:
    terms = snapshot.terms
    return DiseasePhenotype(
        id=a.phenotype, name=a.name, aspect=a.aspect, frequency=a.frequency, frequencies=list(a.frequencies),
        onsets=[OnsetRef(id=o, name=terms[o].name if o in terms else None) for o in a.onsets],
        sexes=list(a.sexes), modifiers=list(a.modifiers), evidence=list(a.evidence), references=list(a.references),
        source_rows=a.source_rows, rationale=a.rationale)


@router.get("/diseases/{disease_id}", response_model=Disease, summary="One disease: typical and excluded sets",
            responses={404: {"model": Problem, "description": "No disease has this id"}},
            description="Read from the graph: every annotation with frequency, onset, evidence codes and "
                        "references. `aspect` filters both sets (default `P`, phenotypic abnormality; `all` keeps "
                        "inheritance `I`, clinical course `C`, modifiers `M` and past history `H` too).")
def get_disease(
    disease_id: Annotated[str, Path(pattern=DISEASE_ID_PATTERN, examples=["OMIM:154700"])],
    graph: GraphDep, cache: CacheDep,
    aspect: Annotated[AspectFilter, Query(description="P (default), I, C, M, H, or all")] = "P",
) -> Disease:
    index = _index(cache)
    snapshot = index.snapshot
    canonical = index.canonical(disease_id)
    detail = disease_detail(graph, canonical, None if aspect == "all" else [aspect])
    if detail is None:
        raise NotFoundError(f"no disease {disease_id}")
    return Disease(id=detail.id, name=detail.name, source=detail.source, aspect=aspect,
                   properties=detail.properties,
                   typical=[_annotation(snapshot, a) for a in detail.typical],
                   excluded=[_annotation(snapshot, a) for a in detail.excluded])
