"""Request and response models of ``POST /similarity`` and ``POST /rank``.

Ids must look like HPO ids (``HP:``, ``hp:`` or ``HP_`` and seven digits, the rule of every endpoint; anything
else is a 422). Well-formed ids that the loaded ontology does not know, or obsolete ones without a replacement,
are **not** an error: they are listed in ``unknown`` (or ``obsolete``) and ignored, because clinical phenotype
lists often carry ids from another HPO release.
Alternative and obsolete-with-replacement ids are resolved and reported in ``redirected``. A request with
nothing known left on a side that needs terms is a 422; lists hold at most ``MAX_TERMS`` ids.

``POST /rank`` also takes a clinical note (``text``, at most ``MAX_RANK_TEXT_CHARS`` characters) instead of or
with the id lists: its linked mentions are listed in ``query.mentions`` and every explanation entry of a term
the note gave carries the ``spans`` of its mentions. Results are one row per disease unless ``group=false``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.schemas.terms import HpoId, _no_lone_surrogates

MAX_TERMS = 200
MAX_RANK_LIMIT = 500
MAX_RANK_TEXT_CHARS = 100_000

SourceName = Literal["OMIM", "ORPHA", "DECIPHER", "CXR_PACK"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- /similarity ----------------------------------------------------------------------------------------
class SimilarityRequest(_Request):
    """Two phenotype sets to compare."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"a": ["HP:0001166", "HP:0001083", "HP:0002616"], "b": ["HP:0001519", "HP:0000545", "HP:0004382"],
         "method": "resnik", "combine": "funsimavg"},
    ]})

    a: list[HpoId] = Field(min_length=1, max_length=MAX_TERMS, description="First phenotype set")
    b: list[HpoId] = Field(min_length=1, max_length=MAX_TERMS, description="Second phenotype set")
    method: Literal["resnik", "lin", "jc"] = Field(
        default="resnik", description="Term similarity: Resnik (IC of the MICA), Lin, or Jiang–Conrath")
    combine: Literal["bma", "funsimavg"] = Field(
        default="funsimavg", description="Set combination: best-match average (symmetric) or funSimAvg")


class TermBestMatch(BaseModel):
    term: str = Field(description="A term of this set (current id)")
    name: str
    match: str = Field(description="Its best-matching term in the other set")
    match_name: str
    score: float = Field(description="Term similarity of the pair with the chosen method")
    mica: str = Field(description="Most informative common ancestor of the pair")
    mica_name: str
    mica_ic: float = Field(description="Information content of the MICA (the Resnik similarity)")


class SimilarityResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "score": 3.21, "method": "resnik", "combine": "funsimavg",
        "a": [{"term": "HP:0001166", "name": "Arachnodactyly", "match": "HP:0001519",
               "match_name": "Disproportionate tall stature", "score": 1.9, "mica": "HP:0000924",
               "mica_name": "Abnormality of the skeletal system", "mica_ic": 1.9}],
        "b": [], "redirected": {}, "unknown": [],
    }]})

    score: float
    method: str
    combine: str
    a: list[TermBestMatch] = Field(description="Best match in b of every term of a")
    b: list[TermBestMatch] = Field(description="Best match in a of every term of b")
    redirected: dict[str, str] = Field(default_factory=dict,
                                       description="Alternative / obsolete ids given → the current id used")
    unknown: list[str] = Field(default_factory=list, description="Well-formed ids the ontology does not know "
                                                                 "(ignored)")
    obsolete: list[str] = Field(default_factory=list, description="Obsolete ids without a replacement (ignored; "
                                                                  "`GET /terms/{id}` lists terms to consider)")


