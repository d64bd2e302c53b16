"""Nearest evidence images at scale: unit image embeddings keyed by content hash, searched exactly while the set is
small and through an HNSW graph (hnswlib) once it holds ``ann_threshold`` images or more.

One :class:`EvidenceVectorIndex` belongs to one model (embeddings of another model mean nothing to it) and is saved
in a folder beside the model (``evidence_index/`` in its run directory). Rows are append-only: an image's row never
changes, so evidence added later is embedded and added to the HNSW graph without rebuilding it, and an image that
is no longer evidence simply stops being asked for (callers map rows to their evidence and skip the others).

Files (written to temporary names and renamed, ``index.json`` last, so a reader never sees a half-written index):

* ``vectors.npy``: ``float32 [rows, dim]`` unit embeddings, in row order;
* ``hashes.txt``: the sha256 of each row's image, one per line;
* ``hnsw.bin``: the hnswlib graph over the rows (absent below the threshold);
* ``index.json``: format, dimension, row count and the HNSW parameters.

Similarities are inner products of unit vectors (cosine), the same numbers exact search gives.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

__all__ = ["ANN_THRESHOLD", "FORMAT", "EvidenceVectorIndex"]

FORMAT: Final = "phenokg.evidence-index/1"
# Below this many images exact search (one matrix product) costs under ~2 ms a query on 2 cores, and building the
# graph would cost more than it saves; benchmarks/evidence_scale.py measures both sides.
ANN_THRESHOLD: Final = 20_000
M: Final = 16  # graph degree: hnswlib's default; recall@10 and memory measured in docs/benchmarks/evidence-scale.md
EF_CONSTRUCTION: Final = 200
EF_SEARCH: Final = 128  # candidates per query; at least 2 k

_GRAPH_MAX_K: Final = 1000  # larger k is answered by exact search (the graph's candidate lists would be as long)
_VECTORS, _HASHES, _GRAPH, _META = "vectors.npy", "hashes.txt", "hnsw.bin", "index.json"


class EvidenceVectorIndex:
    """Unit embeddings of evidence images by content hash, with exact or approximate (HNSW) inner-product search."""

    def __init__(self, dim: int, *, ann_threshold: int = ANN_THRESHOLD, ef_search: int = EF_SEARCH) -> None:
        if dim < 1:
            raise ValueError(f"dimension must be positive, got {dim}")
        self.dim = int(dim)
        self.ann_threshold = int(ann_threshold)
        self.ef_search = int(ef_search)
        self._vectors = np.zeros((0, self.dim), dtype=np.float32)
        self._count = 0
        self._hashes: list[str] = []
        self._row_of: dict[str, int] = {}
        self._ann: Any = None  # hnswlib.Index over rows [0, self._ann_rows)
        self._ann_rows = 0

    # ------------------------------------------------------------------------------------------------ contents
    def __len__(self) -> int:
        return self._count

    @property
    def hashes(self) -> Sequence[str]:
        return self._hashes

    @property
    def vectors(self) -> np.ndarray:
        """``[rows, dim]`` float32 (a read-only view)."""
        view = self._vectors[: self._count]
        view.flags.writeable = False
        return view

    @property
    def has_ann(self) -> bool:
        return self._ann is not None

    def row_of(self, sha256: str) -> int | None:
        return self._row_of.get(sha256)

    def missing(self, hashes: Iterable[str]) -> list[str]:
        """The hashes (in the order given, once each) that have no row yet."""
        seen: set[str] = set()
        out = []
        for h in hashes:
            if h not in self._row_of and h not in seen:
                seen.add(h)
                out.append(h)
        return out

    def add(self, hashes: Sequence[str], vectors: np.ndarray) -> int:
        """Append the rows whose hash is new (the first of repeated hashes wins); returns how many were added.
        Rows are expected to be unit vectors. When the HNSW graph exists they are added to it too."""
        array = np.asarray(vectors, dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != self.dim or array.shape[0] != len(hashes):
            raise ValueError(f"expected {len(hashes)} vectors of dimension {self.dim}, got {array.shape}")
        keep: list[int] = []
        fresh: set[str] = set()
        for i, h in enumerate(hashes):
            if h not in self._row_of and h not in fresh:
                fresh.add(h)
                keep.append(i)
        if not keep:
            return 0
        new = array[keep]
        self._reserve(self._count + len(keep))
        self._vectors[self._count: self._count + len(keep)] = new
        for offset, i in enumerate(keep):
            self._row_of[hashes[i]] = self._count + offset
            self._hashes.append(hashes[i])
        self._count += len(keep)
        if self._ann is not None:
            self._ann_add(self._ann_rows, self._count)
        return len(keep)

    def _reserve(self, rows: int) -> None:
        if rows <= self._vectors.shape[0] and self._vectors.flags.writeable:
            return
        capacity = max(rows, int(self._vectors.shape[0] * 1.5), 1024)
        grown = np.zeros((capacity, self.dim), dtype=np.float32)
        grown[: self._count] = self._vectors[: self._count]
        self._vectors = grown

    # ---------------------------------------------------------------------------------------------- the graph
    def build_ann(self, *, threads: int | None = None) -> None:
        """(Re)build the HNSW graph over every row (``threads``: hnswlib's, default every core)."""
        import hnswlib

        index = hnswlib.Index(space="ip", dim=self.dim)
        index.init_index(max_elements=max(self._count, 1), ef_construction=EF_CONSTRUCTION, M=M,
                         allow_replace_deleted=False)
        self._ann, self._ann_rows = index, 0
        self._ann_add(0, self._count, threads=threads)

    def _ann_add(self, start: int, stop: int, *, threads: int | None = None) -> None:
        if stop <= start:
            return
        if self._ann.get_max_elements() < stop:
            self._ann.resize_index(max(stop, int(self._ann.get_max_elements() * 1.5)))
        self._ann.add_items(self._vectors[start:stop], np.arange(start, stop), num_threads=threads or -1)
        self._ann_rows = stop

    def ensure_ann(self, *, threads: int | None = None) -> bool:
        """Build the graph when the index has reached the threshold and has none; returns whether one was built."""
        if self._ann is None and self._count >= self.ann_threshold:
            self.build_ann(threads=threads)
            return True
        return False

    # ----------------------------------------------------------------------------------------------- search
    def search(self, queries: np.ndarray, k: int, *, exact: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest rows of each unit query ``[B, dim]``: ``(rows int64 [B, k'], similarities float32
        [B, k'])``, best first, ``k' = min(k, rows)``. ``exact=None``: the graph when there is one."""
        q = np.ascontiguousarray(np.asarray(queries, dtype=np.float32).reshape(-1, self.dim))
        n = min(int(k), self._count)
        if n <= 0:
            return np.zeros((q.shape[0], 0), np.int64), np.zeros((q.shape[0], 0), np.float32)
        use_graph = self._ann is not None if exact is None else not exact
        if use_graph and self._ann is not None and n <= _GRAPH_MAX_K:
            self._ann.set_ef(max(self.ef_search, 2 * n))
            try:
                labels, distances = self._ann.knn_query(q, k=n, num_threads=1)
                return labels.astype(np.int64), (1.0 - distances).astype(np.float32)
            except RuntimeError:  # hnswlib found fewer than n (tiny or disconnected graph): search exactly
                pass
        sims = q @ self._vectors[: self._count].T
        if n < self._count:
            part = np.argpartition(-sims, n - 1, axis=1)[:, :n]
        else:
            part = np.broadcast_to(np.arange(self._count), (q.shape[0], self._count))
        order = np.take_along_axis(sims, part, axis=1).argsort(axis=1)[:, ::-1]
        rows = np.take_along_axis(part, order, axis=1).astype(np.int64)
        return rows, np.take_along_axis(sims, rows, axis=1).astype(np.float32)

    # ------------------------------------------------------------------------------------------------ files
    def save(self, folder: str | Path) -> None:
        """Write the index into ``folder`` (created if needed); ``index.json`` is replaced last."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / f".{_VECTORS}.tmp", "wb") as fh:
            np.save(fh, self._vectors[: self._count])
        (out / f".{_HASHES}.tmp").write_text("".join(f"{h}\n" for h in self._hashes), encoding="ascii")
        if self._ann is not None:
            self._ann.save_index(str(out / f".{_GRAPH}.tmp"))
        os.replace(out / f".{_VECTORS}.tmp", out / _VECTORS)
        os.replace(out / f".{_HASHES}.tmp", out / _HASHES)
        if self._ann is not None:
            os.replace(out / f".{_GRAPH}.tmp", out / _GRAPH)
        elif (out / _GRAPH).exists():
            (out / _GRAPH).unlink()
        meta = {"format": FORMAT, "dim": self.dim, "rows": self._count, "ann_rows": self._ann_rows if self._ann
                is not None else 0, "M": M, "ef_construction": EF_CONSTRUCTION, "space": "ip"}
        (out / f".{_META}.tmp").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        os.replace(out / f".{_META}.tmp", out / _META)

    @staticmethod
    def exists(folder: str | Path) -> bool:
        return (Path(folder) / _META).is_file()

    @classmethod
    def load(cls, folder: str | Path, *, dim: int | None = None, ann_threshold: int = ANN_THRESHOLD,
             ef_search: int = EF_SEARCH) -> EvidenceVectorIndex:
        """Read an index written by :meth:`save`; raises ``ValueError`` when its files disagree (or ``dim`` is given
        and differs). A graph file that does not cover every row is rebuilt on the next :meth:`ensure_ann`."""
        root = Path(folder)
        meta = json.loads((root / _META).read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{root / _META}: not a {FORMAT} file")
        if dim is not None and int(meta["dim"]) != dim:
            raise ValueError(f"{root}: embeddings of dimension {meta['dim']}, the model has {dim}")
        index = cls(int(meta["dim"]), ann_threshold=ann_threshold, ef_search=ef_search)
        vectors = np.load(root / _VECTORS, mmap_mode="r", allow_pickle=False)
        hashes = (root / _HASHES).read_text(encoding="ascii").split()
        rows = int(meta["rows"])
        if vectors.shape != (rows, index.dim) or len(hashes) != rows:
            raise ValueError(f"{root}: {rows} rows in {_META}, {vectors.shape[0]} vectors, {len(hashes)} hashes")
        index._vectors, index._count, index._hashes = vectors, rows, hashes
        index._row_of = {h: i for i, h in enumerate(hashes)}
        if int(meta.get("ann_rows") or 0) == rows and (root / _GRAPH).is_file():
            import hnswlib

            graph = hnswlib.Index(space="ip", dim=index.dim)
            graph.load_index(str(root / _GRAPH), max_elements=rows)
            index._ann, index._ann_rows = graph, rows
        return index
