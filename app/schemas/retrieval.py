"""Response models of ``POST /retrieval/image``: phenotypes grounded in the evidence graph, ranked findings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Scope = Literal["model", "all"]


class ModelRef(BaseModel):
    id: str = Field(description="Model version id (or the directory name of PHENOKG_CLIP_MODEL)")
    kind: Literal["clip"] = "clip"
    active: bool = Field(description="Whether it is the registry's active clip version")
    calibrated: bool = Field(description="Whether the model carries a calibration fitted on its validation split "
                                         "(else probabilities are uncalibrated heuristics)")
    vocabulary_size: int = Field(description="Phenotypes the model learned (its training evidence shows or rules "
                                             "out, its findings' sets, and their ancestors)")


class PhenotypeHit(BaseModel):
    id: str = Field(examples=["HP:0002090"])
    name: str
    probability: float | None = Field(
        description="Calibrated probability that the image shows the phenotype (null outside the model's "
                    "vocabulary: scope=all ranks those by similarity alone)")
    similarity: float = Field(description="Cosine similarity of the image and the phenotype's prompt")
    neighbour_share: float | None = Field(
        description="Similarity-weighted share of the nearest evidence images labelled for this phenotype that "
                    "show it, unsmoothed (null when none of them is labelled for it)")
    in_vocabulary: bool = Field(description="False: an extrapolation beyond what the model learned (scope=all)")
    supporting_evidence: list[str] = Field(description="Nearest evidence images that show it (SHOWS), best first")
    contradicting_evidence: list[str] = Field(description="Nearest evidence images that rule it out (RULES_OUT)")


class RuledOutHit(BaseModel):
    id: str
    name: str
    probability: float = Field(description="Calibrated probability that the image shows it (low)")
    neighbour_share: float = Field(description="Similarity-weighted share of the labelled nearest evidence that "
                                               "rules it out, unsmoothed")
    evidence: list[str] = Field(description="Nearest evidence images that rule it out, best first")


class FindingHit(BaseModel):
    rank: int
    id: str = Field(examples=["CXR:pneumonia"])
    name: str
    source: str = Field(examples=["CXR_PACK"])
    score: float = Field(description="Log likelihood ratio of the present / ruled-out phenotypes (the ranker's)")
    probability: float | None = Field(
        description="For the model's own findings: the calibrated probability of the finding's defining phenotype "
                    "(its most frequent typical terms, e.g. HP:0002090 for CXR:pneumonia); for a finding defined by "
                    "absences (No finding), one minus that of the most probable phenotype it excludes. Null for "
                    "other diseases: the ranker's score orders them but is no probability (it treats correlated "
                    "phenotypes as independent)")
    supported_by: list[str] = Field(description="Present phenotypes its typical set explains")
    contradicted_by: list[str] = Field(description="Present phenotypes its excluded set holds")
    absent_consistent: list[str] = Field(description="Ruled-out phenotypes it excludes or rarely shows")
    absent_conflicting: list[str] = Field(description="Ruled-out phenotypes it typically shows")


class EvidenceHit(BaseModel):
    id: str
    caption: str
    score: float = Field(description="Cosine similarity of the two images' embeddings")
    image_url: str
    phenotypes: list[str] = Field(description="Phenotypes it shows (SHOWS)")
    rules_out: list[str] = Field(description="Phenotypes it rules out (RULES_OUT)")
    finding: str | None = Field(description="The finding / disease its dataset labels it with, if any")


class RetrievalResponse(BaseModel):
    model: ModelRef
    device: str = Field(examples=["cpu", "cuda:0"])
    elapsed_ms: float
    scope: Scope
    in_domain: bool = Field(description="False: the image is less like every evidence image than the validation "
                                        "images were; treat every answer as unreliable")
    warning: str | None = Field(description="Plain-language caveat (out of domain, extrapolation, uncalibrated)")
    nearest_similarity: float | None = Field(description="Cosine similarity to the nearest evidence image (the "
                                                         "model's embedding)")
    domain_similarity: float | None = Field(
        description="Cosine similarity to the nearest reference evidence image in generic ImageNet features, the "
                    "domain check (null for a model without a fitted domain reference)")
    domain_threshold: float | None = Field(description="Below this domain similarity an image is out of domain "
                                                       "(1 % of the validation images were)")
    phenotypes: list[PhenotypeHit] = Field(description="Most probable phenotypes, best first")
    ruled_out: list[RuledOutHit] = Field(description="Phenotypes the nearest evidence rules out")
    findings: list[FindingHit] = Field(description="Findings / diseases ranked by the likelihood ranker from the "
                                                   "present and ruled-out phenotypes")
    evidence: list[EvidenceHit] = Field(description="Nearest evidence images")
