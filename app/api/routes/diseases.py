"""Diseases: which diseases show or exclude a phenotype (snapshot), one disease's sets (graph), name search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.api.deps import GraphDep, ServicesDep
from app.api.term_refs import TERM_ERRORS, TermIdPath, resolve_or_raise, resolved_ref
from app.schemas.terms import (
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
    PhenotypeDiseasePage,
    Problem,
)
from kg.analysis.snapshot import GraphSnapshot
from kg.errors import NotFoundError
from kg.repo.diseases import DiseaseAnnotation, disease_detail

router = APIRouter(tags=["diseases"])

GENE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]*$"
SourceQuery = Annotated[str | None, Query(pattern=SOURCE_PATTERN, examples=["OMIM"],
                                          description="OMIM, ORPHA, DECIPHER or CXR_PACK (case-insensitive)")]


@router.get("/terms/{term_id}/diseases", response_model=PhenotypeDiseasePage, responses=TERM_ERRORS,
            summary="Diseases that show (typical) or exclude a phenotype",
            description="`relation=typical`: the disease's typical set holds the term (with the highest stated "
                        "frequency); `relation=excluded`: its excluded set does. `include_descendants=true` also "
                        "counts annotations to terms below it (one row per disease, `phenotypes` lists which).")
def term_diseases(
    term_id: TermIdPath, services: ServicesDep,
    relation: Annotated[DiseaseRelation, Query(description="typical or excluded")] = "typical",
    source: SourceQuery = None,
    include_descendants: Annotated[bool, Query(description="Also annotations to descendant terms")] = False,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> PhenotypeDiseasePage:
    index = services.diseases()
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


@router.get("/diseases", response_model=DiseaseSearch, summary="Search diseases by name or gene",
            description="Case-insensitive and token-based: every word of `q` must start a word of the name "
                        "(plurals, accents and British spellings fold), e.g. `q=marfan synd`. An exact disease id "
                        "in `q` ranks first. Without `q`, diseases are listed by id. A `q` with no words finds "
                        "nothing. `gene` keeps the diseases associated with that gene symbol (any case; from the "
                        "release's genes_to_phenotype.txt), e.g. `gene=FBN1`.")
def search_diseases(
    services: ServicesDep,
    q: Annotated[str | None, Query(max_length=200, examples=["marfan"], description="Words of the name")] = None,
    source: SourceQuery = None,
    gene: Annotated[str | None, Query(min_length=1, max_length=40, pattern=GENE_PATTERN, examples=["FBN1"],
                                      description="A gene symbol (HGNC), any case")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> DiseaseSearch:
    index = services.diseases()
    rows = index.names.search(q, source=source) if q is not None else index.names.all(source=source)
    if gene is not None:
        wanted, info = gene.casefold(), index.snapshot.diseases
        rows = [r for r in rows if r[0] in info and any(g.casefold() == wanted for g in info[r[0]].genes)]
    return DiseaseSearch(query=q, source=source, gene=gene, total=len(rows), limit=limit,
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
    graph: GraphDep, services: ServicesDep,
    aspect: Annotated[AspectFilter, Query(description="P (default), I, C, M, H, or all")] = "P",
) -> Disease:
    index = services.diseases()
    snapshot = index.snapshot
    canonical = index.canonical(disease_id)
    detail = disease_detail(graph, canonical, None if aspect == "all" else [aspect])
    if detail is None:
        raise NotFoundError(f"no disease {disease_id}")
    return Disease(id=detail.id, name=detail.name, source=detail.source, aspect=aspect,
                   properties=detail.properties,
                   typical=[_annotation(snapshot, a) for a in detail.typical],
                   excluded=[_annotation(snapshot, a) for a in detail.excluded])
