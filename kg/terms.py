"""One ontology term as parsed from ``hp.obo``: the row ingest writes, and the in-memory views and tests build
from (a leaf module, so analysis never imports ingest)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TermRow:
    id: str
    name: str
    definition: str | None = None
    synonyms: tuple[str, ...] = ()
    synonym_scopes: tuple[str, ...] = ()  # EXACT / RELATED / BROAD / NARROW, parallel to synonyms
    xrefs: tuple[str, ...] = ()
    comment: str | None = None
    obsolete: bool = False
    alt_ids: tuple[str, ...] = ()
    replaced_by: str | None = None
    consider: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()
