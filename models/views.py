"""Turn the graph's plain training views (:mod:`kg.training_views`) into :mod:`models.types` dataclasses.

``kg`` returns dicts so that it never depends on ``models``; this module converts them and holds the seeded
held-out split used to evaluate the knowledge encoder on phenotypes it never trained on. Standard library
and numpy only (no torch at import time).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from models.types import DiseaseSets, PhenotypeAttributes

__all__ = ["split_held_out", "to_attributes", "to_disease_sets"]


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in (value or ()) if v is not None)


def to_attributes(rows: Iterable[Mapping[str, Any]]) -> list[PhenotypeAttributes]:
    """``kg.training_views.phenotype_attributes`` rows → :class:`PhenotypeAttributes` (order kept)."""
    return [
        PhenotypeAttributes(
            id=str(r["id"]),
            name=str(r["name"]),
            definition=str(r["definition"]) if r.get("definition") else None,
            synonyms=_strings(r.get("synonyms")),
            parents=_strings(r.get("parents")),
            parent_ids=_strings(r.get("parent_ids")),
        )
        for r in rows
    ]


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(p[0]), str(p[1])) for p in (value or ()))


def to_disease_sets(rows: Iterable[Mapping[str, Any]]) -> list[DiseaseSets]:
    """``kg.training_views.disease_sets`` rows → :class:`DiseaseSets` (order kept)."""
    return [
        DiseaseSets(id=str(r["id"]), name=str(r["name"]), typical=_pairs(r.get("typical")),
                    excluded=_pairs(r.get("excluded")))
        for r in rows
    ]


def split_held_out(
    attributes: Sequence[PhenotypeAttributes], fraction: float, *, seed: int = 0
) -> tuple[list[PhenotypeAttributes], list[PhenotypeAttributes]]:
    """Seeded ``(train, held_out)`` split of phenotypes (input order kept in both lists).

    Only phenotypes with a definition or a synonym can be held out (the evaluation queries those attributes
    against names); ``round(fraction * eligible)`` of them are drawn with ``numpy.random.default_rng(seed)``
    over the eligible ids in sorted order, so the split depends on the seed and the set of ids only.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"held-out fraction must lie in [0, 1), not {fraction}")
    eligible = sorted(a.id for a in attributes if a.definition or a.synonyms)
    n = round(fraction * len(eligible))
    if fraction > 0 and n == 0 and eligible:
        n = 1
    rng = np.random.default_rng([int(seed), 0x5E1D])
    chosen = {eligible[int(i)] for i in rng.permutation(len(eligible))[:n]}
    train = [a for a in attributes if a.id not in chosen]
    held = [a for a in attributes if a.id in chosen]
    return train, held
