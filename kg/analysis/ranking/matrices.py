"""The sparse disease × term matrices that both scores and the explanations read.

Rows are the diseases of an index, columns the terms of its :class:`SemSimIndex`. Built once per index; a query
reads column slices (CSC) or the rows of the few diseases it explains (CSR). Notation as in
:mod:`kg.analysis.ranking.ic`: ``f_t`` the frequency weight of typical term ``t``, ``M_d(a)`` d's frequency mass at
or below ``a``, ``F_d`` its total mass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from kg.analysis.semsim import SemSimIndex


class DiseaseTermMatrices:
    """Typical / excluded sets of the diseases and what the scores derive from them.

    ``typical`` (CSR): ``f_t`` per (disease, typical term), floored; ``excluded`` (CSR, CSC as
    ``excluded_csc``): 1 per (disease, excluded term); ``stated``: the frequencies as the sources state them
    (−1: none stated; explanations only); ``share`` (CSC, CSR as ``share_csr``): ``M_d(a) / F_d`` on every
    (disease, ancestor-of-a-typical-term) cell; ``log_miss`` (CSC): ``ln Π(1 − f_t)`` over typical ``t ≤ a``.
    """

    def __init__(self, sem: SemSimIndex, disease_ids: Sequence[str], typical: sp.csr_matrix,
                 excluded: sp.csr_matrix, stated: sp.csr_matrix | None = None) -> None:
        self.sem = sem
        self.disease_ids: list[str] = list(disease_ids)
        n_d, n_t = len(self.disease_ids), len(sem.terms)
        # typical: frequency weights f_t (explicitly stated or the default), floored
        self.typical: sp.csr_matrix = typical.tocsr().astype(np.float64)
        self.typical.sort_indices()
        self.excluded: sp.csr_matrix = excluded.tocsr().astype(np.float64)
        self.excluded.sort_indices()
        if self.typical.shape != (n_d, n_t) or self.excluded.shape != (n_d, n_t):
            raise ValueError("disease × term matrices must match the disease and term lists")
        anc = sem.ancestors.astype(np.float64)
        # M_d(a): frequency mass of d's typical set at or below a
        mass = (self.typical @ anc).tocsr()
        total = np.asarray(self.typical.sum(axis=1)).ravel()
        # share_d(a) = M_d(a) / F_d in (0, 1] on the closure cells (the log is taken per query, with k)
        self.share: sp.csc_matrix = sp.csc_matrix(mass.multiply(1.0 / np.where(total > 0, total, 1.0)[:, None]))
        self.share.sort_indices()
        self.share_csr: sp.csr_matrix = self.share.tocsr()
        self.share_csr.sort_indices()
        # the frequencies as stated in the sources (−1: none stated), for explanations only
        self.stated: sp.csr_matrix = (stated if stated is not None else self.typical).tocsr()
        self.stated.sort_indices()
        # ln Π(1 − f_t) over t ≤ a, for the absent-phenotype likelihood
        log_miss = self.typical.copy()
        log_miss.data = np.log1p(-np.minimum(log_miss.data, 0.999))
        self.log_miss: sp.csc_matrix = (log_miss @ anc).tocsc()
        self.log_miss.sort_indices()
        self.excluded_csc: sp.csc_matrix = self.excluded.tocsc()
        self.excluded_csc.sort_indices()
        self.has_excluded = self.excluded_csc.nnz > 0

    @property
    def n_diseases(self) -> int:
        return len(self.disease_ids)

    def excluded_at_or_above(self, q: int) -> np.ndarray:
        """Mask of diseases whose excluded set holds ``q`` or an ancestor of ``q`` — unless the disease's own
        typical set holds ``q`` or a descendant of it (the more specific positive annotation wins)."""
        out = np.zeros(self.n_diseases, dtype=np.bool_)
        ex = self.excluded_csc
        for a in self.sem.ancestor_indices(q):
            out[ex.indices[ex.indptr[a]:ex.indptr[a + 1]]] = True
        if out.any():
            out[self.share.indices[self.share.indptr[q]:self.share.indptr[q + 1]]] = False
        return out

    @staticmethod
    def row_entries(matrix: sp.csr_matrix, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Column indices and values of one row of a CSR matrix (views, no copy)."""
        lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
        return matrix.indices[lo:hi], matrix.data[lo:hi]

    def below_block(self, terms: np.ndarray, cols: list[int]) -> np.ndarray:
        """Boolean (terms × cols): is ``cols[j]`` an ancestor-or-self of ``terms[i]`` (plain numpy gathers)."""
        block = np.zeros((len(terms), len(cols)), dtype=np.bool_)
        if len(terms) == 0 or not cols:
            return block
        anc = self.sem.ancestors
        starts, ends = anc.indptr[terms], anc.indptr[terms + 1]
        lengths = ends - starts
        owner = np.repeat(np.arange(len(terms)), lengths)
        offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        ancestors = anc.indices[np.repeat(starts, lengths) + offsets]
        position = np.full(len(self.sem.terms), -1, dtype=np.int64)
        position[np.asarray(cols, dtype=np.int64)] = np.arange(len(cols))
        hit = position[ancestors]
        keep = hit >= 0
        block[owner[keep], hit[keep]] = True
        return block
