"""Explanations: which observed and absent phenotypes count for or against a disease, and through which of its
phenotypes. Computed for the few diseases shown, after the vectorised score; the parts add up to the score.

``explain_ic_rows`` re-derives the IC score's choices (:mod:`kg.analysis.ranking.ic`) for a few rows;
``explain_likelihood`` reads the per-term ratios the likelihood score kept (:mod:`kg.analysis.ranking.likelihood`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from kg.analysis.ranking.matrices import DiseaseTermMatrices
from kg.analysis.ranking.types import (
    MIN_LEVEL_IC,
    AbsentTerm,
    ContradictedTerm,
    Explanation,
    MatchedTerm,
    MatchHow,
    RankingParams,
    ScoreParts,
    ScoreVectors,
)


@dataclass
class DiseaseRow:
    """One disease's typical and excluded terms, seen from the ancestors ``cols`` of a query (explanations)."""

    t_idx: np.ndarray            # typical term indices
    t_freq: np.ndarray           # their frequencies f_t
    freq: dict[int, float]
    stated: dict[int, float]     # frequencies as the sources state them (−1: none stated)
    excluded: list[int]
    below_block: np.ndarray      # typical terms × cols: does the term lie at or below the column's term
    pos: dict[int, int]          # term index → its column
    ic: np.ndarray

    def below(self, a: int) -> list[int]:
        """The disease's typical terms at or below ``a``."""
        return [int(t) for t in self.t_idx[self.below_block[:, self.pos[a]]]]

    def pick(self, candidates: list[int]) -> int:
        """Most frequent, then most informative, then lowest index."""
        return max(candidates, key=lambda i: (self.freq[i], self.ic[i], -i))

    def most_informative(self, among: Iterable[int]) -> int:
        """The most informative excluded term among ``among`` (then the lowest index)."""
        return max((x for x in self.excluded if x in among), key=lambda i: (self.ic[i], -i))

    def freq_out(self, t: int) -> float | None:
        value = self.stated.get(t)
        return None if value is None or value < 0 else round(float(value), 4)


def disease_row(m: DiseaseTermMatrices, row: int, cols: list[int], *, use_exclusions: bool = True) -> DiseaseRow:
    """Disease ``row``'s typical and excluded terms, seen from the query-ancestor columns ``cols``."""
    t_idx, t_freq = m.row_entries(m.typical, row)
    return DiseaseRow(
        t_idx=t_idx, t_freq=t_freq, freq={int(t): float(f) for t, f in zip(t_idx, t_freq, strict=True)},
        stated={int(t): float(f) for t, f in zip(*m.row_entries(m.stated, row), strict=True)},
        excluded=[int(x) for x in m.row_entries(m.excluded, row)[0]] if use_exclusions else [],
        below_block=m.below_block(t_idx, cols), pos={a: j for j, a in enumerate(cols)}, ic=m.sem.ic)


def explain_ic_rows(m: DiseaseTermMatrices, p: RankingParams, rows: Sequence[int], present: np.ndarray,
                    absent: np.ndarray, vectors: ScoreVectors | None = None, *,
                    use_exclusions: bool = True) -> list[Explanation]:
    """IC-score explanations for several diseases at once (the query-dependent parts are computed once)."""
    ic, depth = m.sem.ic, m.sem.depth
    present_l = [int(x) for x in present]
    absent_l = [int(x) for x in absent]
    log_k = math.log(max(1, len(present_l)))
    anc_of = {q: [int(a) for a in m.sem.ancestor_indices(q)] for q in present_l + absent_l}
    cols = sorted({a for ancs in anc_of.values() for a in ancs})
    cols_arr = np.asarray(cols, dtype=np.int64)
    pos = {a: i for i, a in enumerate(cols)}
    # columns ranked by (IC, depth, −index): the MICA order
    col_rank = np.empty(len(cols), dtype=np.int64)
    col_rank[np.lexsort((-cols_arr, depth[cols_arr], ic[cols_arr]))] = np.arange(len(cols))
    # each q's ancestor columns, most preferred level first (argmax then keeps the first of equal values)
    q_cols = {q: np.array(sorted((pos[a] for a in ancs), key=lambda j: -col_rank[j]), dtype=np.int64)
              for q, ancs in anc_of.items()}
    # match value of every (disease, query-ancestor column): −inf where the disease has no mass there
    row_arr = np.asarray(rows, dtype=np.int64)
    shares = (m.share_csr[row_arr][:, cols_arr].toarray() if len(row_arr) and len(cols_arr)
              else np.zeros((len(row_arr), len(cols_arr))))
    with np.errstate(divide="ignore"):
        values = np.where((shares > 0) & (ic[cols_arr] >= MIN_LEVEL_IC),
                          ic[cols_arr] + p.size_exponent * np.minimum(0.0, np.log(shares) + log_k), -np.inf)
    return [_explain_one(m, p, int(row), present_l, absent_l, anc_of, cols, pos, col_rank, q_cols, shares[i],
                         values[i], vectors, use_exclusions)
            for i, row in enumerate(row_arr.tolist())]


