"""Response models of the explorer's read endpoints: a term's neighbourhood and its evidence."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.schemas.terms import TermRef
from kg.repo.evidence import Relation

NodeKind = Literal["phenotype", "disease", "evidence"]
NodeRole = Literal["center", "parent", "child", "typical", "excluded", "shows", "rules_out"]
EdgeType = Literal["IS_A", "HAS_PHENOTYPE", "EXCLUDES", "SHOWS", "RULES_OUT"]


class GraphNode(BaseModel):
    id: str = Field(examples=["HP:0002090"])
    label: str = Field(examples=["Pneumonia"])
    kind: NodeKind
    role: NodeRole = Field(description="How the node relates to the centre term")
    source: str | None = Field(default=None, description="Diseases: OMIM, ORPHA, DECIPHER, …")
    frequency: float | None = Field(default=None, description="Typical diseases: highest stated frequency")


class GraphEdge(BaseModel):
    source: str
    target: str
    type: EdgeType


class Neighbourhood(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "term": {"id": "HP:0002090", "name": "Pneumonia", "depth": 3},
        "nodes": [{"id": "HP:0002090", "label": "Pneumonia", "kind": "phenotype", "role": "center"},
                  {"id": "OMIM:100001", "label": "Lung disease A", "kind": "disease", "role": "typical",
                   "source": "OMIM", "frequency": 0.75}],
        "edges": [{"source": "OMIM:100001", "target": "HP:0002090", "type": "HAS_PHENOTYPE"}],
        "totals": {"parents": 1, "children": 0, "typical": 1, "excluded": 0, "evidence": 0}}]}}

    term: TermRef
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    totals: dict[str, int] = Field(description="How many of each there are (the graph shows up to the limits)")


class EvidenceItem(BaseModel):
    id: str
    caption: str
    relation: Relation
    matched: str | None = Field(default=None, description="The caption words the linker matched")
    uncertain: bool | None = None
    source: str | None = None
    license: str | None = None
    image_url: str = Field(examples=["/evidence/ev-1/image"])


class SourceCount(BaseModel):
    source: str = Field(examples=["pneumoniamnist"])
    count: int


class EvidenceFacets(BaseModel):
    """What a filter panel shows: each count applies the other filter, not its own."""

    relations: dict[Relation, int] = Field(description="Items per relation under the `source` filter",
                                           examples=[{"shows": 56089, "rules_out": 23911}])
    sources: list[SourceCount] = Field(description="Items per evidence source under the `relation` filter, "
                                                   "most first")


class EvidencePage(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "term": {"id": "HP:0002090", "name": "Pneumonia", "depth": 3}, "total": 2, "offset": 0, "limit": 1,
        "items": [{"id": "ev-1", "caption": "Right lower lobe pneumonia.", "relation": "shows",
                   "matched": "pneumonia", "source": "pneumoniamnist", "license": "CC BY 4.0",
                   "image_url": "/evidence/ev-1/image"}],
        "next": "shows:ev-1",
        "facets": {"relations": {"shows": 2, "rules_out": 0}, "sources": [{"source": "pneumoniamnist", "count": 2}]},
    }]}}

    term: TermRef
    total: int = Field(description="Items that pass the filters")
    offset: int = Field(description="Position of the first item among them (also when paging by `after`)")
    limit: int
    items: list[EvidenceItem]
    next: str | None = Field(default=None, description="Pass as `after` for the following page; absent on the last")
    facets: EvidenceFacets
