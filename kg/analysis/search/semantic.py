"""The semantic index: unit vectors of names and synonyms, scored against a query vector by one matrix product."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from kg.analysis.search.keys import Hit


@dataclass
class SemanticIndex:
    """Unit vectors of names and synonyms, grouped by term (term i owns rows offsets[i]:offsets[i+1])."""

    matrix: np.ndarray  # float32 [n_rows, dim], L2-normalised
    term_ids: list[str]
    offsets: np.ndarray  # int64 [n_terms + 1]
    row_field: np.ndarray  # int8 [n_rows]: 0 name, 1 synonym
    row_text: list[str]
    encoder: str = ""
    fingerprint: str = ""
    stamp: str | None = None
    missing: int = 0  # live terms without (current) vectors
    row_term: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        counts = np.diff(self.offsets)
        self.row_term = np.repeat(np.arange(len(self.term_ids), dtype=np.int32), counts)
        self.term_index = {t: i for i, t in enumerate(self.term_ids)}
        if self.matrix.dtype != np.float32:
            self.matrix = self.matrix.astype(np.float32)

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1]) if self.matrix.ndim == 2 else 0

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, Sequence[str], np.ndarray]], **kwargs: object) -> SemanticIndex:
        """Build from ``(term id, [name, *synonyms], vectors [k, dim])`` rows (vectors re-normalised)."""
        term_ids: list[str] = []
        texts: list[str] = []
        fields: list[int] = []
        blocks: list[np.ndarray] = []
        offsets = [0]
        for tid, labels, vecs in sorted(rows, key=lambda r: r[0]):
            term_ids.append(tid)
            texts.extend(labels)
            fields.extend([0] + [1] * (len(labels) - 1))
            blocks.append(np.asarray(vecs, dtype=np.float32))
            offsets.append(offsets[-1] + len(labels))
        dim = blocks[0].shape[1] if blocks else 0
        matrix = np.concatenate(blocks) if blocks else np.zeros((0, dim), np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = matrix / np.maximum(norms, 1e-12)
        return cls(matrix=matrix.astype(np.float32), term_ids=term_ids, offsets=np.asarray(offsets, np.int64),
                   row_field=np.asarray(fields, np.int8), row_text=texts, **kwargs)  # type: ignore[arg-type]

    def row_scores(self, queries: np.ndarray) -> np.ndarray:
        """Cosine of each query (``[m, dim]`` or ``[dim]``) with every row: ``[m, n_rows]``."""
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if q.shape[1] != self.dim:
            raise ValueError(f"query vectors have {q.shape[1]} dimensions, the index {self.dim}")
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        scores: np.ndarray = q @ self.matrix.T
        return scores

    def term_scores(self, row_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best row score per term (``[n_terms]``) and that row, for one query's ``[n_rows]`` scores."""
        if not len(self.term_ids):
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        best = np.maximum.reduceat(row_scores, self.offsets[:-1])
        # the best row of each term: the first row reaching the term's max
        hit = row_scores >= best[self.row_term]
        idx = np.flatnonzero(hit)
        first = np.full(len(self.term_ids), -1, dtype=np.int64)
        # rows are grouped by term; reverse assignment keeps the first occurrence
        first[self.row_term[idx[::-1]]] = idx[::-1]
        return best.astype(np.float32), first

    def search(self, query: np.ndarray, *, limit: int = 10, allowed: set[str] | None = None) -> list[Hit]:
        """Nearest terms to one query vector (best of each term's name and synonym vectors)."""
        best, arg = self.term_scores(self.row_scores(query)[0])
        if allowed is not None:
            keep = np.zeros(len(self.term_ids), dtype=bool)
            keep[[self.term_index[t] for t in allowed if t in self.term_index]] = True
            best = np.where(keep, best, -np.inf)
        k = min(limit, len(best))
        if k <= 0:
            return []
        top = np.argpartition(-best, k - 1)[:k]
        top = top[np.lexsort((top, -best[top]))]
        out = []
        for i in top.tolist():
            if not np.isfinite(best[i]):
                continue
            row = int(arg[i])
            score = float(best[i])
            out.append(Hit(self.term_ids[i], self.row_text[int(self.offsets[i])], round(max(score, 0.0), 4),
                           "name" if self.row_field[row] == 0 else "synonym", self.row_text[row], "semantic",
                           semantic=round(score, 4)))
        return out
