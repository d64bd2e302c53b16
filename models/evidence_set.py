"""The evidence a served model transfers labels from, over the model's :class:`EvidenceVectorIndex`.

Evidence items (graph ``Evidence`` nodes) and images are not one to one: one image may carry several captions, and
the model's vector index may hold images that are no longer evidence. :class:`EvidenceSet` keeps, per evidence item,
its row in the vector index, and answers "the ``k`` nearest evidence items" by searching images (exactly or through
the HNSW graph, as the index decides) and expanding each image to its items, best first.

:func:`open_vector_index` / :func:`embed_missing` / :func:`save_quietly` are the steps of bringing a model's index up
to date with the evidence it is served with: load it from beside the model, embed only the images it lacks, build
the graph once the set is large enough, and save it back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import numpy as np

from models.evidence_index import EvidenceVectorIndex

__all__ = ["INDEX_DIR", "EvidenceSet", "embed_missing", "image_key", "open_vector_index", "save_quietly"]

log = logging.getLogger(__name__)

INDEX_DIR: Final = "evidence_index"  # in the model's run directory


def image_key(sha256: str, evidence_id: str) -> str:
    """The vector-index key of an evidence image: its content hash (or the evidence id when it has none)."""
    return sha256 or f"evidence:{evidence_id}"


def open_vector_index(folder: Path, dim: int) -> EvidenceVectorIndex:
    """The index saved in ``folder``, or a new empty one (also when the saved one is unreadable or of another
    dimension: it is then rebuilt from the evidence)."""
    if EvidenceVectorIndex.exists(folder):
        try:
            return EvidenceVectorIndex.load(folder, dim=dim)
        except (OSError, ValueError, RuntimeError) as exc:
            log.warning("evidence index %s is unusable (%s); rebuilding it", folder, exc)
    return EvidenceVectorIndex(dim)


def embed_missing(vectors: EvidenceVectorIndex, keys: Sequence[str], load: Callable[[int], object | None],
                  embed: Callable[[list[object]], np.ndarray], *, batch: int = 64) -> tuple[int, set[int]]:
    """Embed the images whose key the index lacks and add them. ``load(i)``: item ``i``'s prepared image, or
    ``None`` when it cannot be read; ``embed(images)``: their unit embeddings ``[n, dim]``. Returns ``(added,
    positions of unreadable items)``."""
    missing = [i for i, key in enumerate(keys) if vectors.row_of(key) is None]
    first: dict[str, int] = {}
    for i in missing:
        first.setdefault(keys[i], i)
    unreadable: set[int] = set()
    added = 0
    todo = list(first.values())
    for start in range(0, len(todo), batch):
        chunk: list[tuple[int, object]] = []
        for i in todo[start:start + batch]:
            image = load(i)
            if image is None:
                unreadable.add(i)
            else:
                chunk.append((i, image))
        if chunk:
            added += vectors.add([keys[i] for i, _ in chunk], embed([img for _, img in chunk]))
    bad_keys = {keys[i] for i in unreadable}
    return added, {i for i in missing if keys[i] in bad_keys}


def save_quietly(vectors: EvidenceVectorIndex, folder: Path) -> bool:
    """Save the index beside the model; a read-only model folder only costs the next load the same work."""
    try:
        vectors.save(folder)
    except OSError as exc:
        log.warning("could not save the evidence index in %s (%s); it is kept in memory only", folder, exc)
        return False
    return True


class EvidenceSet:
    """Evidence items (ids, in the caller's order) and the vector-index row of each one's image."""

    def __init__(self, ids: Sequence[str], image_rows: Sequence[int] | np.ndarray, vectors: EvidenceVectorIndex
                 ) -> None:
        self.ids = list(ids)
        self.image_rows = np.asarray(image_rows, dtype=np.int64)
        if self.image_rows.shape != (len(self.ids),):
            raise ValueError(f"{len(self.ids)} evidence ids but {self.image_rows.shape[0]} image rows")
        self.vectors = vectors
        rows = len(vectors)
        self._order = np.argsort(self.image_rows, kind="stable")  # evidence positions grouped by image row
        self._starts = np.searchsorted(self.image_rows[self._order], np.arange(rows + 1))
        self._images_used = int(np.unique(self.image_rows).shape[0]) if len(self.ids) else 0

    def __len__(self) -> int:
        return len(self.ids)

    def embeddings(self, positions: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Unit embeddings ``[n, dim]`` of the items at ``positions`` (default: all)."""
        rows = self.image_rows if positions is None else self.image_rows[np.asarray(positions, dtype=np.int64)]
        return np.asarray(self.vectors.vectors[rows], dtype=np.float32)

    def nearest(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest evidence items of each unit query ``[B, dim]``: ``(positions int64 [B, k'],
        similarities float32 [B, k'])``, best first, ``k' = min(k, items)``."""
        q = np.asarray(queries, dtype=np.float32).reshape(-1, self.vectors.dim)
        n = min(int(k), len(self.ids))
        if n <= 0:
            return np.zeros((q.shape[0], 0), np.int64), np.zeros((q.shape[0], 0), np.float32)
        unused = len(self.vectors) - self._images_used  # images in the index that are no longer evidence
        fetch = min(len(self.vectors), n + min(unused, 4 * n))
        while True:
            rows, sims = self.vectors.search(q, fetch)
            positions, scores, short = self._expand(rows, sims, n)
            if not short or fetch >= len(self.vectors):
                break
            fetch = min(len(self.vectors), fetch * 4)
        return positions, scores

    def _expand(self, rows: np.ndarray, sims: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, bool]:
        positions = np.zeros((rows.shape[0], n), np.int64)
        scores = np.full((rows.shape[0], n), -np.inf, np.float32)
        short = False
        for b in range(rows.shape[0]):
            got = 0
            for row, sim in zip(rows[b].tolist(), sims[b].tolist(), strict=True):
                if row < 0 or row + 1 >= len(self._starts):
                    continue  # hnswlib pads with -1; rows added after this set was made belong to no item
                for pos in self._order[self._starts[row]:self._starts[row + 1]].tolist():
                    positions[b, got], scores[b, got] = pos, sim
                    got += 1
                    if got == n:
                        break
                if got == n:
                    break
            short = short or got < n
        return positions, scores, short
