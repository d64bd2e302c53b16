"""The text linker built from an in-memory snapshot, so the API builds it once per graph build.

``SnapshotCache.derived(LINKER_KEY, linker_from_snapshot)`` gives every request the same :class:`Linker`
(about a second to build for the full HPO) until the graph's build stamp changes.
"""

from __future__ import annotations

from typing import Final

from kg.analysis.snapshot import GraphSnapshot
from kg.ids import PHENOTYPIC_ABNORMALITY
from kg.text.linker import Linker, TermLabels

LINKER_KEY: Final = "linker"


def linker_from_snapshot(snapshot: GraphSnapshot, *, branch: str = PHENOTYPIC_ABNORMALITY) -> Linker:
    """A linker over the live terms under ``branch`` (the branch term included): names and synonyms.

    Same lexicon as :func:`kg.ingest.evidence.linker_from_graph`, read from the snapshot instead of the graph.
    """
    view = snapshot.view
    labels = []
    for term_id in sorted(view.names):
        if branch not in view.ancestors(term_id):
            continue
        info = snapshot.terms.get(term_id)
        if info is None:
            continue
        labels.append(TermLabels(term_id, info.name or "", info.synonyms))
    return Linker(labels)