# ---- /rank ---------------------------------------------------------------------------------------------
class RankRequest(_Request):
    """Observed and explicitly absent phenotypes of one patient, as ids, as a clinical note, or both."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"present": ["HP:0001166", "HP:0001083", "HP:0002616", "HP:0001519"], "absent": ["HP:0001250"],
         "sources": ["OMIM", "ORPHA"], "limit": 10},
        {"text": "Tall boy with arachnodactyly, ectopia lentis and an aortic root aneurysm. No seizures.",
         "limit": 10},
    ]})

    present: list[HpoId] = Field(default_factory=list, max_length=MAX_TERMS,
                                 description="Observed phenotypes (may be empty when `text` is given)")
    text: str | None = Field(
        default=None, max_length=MAX_RANK_TEXT_CHARS,
        description="A clinical note: its phenotype mentions are linked (names and synonyms of HPO terms) and "
                    "added to `present`, or to `absent` where negated (\"no X\", \"X was absent\", \"denies X\"); "
                    "uncertain mentions (\"possible X\") are left out. Listed in `query.mentions`")
    absent: list[HpoId] = Field(default_factory=list, max_length=MAX_TERMS,
                                description="Phenotypes explicitly looked for and not found")
    sources: list[SourceName] | None = Field(default=None, min_length=1,
                                             description="Rank only diseases from these sources (default: all)")
    limit: int = Field(default=20, ge=1, le=MAX_RANK_LIMIT, description="How many diseases to return")
    explain: bool = Field(default=True, description="Include the per-disease explanation")
    method: Literal["likelihood", "ic"] = Field(
        default="likelihood",
        description="likelihood: sum of each term's log likelihood ratio (LIRICAL-style; absent phenotypes count "
                    "through their frequency and how often such a finding is looked for); ic: information-content "
                    "match score with annotation-set size normalisation (the earlier default)")
    group: bool = Field(default=True, description="One row per disease: an OMIM entry and its Orphanet twin are "
                                                  "one result (`equivalent_ids`); false: every entry its own row")

    @field_validator("text")
    @classmethod
    def _valid_unicode(cls, value: str | None) -> str | None:
        return _no_lone_surrogates(value)

    @model_validator(mode="after")
    def _something_to_rank(self) -> RankRequest:
        if not self.present and not (self.text and self.text.strip()):
            raise ValueError("give present phenotype ids, a text, or both")
        return self


class TextSpan(BaseModel):
    """Where a mention of the note is: ``text == note[start:end]`` (Unicode code points)."""

    start: int
    end: int
    text: str


class Matched(BaseModel):
    observed: str
    observed_name: str
    typical: str = Field(description="The disease's typical phenotype that explains the observed one")
    typical_name: str
    how: Literal["exact", "ancestor", "descendant", "related"] = Field(
        description="The observed term relative to the typical one: the same, more general (ancestor), more "
                    "specific (descendant), or related only through their common ancestor")
    mica: str
    mica_name: str
    ic: float = Field(description="IC of the MICA (Resnik similarity of the pair)")
    frequency: float | None = Field(description="Annotated frequency of the typical phenotype (None: not stated)")
    contribution: float
    likelihood_ratio: float | None = Field(default=None, description="method likelihood: this term's likelihood "
                                                                      "ratio for the disease (e^contribution)")
    spans: list[TextSpan] | None = Field(default=None, description="The note's mentions of the observed term")


class Contradicted(BaseModel):
    observed: str
    observed_name: str
    excluded: str = Field(description="The phenotype the disease excludes (at or above the observed one)")
    excluded_name: str
    how: Literal["exact", "descendant"]
    contribution: float
    likelihood_ratio: float | None = Field(default=None, description="method likelihood: this term's likelihood "
                                                                      "ratio for the disease (e^contribution)")
    spans: list[TextSpan] | None = Field(default=None, description="The note's mentions of the observed term")


class AbsentEvidence(BaseModel):
    absent: str
    absent_name: str
    disease_term: str = Field(description="The excluded phenotype (consistent) or the most frequent typical "
                                          "phenotype at or below the absent one (conflicting)")
    disease_term_name: str
    how: Literal["exact", "descendant", "ancestor"]
    frequency: float | None
    contribution: float
    likelihood_ratio: float | None = Field(default=None, description="method likelihood: this term's likelihood "
                                                                      "ratio for the disease (e^contribution)")
    spans: list[TextSpan] | None = Field(default=None, description="The note's (negated) mentions of the absent "
                                                                   "term")


class ScorePartsOut(BaseModel):
    match: float
    contradiction: float
    absent_consistent: float
    absent_conflicting: float


class ExplanationOut(BaseModel):
    matched: list[Matched]
    contradicted: list[Contradicted] = Field(description="Observed phenotypes the disease excludes")
    absent_consistent: list[AbsentEvidence] = Field(description="Absent phenotypes that count for the disease (it "
                                                                "excludes them; method likelihood also: it shows "
                                                                "them, but not in every patient)")
    absent_conflicting: list[AbsentEvidence] = Field(description="Absent phenotypes the disease typically shows "
                                                                 "(count against it, by frequency)")
    unmatched: list[str] = Field(description="Observed phenotypes the disease does not explain")
    parts: ScorePartsOut


class EquivalentOut(BaseModel):
    id: str
    name: str
    source: str
    score: float = Field(description="This entry's own score")


class RankedDiseaseOut(BaseModel):
    rank: int
    id: str = Field(description="The disease (with `group`, the OMIM entry of a group that has one)")
    name: str
    source: str
    score: float = Field(description="With `group`, the best score of the group's entries")
    explanation: ExplanationOut | None = None
    pooled_with: str | None = Field(default=None, description="The Orphanet entry of the same disease whose "
                                    "annotations this OMIM entry was also scored on (same name, or a shared gene "
                                    "and a similar name, one-to-one)")
    equivalent_ids: list[EquivalentOut] = Field(default_factory=list, description="With `group`: the other "
                                                "entries of the same disease (an OMIM entry's Orphanet twin)")
    score_from: str | None = Field(default=None, description="With `group`: the entry whose score and explanation "
                                                             "the row shows, when it is not the row's own id")


class QueryMention(BaseModel):
    """A phenotype mention of the note and what the query made of it."""

    id: str
    name: str
    start: int
    end: int
    text: str = Field(description="``note[start:end]``")
    matched: str = Field(description="The lexicon string (name or synonym)")
    negated: bool
    uncertain: bool
    used_as: Literal["present", "absent", "uncertain", "overridden"] = Field(
        description="present / absent: added to the query; uncertain (\"possible X\"): left out; overridden: a "
                    "negated mention of a term the note (or `present`) also asserts, left out")


class RankQuery(BaseModel):
    present: list[str] = Field(description="Present phenotypes used (current ids)")
    absent: list[str] = Field(description="Absent phenotypes used (current ids)")
    redirected: dict[str, str] = Field(default_factory=dict)
    unknown: list[str] = Field(default_factory=list, description="Well-formed ids the ontology does not know "
                                                                 "(ignored)")
    obsolete: list[str] = Field(default_factory=list, description="Obsolete ids without a replacement (ignored; "
                                                                  "`GET /terms/{id}` lists terms to consider)")
    mentions: list[QueryMention] | None = Field(default=None, description="With `text`: every linked mention")


class RankResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "query": {"present": ["HP:0001166", "HP:0001083"], "absent": [], "redirected": {}, "unknown": []},
        "candidates": 8359,
        "results": [{"rank": 1, "id": "OMIM:154700", "name": "Marfan syndrome", "source": "OMIM", "score": 14.2,
                     "equivalent_ids": [{"id": "ORPHA:558", "name": "Marfan syndrome", "source": "ORPHA",
                                         "score": 13.1}]}],
    }]})

    query: RankQuery
    method: Literal["likelihood", "ic"] = Field(default="likelihood", description="The score used")
    candidates: int = Field(description="Number of diseases ranked (after the source filter)")
    results: list[RankedDiseaseOut]
