"""Request and response models of the term, hierarchy, disease and annotation routes (with OpenAPI examples)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from kg.ids import HPO_ID_INPUT_PATTERN, canonical_hpo_id

# ---- limits (documented in the schema, enforced by validation) -----------------------------------------------
MAX_PAGE = 1000
MAX_OFFSET = 1_000_000
MAX_DOCUMENTS = 100
MAX_DOCUMENT_CHARS = 100_000
MAX_TOTAL_CHARS = 1_000_000  # per request: bounds one request to a few seconds of linker time
MAX_DOCUMENT_ID = 256

#: One rule for HPO ids in every request (``HP:``/``hp:``/``HP_``); :data:`HpoId` answers the canonical form.
HPO_ID_PATTERN = HPO_ID_INPUT_PATTERN
HpoId = Annotated[str, StringConstraints(pattern=HPO_ID_PATTERN), AfterValidator(canonical_hpo_id),
                  Field(examples=["HP:0001166"])]
DISEASE_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,31}:[A-Za-z0-9_.\-]{1,64}$"
SOURCE_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,31}$"

ResolvedFrom = Literal["alt_id", "replaced_by"]


# ---- problem details (RFC 9457), for the OpenAPI description of error responses ------------------------------
class Problem(BaseModel):
    """``application/problem+json``: every error the API returns."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no term HP:9999999",
         "instance": "/terms/HP:9999999"}]})

    type: str = Field(default="about:blank")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(Problem):
    """422: the request does not match the schema (path, query or body); ``errors`` says where."""

    errors: list[ValidationErrorItem] = Field(default_factory=list)


# ---- terms ---------------------------------------------------------------------------------------------------
class TermRef(BaseModel):
    id: str = Field(examples=["HP:0002202"])
    name: str = Field(examples=["Pleural effusion"])
    depth: int | None = Field(default=None, description="IS_A steps below HP:0000001 (shortest)")


class TermRefIC(TermRef):
    ic: float | None = Field(default=None, description="Information content -ln(n/N) over annotated diseases")


class ResolvedRef(TermRef):
    """A current term, with the id the client asked for and how it was resolved."""

    requested_id: str = Field(examples=["HP:0002203"])
    resolved_from: ResolvedFrom | None = Field(
        default=None, description="Set when requested_id is an alternative id (alt_id) or an obsolete id with a "
                                  "replacement (replaced_by); null when it is the current id")


class Synonym(BaseModel):
    text: str = Field(examples=["Fluid around lungs"])
    scope: str | None = Field(default=None, examples=["EXACT"], description="EXACT, RELATED, BROAD or NARROW")


class ObsoleteTermProblem(Problem):
    """410: the id is obsolete and has no replacement; ``consider`` lists the terms HPO suggests instead."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"type": "about:blank", "title": "Gone", "status": 410, "instance": "/terms/HP:0003295",
         "detail": "HP:0003295 is obsolete (obsolete Impaired FSH and LH secretion) and has no replacement",
         "obsolete_id": "HP:0003295", "name": "obsolete Impaired FSH and LH secretion",
         "consider": [{"id": "HP:0001250", "name": "Seizure", "depth": 3}]}]})

    obsolete_id: str
    name: str | None = None
    consider: list[TermRef] = Field(default_factory=list)


class Term(BaseModel):
    """One current HPO term."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "HP:0002202", "name": "Pleural effusion",
        "definition": "The presence of an excessive amount of fluid in the pleural cavity.",
        "comment": None, "synonyms": [{"text": "Fluid around lungs", "scope": "EXACT"}], "xrefs": [],
        "alt_ids": ["HP:0002203"], "parents": [{"id": "HP:0002086", "name": "Abnormality of the respiratory system",
                                                 "depth": 2}],
        "child_count": 0, "is_leaf": True, "depth": 3, "ic": 0.405, "annotation_count": 2,
        "requested_id": "HP:0002203", "resolved_from": "alt_id"}]})

    id: str
    name: str
    definition: str | None = None
    comment: str | None = None
    synonyms: list[Synonym] = Field(default_factory=list)
    xrefs: list[str] = Field(default_factory=list)
    alt_ids: list[str] = Field(default_factory=list)
    parents: list[TermRef] = Field(default_factory=list)
    child_count: int = 0
    is_leaf: bool = False
    depth: int | None = None
    ic: float | None = None
    annotation_count: int | None = Field(default=None, description="Diseases annotated with the term or below")
    requested_id: str = Field(description="The id in the request, as given")
    resolved_from: ResolvedFrom | None = Field(
        default=None, description="alt_id or replaced_by when requested_id is not the current id")


HierarchyRelation = Literal["parents", "children", "ancestors", "descendants"]


