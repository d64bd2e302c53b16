"""Disease ranking from observed and explicitly absent phenotypes, with an explanation per disease.

Built once per graph snapshot (``cache.derived("ranking", RankingIndex.from_snapshot)``) as sparse matrices
over *diseases × terms*; a query is a handful of column slices and vector operations, not a Python loop
over 12.7k diseases.

Notation: ``T(d)`` the typical set of disease ``d`` (annotations of the chosen aspects, default ``P``,
phenotypic abnormality), ``f_t`` the annotated frequency of ``t`` (``default_frequency`` when none is stated),
``E(d)`` the excluded set (HPOA ``NOT`` rows, ``0/n``, *Excluded*), ``anc(q)`` the ancestors of ``q`` including
``q``, ``IC(a) = −ln(n(a)/N)`` the information content, ``t ≤ a`` "t is ``a`` or a descendant of ``a``".

Score (a sum of log-likelihood-ratio-style terms; higher is better)::

    score(d) = Σ_{q ∈ present} [ −κ                if q ≤ x for some x ∈ E(d)   (contradicted)
                                  match(q, d)       otherwise ]
             + Σ_{q ∈ absent}  [ β · [q ≤ x for some x ∈ E(d)]                 (absent, consistent)
                                 + ln(1 − ρ · p_d(q)) ]                          (absent, conflicting)

    match(q, d) = max(0, max_{a ∈ anc(q), M_d(a) > 0} IC(a) + λ · ln(M_d(a) / F_d))
    M_d(a)      = Σ_{t ∈ T(d), t ≤ a} f_t          F_d = M_d(root) = Σ_{t ∈ T(d)} f_t
    p_d(q)      = 1 − Π_{t ∈ T(d), t ≤ q} (1 − f_t)

* ``match`` generalises Resnik's IC of the most informative common ancestor: a patient with ``d`` shows a
  phenotype under ``a`` with probability ``M_d(a)/F_d`` (the share of d's frequency-weighted phenotype mass in
  a's subtree), against a population rate ``e^{−IC(a)}``; the observed term is explained at the most
  informative level ``a`` where the disease has mass. ``a = q`` covers an exact match and a *vaguer* observed
  term (q is an ancestor of a typical term); ``a`` a proper ancestor covers an observed term *more specific*
  than a typical one, or one only related through their common ancestor. Dividing by ``F_d`` (``λ = 1``) is
  what keeps diseases with huge annotation sets from collecting matches by sheer size; frequencies make a
  match to an obligate phenotype worth more than one to a very rare phenotype.
* A present phenotype at or below an **excluded** term contradicts the disease: it scores ``−κ`` instead of its
  match (``κ = ln 100``: the disease's experts say its patients do not show it). A present term *above* an
  excluded one (vaguer) does not contradict: the patient may have it through another branch.
* An **absent** phenotype ``q`` counts *against* ``d`` when d's typical phenotypes at or below ``q`` make it
  likely (``p_d(q)``, reliability ``ρ = 0.9`` so one absent obligate phenotype costs ``ln 0.1`` at most per
  absent term, as annotations and examinations are imperfect), and *for* ``d`` (``+β``) when ``d`` excludes
  ``q`` or an ancestor of ``q``: a pertinent negative that matches the disease's own differential diagnosis.
  An absent term that is *more specific* than a typical one (the patient lacks one particular subtype) is
  not counted.

Ties are broken by disease id (deterministic). ``use_exclusions=False`` drops every excluded/absent term
(the ablation of the benchmark). Unknown ids raise :class:`kg.errors.ValidationError`; alternative and
obsolete-with-replacement ids are resolved.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from kg.errors import ValidationError
from kg.semsim import SemSimIndex

if TYPE_CHECKING:
    from kg.snapshot import GraphSnapshot

DEFAULT_ASPECTS = frozenset({"P"})
MAX_LIMIT = 1000


@dataclass(frozen=True)
class RankingParams:
    """The constants of the score (see the module docstring)."""

    aspects: frozenset[str] = DEFAULT_ASPECTS
    default_frequency: float = 0.5     # f_t for annotations with no stated frequency
    min_frequency: float = 0.01        # f_t floor (a "very rare" 1–4% annotation is 0.025)
    size_exponent: float = 1.0         # λ
    contradiction: float = math.log(100.0)  # κ
    absent_bonus: float = math.log(3.0)      # β
    absent_reliability: float = 0.9    # ρ


# ---- results ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MatchedTerm:
    """An observed phenotype explained by a typical phenotype of the disease.

    ``how``, from the observed term's side: ``exact``; ``ancestor`` (the observed term is more general than the
    typical one); ``descendant`` (more specific than the typical one); ``related`` (they share only the
    common ancestor ``mica``).
    """

    observed: str
    typical: str
    how: str
    mica: str
    ic: float            # IC of the MICA (the Resnik similarity)
    frequency: float | None
    contribution: float


@dataclass(frozen=True)
class ContradictedTerm:
    """An observed phenotype at or below a phenotype the disease excludes."""

    observed: str
    excluded: str
    how: str             # exact | descendant (the observed term is below the excluded one)
    contribution: float


@dataclass(frozen=True)
class AbsentTerm:
    """An absent phenotype that the disease excludes (consistent) or typically shows (conflicting)."""

    absent: str
    disease_term: str    # the excluded term (consistent) or the most frequent typical term at/below it
    how: str             # exact | descendant | ancestor (the absent term relative to disease_term)
    frequency: float | None
    contribution: float


@dataclass(frozen=True)
class ScoreParts:
    match: float
    contradiction: float
    absent_consistent: float
    absent_conflicting: float


@dataclass(frozen=True)
class Explanation:
    matched: list[MatchedTerm]
    contradicted: list[ContradictedTerm]
    absent_consistent: list[AbsentTerm]
    absent_conflicting: list[AbsentTerm]
    unmatched: list[str]
    parts: ScoreParts


@dataclass(frozen=True)
class RankedDisease:
    rank: int
    id: str
    name: str
    source: str
    score: float
    explanation: Explanation | None = None


@dataclass
class ResolvedTerms:
    """The outcome of resolving user-supplied ids: current ids in input order, redirects and unknowns."""

    ids: list[str] = field(default_factory=list)
    redirected: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)


@dataclass
class ScoreVectors:
    """Per-disease score parts for one query (arrays over every disease of the index)."""

    match: np.ndarray
    contradiction: np.ndarray
    absent_consistent: np.ndarray
    absent_conflicting: np.ndarray

    @property
    def total(self) -> np.ndarray:
        total: np.ndarray = self.match + self.contradiction + self.absent_consistent + self.absent_conflicting
        return total


# ---- index ---------------------------------------------------------------------------------------------
class RankingIndex:
    """Sparse disease × term matrices of one snapshot, and the ranking over them."""

    def __init__(self, sem: SemSimIndex, disease_ids: Sequence[str], names: Sequence[str], sources: Sequence[str],
                 typical: sp.csr_matrix, excluded: sp.csr_matrix, params: RankingParams | None = None,
                 stated: sp.csr_matrix | None = None) -> None:
        self.sem = sem
        self.params = params or RankingParams()
        self.disease_ids: list[str] = list(disease_ids)
        self.names: list[str] = list(names)
        self.sources: np.ndarray = np.asarray(sources, dtype=object)
        self.position: dict[str, int] = {d: i for i, d in enumerate(self.disease_ids)}
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

    # ---- construction ---------------------------------------------------------------------------
    @classmethod
    def from_snapshot(cls, snapshot: GraphSnapshot, params: RankingParams | None = None,
                      sem: SemSimIndex | None = None) -> RankingIndex:
        params = params or RankingParams()
        sem = sem or SemSimIndex.from_snapshot(snapshot)
        disease_ids = sorted(snapshot.diseases)
        position = {d: i for i, d in enumerate(disease_ids)}
        t_rows: list[int] = []
        t_cols: list[int] = []
        t_vals: list[float] = []
        s_vals: list[float] = []
        for disease, rows_of in snapshot.typical.items():
            row = position.get(disease)
            if row is None:
                continue
            best: dict[int, float] = {}
            given: dict[int, float] = {}
            for ann in rows_of:
                if ann.aspect is not None and ann.aspect not in params.aspects:
                    continue
                current = sem.resolve(ann.phenotype)
                if current is None:
                    continue
                f = params.default_frequency if ann.frequency is None else float(ann.frequency)
                f = min(1.0, max(params.min_frequency, f))
                col = sem.index[current]
                best[col] = max(best.get(col, 0.0), f)
                given[col] = max(given.get(col, -1.0), -1.0 if ann.frequency is None else float(ann.frequency))
            for col, f in best.items():
                t_rows.append(row)
                t_cols.append(col)
                t_vals.append(f)
                s_vals.append(given[col])
        e_rows: list[int] = []
        e_cols: list[int] = []
        for disease, phenotypes in snapshot.excluded.items():
            row = position.get(disease)
            if row is None:
                continue
            for col in sorted({sem.index[c] for c in (sem.resolve(p) for p in phenotypes) if c is not None}):
                e_rows.append(row)
                e_cols.append(col)
        shape = (len(disease_ids), len(sem.terms))
        typical = sp.csr_matrix((np.asarray(t_vals, dtype=np.float64), (t_rows, t_cols)), shape=shape)
        excluded = sp.csr_matrix((np.ones(len(e_rows)), (e_rows, e_cols)), shape=shape)
        stated = sp.csr_matrix((np.asarray(s_vals, dtype=np.float64), (t_rows, t_cols)), shape=shape)
        info = snapshot.diseases
        return cls(sem, disease_ids, [info[d].name for d in disease_ids], [info[d].source for d in disease_ids],
                   typical, excluded, params, stated)

    # ---- ids ------------------------------------------------------------------------------------
    def resolve_terms(self, ids: Iterable[str]) -> ResolvedTerms:
        """Current ids (deduplicated, input order), alternative/obsolete ids redirected, unknown ids listed."""
        out = ResolvedTerms()
        seen: set[str] = set()
        for raw in ids:
            current = self.sem.resolve(raw)
            if current is None:
                if raw not in out.unknown:
                    out.unknown.append(raw)
                continue
            if current != raw:
                out.redirected[raw] = current
            if current not in seen:
                seen.add(current)
                out.ids.append(current)
        return out

    def _indices(self, ids: Iterable[str], role: str) -> np.ndarray:
        resolved = self.resolve_terms(ids)
        if resolved.unknown:
            raise ValidationError(f"unknown {role} phenotype id(s): {', '.join(resolved.unknown)}")
        return self.sem.indices(resolved.ids)

    def source_mask(self, sources: Iterable[str] | None) -> np.ndarray:
        if sources is None:
            return np.ones(len(self.disease_ids), dtype=np.bool_)
        wanted = {s.upper() for s in sources}
        return np.isin(self.sources, list(wanted))

    # ---- scoring (vectorised over all diseases) --------------------------------------------------
    def _match_column(self, col: int, log_k: float) -> tuple[np.ndarray, np.ndarray]:
        """Rows with mass at or below term ``col`` and their value ``IC(col) + λ·min(0, ln(k·share))``."""
        lo, hi = self.share.indptr[col], self.share.indptr[col + 1]
        rows = self.share.indices[lo:hi]
        penalty = np.minimum(0.0, np.log(self.share.data[lo:hi]) + log_k)
        return rows, self.sem.ic[col] + self.params.size_exponent * penalty

    def match_values(self, q: int, log_k: float) -> np.ndarray:
        """``match(q, d)`` for every disease: the best level over the ancestors of ``q`` (floored at 0)."""
        out = np.zeros(len(self.disease_ids))
        for a in self.sem.ancestor_indices(q):
            rows, values = self._match_column(int(a), log_k)
            if len(rows):
                out[rows] = np.maximum(out[rows], values)
        return out

    def _excluded_at_or_above(self, q: int) -> np.ndarray:
        """Mask of diseases that exclude ``q`` or one of its ancestors."""
        out = np.zeros(len(self.disease_ids), dtype=np.bool_)
        ex = self.excluded_csc
        for a in self.sem.ancestor_indices(q):
            out[ex.indices[ex.indptr[a]:ex.indptr[a + 1]]] = True
        return out

    def score_vectors(self, present: np.ndarray, absent: np.ndarray | None = None, *,
                      use_exclusions: bool = True) -> ScoreVectors:
        """The four score parts for every disease, for term indices ``present`` and ``absent``."""
        p = self.params
        n_d = len(self.disease_ids)
        present = np.asarray(present, dtype=np.int64)
        absent = np.zeros(0, dtype=np.int64) if absent is None else np.asarray(absent, dtype=np.int64)
        match = np.zeros(n_d)
        contradiction = np.zeros(n_d)
        consistent = np.zeros(n_d)
        conflicting = np.zeros(n_d)
        check_excluded = use_exclusions and self.has_excluded
        log_k = math.log(max(1, len(present)))
        for q in present.tolist():
            value = self.match_values(q, log_k)
            if check_excluded:
                hit = self._excluded_at_or_above(q)
                if hit.any():
                    value[hit] = 0.0
                    contradiction[hit] -= p.contradiction
            match += value
        if use_exclusions:
            lm = self.log_miss
            for q in absent.tolist():
                log_miss = np.zeros(n_d)  # ln Π(1 − f_t) over typical t ≤ q (≤ 0)
                log_miss[lm.indices[lm.indptr[q]:lm.indptr[q + 1]]] = lm.data[lm.indptr[q]:lm.indptr[q + 1]]
                conflicting += np.log1p(p.absent_reliability * np.expm1(log_miss))
                if self.has_excluded:
                    consistent[self._excluded_at_or_above(q)] += p.absent_bonus
        return ScoreVectors(match, contradiction, consistent, conflicting)

    # ---- ranking --------------------------------------------------------------------------------
    def rank(self, present: Sequence[str], absent: Sequence[str] = (), sources: Iterable[str] | None = None,
             limit: int = 20, *, explain: bool = True, use_exclusions: bool = True) -> list[RankedDisease]:
        """Diseases ranked for the observed (``present``) and explicitly ``absent`` phenotype ids."""
        if limit < 1:
            raise ValidationError("limit must be at least 1")
        limit = min(limit, MAX_LIMIT)
        pres = self._indices(present, "present")
        abs_ = self._indices(absent, "absent")
        if len(pres) == 0:
            raise ValidationError("at least one present phenotype is needed")
        both = set(pres.tolist()) & set(abs_.tolist())
        if both:
            names = ", ".join(self.sem.terms[i] for i in sorted(both))
            raise ValidationError(f"phenotype(s) both present and absent: {names}")
        vectors = self.score_vectors(pres, abs_, use_exclusions=use_exclusions)
        total = vectors.total
        candidates = np.flatnonzero(self.source_mask(sources))
        order = candidates[np.lexsort((candidates, -total[candidates]))][:limit]
        out: list[RankedDisease] = []
        for r, row in enumerate(order.tolist(), start=1):
            explanation = self.explain(row, pres, abs_, vectors, use_exclusions=use_exclusions) if explain else None
            out.append(RankedDisease(r, self.disease_ids[row], self.names[row], str(self.sources[row]),
                                     round(float(total[row]), 6), explanation))
        return out

    # ---- explanation (for the few diseases shown) -------------------------------------------------
    def _row(self, matrix: sp.csr_matrix, row: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
        return matrix.indices[lo:hi], matrix.data[lo:hi]

    def explain(self, row: int, present: np.ndarray, absent: np.ndarray, vectors: ScoreVectors | None = None,
                *, use_exclusions: bool = True) -> Explanation:
        """Which observed / absent phenotypes count for or against disease ``row``, and how."""
        p = self.params
        terms, ic = self.sem.terms, self.sem.ic
        present_l = [int(x) for x in present]
        absent_l = [int(x) for x in absent]
        log_k = math.log(max(1, len(present_l)))
        t_idx, t_freq = self._row(self.typical, row)
        stated = dict(zip(*self._row(self.stated, row), strict=True))
        freq = {int(t): float(f) for t, f in zip(t_idx, t_freq, strict=True)}
        shares = dict(zip(*self._row(self.share_csr, row), strict=True))
        excluded = [int(x) for x in self._row(self.excluded, row)[0]] if use_exclusions else []
        anc_of = {q: [int(a) for a in self.sem.ancestor_indices(q)] for q in present_l + absent_l}
        # which typical terms lie at or below each ancestor of the query terms: one dense block per disease
        cols = sorted({a for ancs in anc_of.values() for a in ancs})
        pos = {a: i for i, a in enumerate(cols)}
        below_block = (self.sem.ancestors[t_idx][:, cols].toarray() if len(t_idx) and cols
                       else np.zeros((len(t_idx), len(cols)), dtype=np.bool_))

        def below(a: int) -> list[int]:
            return [int(t) for t in t_idx[below_block[:, pos[a]]]]

        def pick(candidates: list[int]) -> int:  # most frequent, then most informative, then lowest id
            return max(candidates, key=lambda i: (freq[i], ic[i], -i))

        def freq_out(t: int) -> float | None:
            value = stated.get(t)
            return None if value is None or value < 0 else round(float(value), 4)

        matched: list[MatchedTerm] = []
        contradicted: list[ContradictedTerm] = []
        unmatched: list[str] = []
        for q in present_l:
            ancs = anc_of[q]
            hits = [x for x in excluded if x in ancs]
            if hits:
                x = max(hits, key=lambda i: (ic[i], -i))
                contradicted.append(ContradictedTerm(terms[q], terms[x], "exact" if x == q else "descendant",
                                                     -p.contradiction))
                continue
            best: tuple[float, float, int] | None = None
            for a in ancs:
                share = shares.get(a)
                if share is None:
                    continue
                value = ic[a] + p.size_exponent * min(0.0, math.log(share) + log_k)
                key = (value, ic[a], -a)
                if value > 0 and (best is None or key > best):
                    best = key
            if best is None:
                unmatched.append(terms[q])
                continue
            value, _, neg_a = best
            a = -neg_a
            if a == q and q in freq:
                t, how = q, "exact"
            elif a != q and a in freq:
                t, how = a, "descendant"
            else:
                t, how = pick(below(a)), ("ancestor" if a == q else "related")
            matched.append(MatchedTerm(terms[q], terms[t], how, terms[a], round(float(ic[a]), 4), freq_out(t),
                                       round(float(value), 4)))
        consistent: list[AbsentTerm] = []
        conflicting: list[AbsentTerm] = []
        if use_exclusions:
            for q in absent_l:
                hits = [x for x in excluded if x in anc_of[q]]
                if hits:
                    x = max(hits, key=lambda i: (ic[i], -i))
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
            parts = ScoreParts(round(float(vectors.match[row]), 6), round(float(vectors.contradiction[row]), 6),
                               round(float(vectors.absent_consistent[row]), 6),
                               round(float(vectors.absent_conflicting[row]), 6))
        else:
            parts = ScoreParts(round(sum(m.contribution for m in matched), 6),
                               round(sum(c.contribution for c in contradicted), 6),
                               round(sum(c.contribution for c in consistent), 6),
                               round(sum(c.contribution for c in conflicting), 6))
        return Explanation(matched, contradicted, consistent, conflicting, unmatched, parts)