def explain_likelihood(m: DiseaseTermMatrices, row: int, present: np.ndarray, absent: np.ndarray,
                       vectors: ScoreVectors) -> Explanation:
    """Each term's likelihood ratio for disease ``row`` (method "likelihood"), with the phenotype of the
    disease that explains, contradicts or is absent with it."""
    return explain_likelihood_rows(m, [row], present, absent, vectors)[0]


def explain_likelihood_rows(m: DiseaseTermMatrices, rows: Sequence[int], present: np.ndarray, absent: np.ndarray,
                            vectors: ScoreVectors) -> list[Explanation]:
    """:func:`explain_likelihood` for several diseases (the query's ancestor columns are gathered once)."""
    cols = sorted({int(a) for q in [*present, *absent] for a in m.sem.ancestor_indices(int(q))})
    return [_explain_likelihood_one(m, int(row), cols, present, absent, vectors) for row in rows]


def _explain_likelihood_one(m: DiseaseTermMatrices, row: int, cols: list[int], present: np.ndarray,
                            absent: np.ndarray, vectors: ScoreVectors) -> Explanation:
    r = vectors.ratios
    assert r is not None
    terms, ic = m.sem.terms, m.sem.ic
    d = disease_row(m, row, cols)
    below, pick, freq_out, freq = d.below, d.pick, d.freq_out, d.freq

    def excluded_above(q: int) -> int:
        return d.most_informative(set(m.sem.ancestor_indices(q).tolist()))

    def lr(value: float) -> tuple[float, float]:
        return round(value, 4), round(math.exp(value), 4)

    matched: list[MatchedTerm] = []
    contradicted: list[ContradictedTerm] = []
    unmatched: list[str] = []
    for j, q in enumerate(int(x) for x in present):
        contribution, ratio = lr(float(r.present[j, row]))
        if r.contradicted[j, row]:
            x = excluded_above(q)
            contradicted.append(ContradictedTerm(terms[q], terms[x], "exact" if x == q else "descendant",
                                                 contribution, ratio))
            continue
        a = int(r.present_level[j, row])
        if a < 0:
            unmatched.append(terms[q])
            continue
        how: MatchHow
        if a == q:
            t = q if q in freq else pick(below(q))
            how, mica = ("exact" if t == q else "ancestor"), q
        elif a in freq:
            t, how, mica = a, "descendant", a
        else:
            t, how, mica = pick(below(a)), "related", a
        matched.append(MatchedTerm(terms[q], terms[t], how, terms[mica], round(float(ic[mica]), 4),
                                   freq_out(t), contribution, ratio))
    consistent: list[AbsentTerm] = []
    conflicting: list[AbsentTerm] = []
    absent_for = r.absent_for[:, row]
    for j, q in enumerate(int(x) for x in absent):
        contribution, ratio = lr(float(r.absent[j, row]))
        item: AbsentTerm | None = None
        if r.absent_excluded[j, row]:
            x = excluded_above(q)
            item = AbsentTerm(terms[q], terms[x], "exact" if x == q else "descendant", None, contribution, ratio)
        elif r.absent_typical[j, row]:
            t = pick(below(q))
            item = AbsentTerm(terms[q], terms[t], "exact" if t == q else "ancestor", freq_out(t), contribution,
                              ratio)
        if item is not None:
            (consistent if absent_for[j] else conflicting).append(item)
    return Explanation(matched, contradicted, consistent, conflicting, unmatched, vectors.parts(row))


