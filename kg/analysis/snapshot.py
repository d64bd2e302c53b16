"""The in-memory view of the graph that hot read paths use: terms, diseases, their typical and excluded sets,
and the ontology DAG (:class:`GraphSnapshot`). Pure data; :mod:`kg.repo.snapshots` loads it from the graph."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kg.analysis.ontology import OntologyView

__all__ = ["Annotation", "DiseaseInfo", "GraphSnapshot", "TermInfo"]


@dataclass(frozen=True, slots=True)  # slots: hundreds of thousands of these in a full snapshot
class TermInfo:
    id: str
    name: str
    definition: str | None
    synonyms: tuple[str, ...]
    synonym_scopes: tuple[str, ...]
    xrefs: tuple[str, ...]
    comment: str | None
    obsolete: bool
    alt_ids: tuple[str, ...]
    replaced_by: str | None
    consider: tuple[str, ...]
    ic: float | None
    depth: int | None
    annotation_count: int | None


@dataclass(frozen=True, slots=True)
class DiseaseInfo:
    id: str
    name: str
    source: str
    genes: tuple[str, ...] = ()  # gene symbols (HPO's genes_to_phenotype.txt)


@dataclass(frozen=True, slots=True)
class Annotation:
    phenotype: str
    frequency: float | None
    aspect: str | None


@dataclass
class GraphSnapshot:
    """Everything hot paths need, keyed by id. ``view`` holds the live DAG, closure, depth and IC."""

    stamp: str | None
    view: OntologyView
    terms: dict[str, TermInfo]
    diseases: dict[str, DiseaseInfo]
    typical: dict[str, list[Annotation]] = field(default_factory=dict)
    excluded: dict[str, list[str]] = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.time)
    load_seconds: float = 0.0

    def resolve(self, term_id: str) -> str | None:
        """Current id for a live, alternative or obsolete-with-replacement id."""
        return self.view.resolve(term_id)

    def term(self, term_id: str) -> TermInfo | None:
        return self.terms.get(term_id)
