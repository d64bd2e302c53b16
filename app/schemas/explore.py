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


class EvidencePage(BaseModel):
    term: TermRef
    total: int
    offset: int
    limit: int
    items: list[EvidenceItem]
