"""Reads of image–caption evidence for the API: the evidence of one phenotype (paged, by relation) and the stored
image of one evidence node."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, LiteralString

from kg.store.graph import Graph
from kg.store.queries import EVIDENCE_IMAGE

Relation = Literal["shows", "rules_out"]
RELATION_TYPES: Final[dict[Relation, str]] = {"shows": "SHOWS", "rules_out": "RULES_OUT"}

# The evidence of one phenotype: images that show it first (ordered by id), then those that rule it out.
_EVIDENCE_OF_PHENOTYPE: Final[LiteralString] = """
MATCH (e:Evidence)-[s]->(p:Phenotype {id: $id})
WHERE type(s) IN $types
RETURN e.id AS id, e.caption AS caption, e.source AS source, e.license AS license, type(s) AS relation,
       s.matched AS matched, s.uncertain AS uncertain
ORDER BY relation DESC, id SKIP $skip LIMIT $limit
"""
_EVIDENCE_OF_PHENOTYPE_COUNT: Final[LiteralString] = """
MATCH (e:Evidence)-[s]->(p:Phenotype {id: $id})
WHERE type(s) IN $types
RETURN count(s) AS n
"""


@dataclass(frozen=True)
class EvidenceLink:
    """One evidence item linked to a phenotype."""

    id: str
    caption: str
    relation: Relation
    matched: str | None
    uncertain: bool | None
    source: str | None
    license: str | None


def evidence_of_phenotype(graph: Graph, term_id: str, *, skip: int = 0, limit: int = 20,
                          relation: Relation | None = None) -> tuple[int, list[EvidenceLink]]:
    """``(total, page)`` of the evidence linked to ``term_id`` (``relation`` filters), images showing it first."""
    types = [RELATION_TYPES[relation]] if relation else list(RELATION_TYPES.values())
    total = int(graph.read(_EVIDENCE_OF_PHENOTYPE_COUNT, id=term_id, types=types)[0]["n"])
    rows = graph.read(_EVIDENCE_OF_PHENOTYPE, id=term_id, types=types, skip=skip, limit=limit) if limit else []
    return total, [EvidenceLink(id=r["id"], caption=r["caption"] or "", matched=r["matched"],
                                uncertain=r["uncertain"], source=r["source"], license=r["license"],
                                relation="shows" if r["relation"] == "SHOWS" else "rules_out") for r in rows]


def evidence_image(graph: Graph, evidence_id: str) -> tuple[str, str] | None:
    """``(sha256, image format)`` of an evidence node's stored image; ``None`` when it has none or is unknown."""
    rows = graph.read(EVIDENCE_IMAGE, id=evidence_id)
    if not rows or not rows[0]["sha256"]:
        return None
    return str(rows[0]["sha256"]), str(rows[0]["format"] or "")