class TermList(BaseModel):
    """One page of related terms: parents and children by id, ancestors and descendants shallow → deep."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "term": {"id": "HP:0002090", "name": "Pneumonia", "depth": 4, "requested_id": "HP:0002090",
                 "resolved_from": None},
        "relation": "ancestors", "total": 4, "offset": 0, "limit": 100,
        "items": [{"id": "HP:0000001", "name": "All", "depth": 0},
                  {"id": "HP:0000118", "name": "Phenotypic abnormality", "depth": 1},
                  {"id": "HP:0002086", "name": "Abnormality of the respiratory system", "depth": 2},
                  {"id": "HP:0002088", "name": "Abnormal lung morphology", "depth": 3}]}]})

    term: ResolvedRef
    relation: HierarchyRelation
    total: int
    offset: int
    limit: int
    items: list[TermRef]


class HierarchyPath(BaseModel):
    """A shortest is-a path: up from ``a`` to a common ancestor ``via``, then down to ``b``."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "a": {"id": "HP:0002090", "name": "Pneumonia", "depth": 4, "requested_id": "HP:0002090",
              "resolved_from": None},
        "b": {"id": "HP:0002202", "name": "Pleural effusion", "depth": 3, "requested_id": "HP:0002202",
              "resolved_from": None},
        "via": {"id": "HP:0002086", "name": "Abnormality of the respiratory system", "depth": 2, "ic": 0.405},
        "length": 3, "up": 2, "down": 1,
        "path": [{"id": "HP:0002090", "name": "Pneumonia", "depth": 4},
                 {"id": "HP:0002088", "name": "Abnormal lung morphology", "depth": 3},
                 {"id": "HP:0002086", "name": "Abnormality of the respiratory system", "depth": 2},
                 {"id": "HP:0002202", "name": "Pleural effusion", "depth": 3}]}]})

    a: ResolvedRef
    b: ResolvedRef
    via: TermRefIC
    length: int = Field(description="IS_A edges on the path (up + down)")
    up: int = Field(description="IS_A edges from a up to via")
    down: int = Field(description="IS_A edges from via down to b")
    path: list[TermRef] = Field(description="a, …, via, …, b")


