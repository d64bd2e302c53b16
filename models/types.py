"""Plain data the trainer and captioner consume (no torch, no graph): a phenotype's attributes and a disease's
typical and excluded sets.

The app builds them from ``kg.repo.training_views`` records (which mirror them; ``kg`` never imports
``models``), so every model component is testable on in-memory data.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DiseaseSets", "PhenotypeAttributes"]


@dataclass(frozen=True, slots=True)
class PhenotypeAttributes:
    """The textual attributes of one phenotype term.

    ``parents`` holds the parents' *names* (used to build "X is a child phenotype of Y" sentences);
    ``parent_ids`` holds their ids (used to keep a parent and its child out of the same contrastive batch).
    """

    id: str
    name: str
    definition: str | None = None
    synonyms: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()
    parent_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DiseaseSets:
    """A disease (or imaging finding) with its typical set T(d) and excluded set E(d).

    Both sets are ordered ``(hpo_id, name)`` pairs, e.g. ``("HP:0002202", "Pleural effusion")``.
    """

    id: str
    name: str
    typical: tuple[tuple[str, str], ...] = ()
    excluded: tuple[tuple[str, str], ...] = ()