def _explain_one(m: DiseaseTermMatrices, p: RankingParams, row: int, present_l: list[int], absent_l: list[int],
                 anc_of: dict[int, list[int]], cols: list[int], pos: dict[int, int], col_rank: np.ndarray,
                 q_cols: dict[int, np.ndarray], shares: np.ndarray, values: np.ndarray,
                 vectors: ScoreVectors | None, use_exclusions: bool) -> Explanation:
    terms, ic, depth = m.sem.terms, m.sem.ic, m.sem.depth
    cols_arr = np.asarray(cols, dtype=np.int64)
    d = disease_row(m, row, cols, use_exclusions=use_exclusions)
    t_idx, t_freq, below_block, excluded = d.t_idx, d.t_freq, d.below_block, d.excluded
    below, pick, freq_out, freq = d.below, d.pick, d.freq_out, d.freq

    def has_mass(q: int) -> bool:
        return bool(shares[pos[q]] > 0)

    matched: list[MatchedTerm] = []
    contradicted: list[ContradictedTerm] = []
    unmatched: list[str] = []
    for q in present_l:
        ancs = anc_of[q]
        hits = [x for x in excluded if x in ancs] if not has_mass(q) else []
        if hits:
            x = d.most_informative(hits)
            contradicted.append(ContradictedTerm(terms[q], terms[x], "exact" if x == q else "descendant",
                                                 -p.contradiction))
            continue
        # the best level: highest value, then most informative, then deepest, then lowest index
        qc = q_cols[q]
        j = int(np.argmax(values[qc]))
        value = float(values[qc[j]])
        if not value > 0:
            unmatched.append(terms[q])
            continue
        a = int(cols_arr[qc[j]])
        # the typical term that realises it: among d's typical terms at or below that level, the one most
        # similar to q (Resnik, then the deeper MICA), then the most frequent. A typical term's MICA with q
        # is the best-ranked query-ancestor column it lies below.
        q_pos = np.asarray([pos[x] for x in ancs], dtype=np.int64)
        masked = np.where(below_block[:, q_pos], col_rank[q_pos][None, :], -1)
        mica_all = cols_arr[q_pos[masked.argmax(axis=1)]]
        rows_below = np.flatnonzero(below_block[:, pos[a]])
        mica_u = mica_all[rows_below]
        # lexsort: the last key is primary; the last element is the best
        order = np.lexsort((-t_idx[rows_below], t_freq[rows_below], depth[mica_u], ic[mica_u]))
        best_i = int(rows_below[order[-1]])
        t, mica = int(t_idx[best_i]), int(mica_all[best_i])
        how: MatchHow
        if t == q:
            how = "exact"
        elif mica == q:
            how = "ancestor"      # q is an ancestor of t: the observed term is vaguer
        elif mica == t:
            how = "descendant"    # q is below t: the observed term is more specific
        else:
            how = "related"
        matched.append(MatchedTerm(terms[q], terms[t], how, terms[mica], round(float(ic[mica]), 4), freq_out(t),
                                   round(value, 4)))
    consistent: list[AbsentTerm] = []
    conflicting: list[AbsentTerm] = []
    if use_exclusions:
        for q in absent_l:
            hits = [x for x in excluded if x in anc_of[q]] if not has_mass(q) else []
            if hits:
                x = d.most_informative(hits)
                consistent.append(AbsentTerm(terms[q], terms[x], "exact" if x == q else "descendant", None,
                                             round(p.absent_bonus, 4)))
            under = below(q)
            if under:
                log_miss = sum(math.log1p(-min(freq[t], 0.999)) for t in under)
                contribution = math.log1p(p.absent_reliability * math.expm1(log_miss))
                t = pick(under)
                conflicting.append(AbsentTerm(terms[q], terms[t], "exact" if t == q else "ancestor",
                                              freq_out(t), round(contribution, 4)))
    if vectors is not None:
        parts = vectors.parts(row)
    else:
        parts = ScoreParts(round(sum(x.contribution for x in matched), 6),
                           round(sum(c.contribution for c in contradicted), 6),
                           round(sum(c.contribution for c in consistent), 6),
                           round(sum(c.contribution for c in conflicting), 6))
    return Explanation(matched, contradicted, consistent, conflicting, unmatched, parts)
