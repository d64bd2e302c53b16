"""One result row per disease: an OMIM entry and its Orphanet twin (the pairs that pooling uses,
:func:`kg.analysis.equivalence.equivalent_diseases`) ranked as one row.

A group is the entries of one disease that are candidates of the ranking (a source filter may leave one out).
Its row takes the id, name and source of the group's OMIM entry when it has one (else its only entry), the
**best** score of the group with the explanation of the entry that scored it (``score_from`` names that entry
when it is not the row's own), and lists the other entries in ``equivalents`` with their own scores. Groups
are ordered by their best entry, so the grouped order is the raw order with the second entry of each pair
dropped; ranks are renumbered from 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from kg.analysis.ranking.types import EquivalentEntry, RankedDisease

LEAD_SOURCE = "OMIM"


def partner_rows(pairs: Mapping[str, str], position: Mapping[str, int]) -> dict[int, int]:
    """Row → the row of its equivalent entry (both ways), for the pairs with both entries in ``position``."""
    out: dict[int, int] = {}
    for a, b in pairs.items():
        ra, rb = position.get(a), position.get(b)
        if ra is not None and rb is not None and ra != rb:
            out[ra] = rb
            out[rb] = ra
    return out


def group_rows(order: Iterable[int], partner: Mapping[int, int], candidate: np.ndarray,
               limit: int) -> list[tuple[int, ...]]:
    """The first ``limit`` groups of the rows ``order`` (ranked best first): each group holds its rows best
    first, a row joined by its partner when the partner is a candidate (``candidate[row]``); ``order`` is read
    only as far as needed."""
    groups: list[tuple[int, ...]] = []
    taken: set[int] = set()
    if limit < 1:
        return groups
    for row in order:
        if row in taken:
            continue
        other = partner.get(row)
        if other is not None and bool(candidate[other]):
            taken.add(other)
            groups.append((row, other))
        else:
            groups.append((row,))
        if len(groups) >= limit:
            break
    return groups


def merge_group(rank: int, members: Sequence[RankedDisease]) -> RankedDisease:
    """The row of one group (``members`` best first, the first one explained): the OMIM entry's identity, the
    best score and its explanation, the other entries as ``equivalents``."""
    if not members:
        raise ValueError("a group has at least one entry")
    best = members[0]
    lead = next((m for m in members if m.source.upper() == LEAD_SOURCE), best)
    return RankedDisease(
        rank=rank, id=lead.id, name=lead.name, source=lead.source, score=best.score,
        explanation=best.explanation, pooled_with=lead.pooled_with,
        equivalents=tuple(EquivalentEntry(m.id, m.name, m.source, m.score) for m in members if m is not lead),
        score_from=None if best is lead else best.id)


def group_results(results: Sequence[RankedDisease], pairs: Mapping[str, str],
                  limit: int | None = None) -> list[RankedDisease]:
    """A raw ranked list (best first) grouped by the equivalence ``pairs`` (OMIM id → Orphanet id): what
    ``RankingIndex.rank(..., group=True)`` returns, for a list already at hand (both entries must be in it
    to be grouped)."""
    position = {r.id: i for i, r in enumerate(results)}
    partner = partner_rows(pairs, position)
    everyone = np.ones(len(results), dtype=np.bool_)
    groups = group_rows(range(len(results)), partner, everyone, len(results) if limit is None else limit)
    return [merge_group(rank, [results[i] for i in group]) for rank, group in enumerate(groups, start=1)]