class CommonAncestors(BaseModel):
    """Lowest common ancestors of two terms (a term counts as its own ancestor)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "a": {"id": "HP:0002090", "name": "Pneumonia", "depth": 4, "requested_id": "HP:0002090",
              "resolved_from": None},
        "b": {"id": "HP:0002202", "name": "Pleural effusion", "depth": 3, "requested_id": "HP:0002203",
              "resolved_from": "alt_id"},
        "lowest": [{"id": "HP:0002086", "name": "Abnormality of the respiratory system", "depth": 2, "ic": 0.405}],
        "most_informative": {"id": "HP:0002086", "name": "Abnormality of the respiratory system", "depth": 2,
                             "ic": 0.405},
        "deepest": {"id": "HP:0002086", "name": "Abnormality of the respiratory system", "depth": 2, "ic": 0.405},
        "common_count": 3}]})

    a: ResolvedRef
    b: ResolvedRef
    lowest: list[TermRefIC] = Field(description="Common ancestors with no common ancestor below them")
    most_informative: TermRefIC | None = Field(description="Highest IC (Resnik's MICA); ties → deeper, lower id")
    deepest: TermRefIC | None = Field(description="Greatest depth; ties → higher IC, lower id")
    common_count: int = Field(description="Number of common ancestors, both terms' own ids included")


# ---- diseases ------------------------------------------------------------------------------------------------
DiseaseRelation = Literal["typical", "excluded"]
AspectFilter = Literal["P", "I", "C", "M", "H", "all"]


class DiseaseRef(BaseModel):
    id: str = Field(examples=["OMIM:154700"])
    name: str = Field(examples=["Marfan syndrome"])
    source: str = Field(examples=["OMIM"], description="OMIM, ORPHA, DECIPHER or CXR_PACK")


class PhenotypeDisease(DiseaseRef):
    relation: DiseaseRelation
    frequency: float | None = Field(
        default=None, description="Highest stated frequency (0–1) over the matched annotations; null when "
                                  "not stated, and always null for excluded annotations")
    phenotypes: list[str] = Field(description="The annotated terms: the requested term and/or its descendants")


class PhenotypeDiseasePage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "term": {"id": "HP:0001640", "name": "Cardiomegaly", "depth": 3, "requested_id": "HP:0001640",
                 "resolved_from": None},
        "relation": "typical", "source": None, "include_descendants": False, "total": 1, "offset": 0,
        "limit": 100,
        "items": [{"id": "ORPHA:200002", "name": "Heart disease B", "source": "ORPHA", "relation": "typical",
                   "frequency": 0.895, "phenotypes": ["HP:0001640"]}]}]})

    term: ResolvedRef
    relation: DiseaseRelation
    source: str | None
    include_descendants: bool
    total: int
    offset: int
    limit: int
    items: list[PhenotypeDisease] = Field(description="Ordered by frequency (highest first, unknown last), then id")


class OnsetRef(BaseModel):
    id: str = Field(examples=["HP:0003577"])
    name: str | None = Field(default=None, examples=["Congenital onset"])


class DiseasePhenotype(BaseModel):
    """One annotation edge (repeated source rows are folded into it)."""

    id: str = Field(examples=["HP:0002090"])
    name: str | None = Field(default=None, examples=["Pneumonia"])
    aspect: str | None = Field(default=None, examples=["P"])
    frequency: float | None = Field(default=None, examples=[0.75], description="Highest stated frequency, 0–1")
    frequencies: list[str] = Field(default_factory=list, examples=[["3/4", "1/4"]],
                                   description="Every raw frequency the source states")
    onsets: list[OnsetRef] = Field(default_factory=list)
    sexes: list[str] = Field(default_factory=list)
    modifiers: list[str] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list, examples=[["PCS"]])
    references: list[str] = Field(default_factory=list, examples=[["PMID:1", "PMID:2"]])
    source_rows: int | None = Field(default=None, description="Source rows folded into this edge")
    rationale: str | None = Field(default=None, description="Curated packs: why the phenotype is listed")


class Disease(DiseaseRef):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "OMIM:100001", "name": "Lung disease A", "source": "OMIM", "aspect": "P", "properties": {},
        "typical": [{"id": "HP:0002090", "name": "Pneumonia", "aspect": "P", "frequency": 0.75,
                     "frequencies": ["3/4", "1/4"], "onsets": [{"id": "HP:0003577", "name": "Congenital onset"}],
                     "sexes": [], "modifiers": [], "evidence": ["PCS"], "references": ["PMID:1", "PMID:2"],
                     "source_rows": 2, "rationale": None}],
        "excluded": [{"id": "HP:0001640", "name": "Cardiomegaly", "aspect": "P", "frequency": 0.0,
                      "frequencies": ["0/5"], "onsets": [], "sexes": [], "modifiers": [], "evidence": ["TAS"],
                      "references": ["OMIM:100001"], "source_rows": 1, "rationale": None}]}]})

    aspect: AspectFilter = Field(description="The aspect filter applied to both sets")
    properties: dict[str, Any] = Field(default_factory=dict, description="Other stored properties (curated packs)")
    typical: list[DiseasePhenotype] = Field(description="Typical set, highest frequency first")
    excluded: list[DiseasePhenotype] = Field(description="Excluded set (NOT rows, 0/n, HP:0040285), by id")


class DiseaseSearch(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "query": "marfan", "source": "OMIM", "total": 1, "limit": 20,
        "items": [{"id": "OMIM:154700", "name": "Marfan syndrome", "source": "OMIM"}]}]})

    query: str | None
    source: str | None
    gene: str | None = None
    total: int = Field(description="All matches; items holds the first `limit`")
    limit: int
    items: list[DiseaseRef]


# ---- annotate ------------------------------------------------------------------------------------------------
def _no_lone_surrogates(value: str | None) -> str | None:
    if value is not None and any("\ud800" <= c <= "\udfff" for c in value):
        raise ValueError("text contains an unpaired UTF-16 surrogate (not valid Unicode)")
    return value


class AnnotateDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=MAX_DOCUMENT_ID, examples=["note-1"],
                           description="Echoed back; the document's position when omitted")
    text: str = Field(max_length=MAX_DOCUMENT_CHARS, examples=["No pleural effusion. Possible cardiomegaly."])

    @field_validator("id", "text")
    @classmethod
    def _valid_unicode(cls, value: str | None) -> str | None:
        return _no_lone_surrogates(value)


class AnnotateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"documents": [
        {"id": "note-1", "text": "Chest X-ray: no pleural effusion. Possible cardiomegaly; seizures since birth."}]}]})

    documents: list[AnnotateDocument] = Field(max_length=MAX_DOCUMENTS,
                                              description=f"At most {MAX_DOCUMENTS} documents of at most "
                                                          f"{MAX_DOCUMENT_CHARS:,} characters each")


class MentionOut(BaseModel):
    """``text == document.text[start:end]``; offsets count Unicode code points (not UTF-16 units)."""

    start: int
    end: int
    text: str = Field(examples=["pleural effusion"])
    id: str = Field(examples=["HP:0002202"])
    name: str = Field(examples=["Pleural effusion"])
    matched: str = Field(examples=["Pleural effusion"], description="The lexicon string (name or synonym)")
    field: Literal["name", "synonym"]
    negated: bool = Field(description="Negated in context (\"no X\", \"X was ruled out\")")
    uncertain: bool = Field(description="Hedged (\"possible X\", \"cannot be excluded\")")


class AnnotatedDocument(BaseModel):
    id: str
    mentions: list[MentionOut]


class AnnotateResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"documents": [{"id": "note-1", "mentions": [
        {"start": 16, "end": 32, "text": "pleural effusion", "id": "HP:0002202", "name": "Pleural effusion",
         "matched": "Pleural effusion", "field": "name", "negated": True, "uncertain": False},
        {"start": 43, "end": 55, "text": "cardiomegaly", "id": "HP:0001640", "name": "Cardiomegaly",
         "matched": "Cardiomegaly", "field": "name", "negated": False, "uncertain": True},
        {"start": 57, "end": 65, "text": "seizures", "id": "HP:0001250", "name": "Seizure",
         "matched": "Seizures", "field": "synonym", "negated": False, "uncertain": False}]}]}]})

    documents: list[AnnotatedDocument]
