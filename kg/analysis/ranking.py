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

    match(q, d) = max(0, max_{a ∈ anc(q), M_d(a) > 0} IC(a) + λ · min(0, ln(k · M_d(a) / F_d)))
    M_d(a)      = Σ_{t ∈ T(d), t ≤ a} f_t          F_d = Σ_{t ∈ T(d)} f_t          k = |present|
    p_d(q)      = 1 − Π_{t ∈ T(d), t ≤ q} (1 − f_t)

    λ = 0.5, κ = ln 100, β = ln 5, ρ = 0.9, f_t = 0.5 when no frequency is stated

* ``match`` generalises Resnik's IC of the most informative common ancestor (MICA). The observed term is
  explained at the most informative level ``a`` of its ancestors where the disease has typical phenotypes:
  ``a = q`` is an exact match or a *vaguer* observed term (q is an ancestor of a typical term); a proper
  ancestor ``a`` is an observed term *more specific* than a typical one, or one related only through their
  common ancestor. ``IC(a)`` is the log of how rare ``a`` is among diseases (the population rate); the second
  part is the log of how likely a ``k``-term report of a patient with ``d`` is to contain a phenotype under
  ``a``: ``M_d(a)/F_d`` is the share of d's frequency-weighted phenotype mass in a's subtree, times ``k``
  draws, capped at 1. This is what keeps diseases with huge annotation sets from collecting matches by sheer
  size (Resnik alone favours them), and makes a match to an obligate phenotype worth more than one to a very
  rare phenotype. ``λ`` tempers that likelihood: ``λ = 0`` is the plain one-sided Resnik score (Phenomizer's
  sim(Q→D)), ``λ = 1`` the full sampling model, which over-penalises common phenotypes of large diseases;
  ``λ = ½`` (a geometric mean of the two) ranked best on simulated patients (0.3–0.5 within noise; see
  ``benchmarks/ranking_bench.py``). The floor at 0 makes an unexplained term neutral (the root explains any
  term at the population rate); levels with ``IC < 0.01`` (the root, *Phenotypic abnormality*) are skipped.
* A present phenotype at or below an **excluded** term contradicts the disease: it scores ``−κ`` instead of its
  match (``κ = ln 100``: the disease's experts say its patients do not show it). A present term *above* an
  excluded one (vaguer) does not contradict: the patient may have it through another branch. When the
  disease's own typical set holds the observed term or a descendant of it (HPOA has a few diseases that exclude
  a broad term, e.g. *Abnormality of the skin* at 0/n, and list a skin phenotype below it), the specific
  positive annotation wins and nothing is contradicted; the same holds for absent phenotypes.
* An **absent** phenotype ``q`` counts *against* ``d`` when d's typical phenotypes at or below ``q`` make it
  likely (``p_d(q)``, reliability ``ρ = 0.9`` so one absent obligate phenotype costs ``ln 0.1`` at most per
  absent term, as annotations and examinations are imperfect), and *for* ``d`` (``+β``) when ``d`` excludes
  ``q`` or an ancestor of ``q``: a pertinent negative that matches the disease's own differential diagnosis
  (clinicians record absences that discriminate, so such an absence is about five times likelier under a
  disease that lists it as excluded than under one that is silent about it).
  An absent term that is *more specific* than a typical one (the patient lacks one particular subtype) is
  not counted.

This is ``method="ic"``. ``method="likelihood"`` (:mod:`kg.analysis.ranking_lr`) scores the same evidence as a sum of
log likelihood ratios, with an explanation that gives each term's ratio; it is the default
(:data:`DEFAULT_METHOD`) because it ranked real published cases better (``benchmarks/ranking_real_cases.py``,
docs/benchmarks.md).

**Annotations pooled from an Orphanet twin** (``RankingParams.pool_equivalents``, on by default): an OMIM
entry's typical and excluded sets also hold those of the Orphanet entry of the same disease
(:mod:`kg.analysis.equivalence`: same name, or a shared gene and a similar name, one-to-one only). The two are
curated separately and OMIM's are often sparse and without frequencies; pooling raised real-case top-3 by two
points in both halves of the dev diseases (docs/benchmarks.md). Results carry ``pooled_with``.

Ties are broken by disease id (deterministic). ``use_exclusions=False`` drops every excluded/absent term
(the ablation of the benchmark). Unknown ids raise :class:`kg.errors.ValidationError`; alternative and
obsolete-with-replacement ids are resolved.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp

from kg.analysis.equivalence import equivalent_diseases, pool_annotations
from kg.analysis.ranking_lr import LikelihoodParams, TermRatios, term_ratios
from kg.analysis.semsim import SemSimIndex
from kg.errors import ValidationError

if TYPE_CHECKING:
    from kg.analysis.snapshot import GraphSnapshot

DEFAULT_ASPECTS = frozenset({"P"})
RankMethod = Literal["likelihood", "ic"]
METHODS: tuple[RankMethod, ...] = ("likelihood", "ic")
DEFAULT_METHOD: RankMethod = "likelihood"
MatchHow = Literal["exact", "ancestor", "descendant", "related"]
ContradictionHow = Literal["exact", "descendant"]
AbsentHow = Literal["exact", "descendant", "ancestor"]
MAX_LIMIT = 1000
# Levels less informative than this (the root and "Phenotypic abnormality", IC ≈ 0) explain nothing: their
# match value is at most their IC, so they are skipped (a match must be worth at least this much).
MIN_LEVEL_IC = 0.01


@dataclass(frozen=True)
class RankingParams:
    """The constants of the score (see the module docstring)."""

    aspects: frozenset[str] = DEFAULT_ASPECTS
    default_frequency: float = 0.5     # f_t for annotations with no stated frequency
    min_frequency: float = 0.01        # f_t floor (a "very rare" 1–4% annotation is 0.025)
    size_exponent: float = 0.5         # λ
    contradiction: float = math.log(100.0)  # κ
    absent_bonus: float = math.log(5.0)      # β
    absent_reliability: float = 0.9    # ρ
    pool_equivalents: bool = True      # an OMIM entry also gets its Orphanet twin's annotations (equivalence.py)


# ---- results ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MatchedTerm:
    """An observed phenotype explained by a typical phenotype of the disease.

    ``how``, from the observed term's side: ``exact``; ``ancestor`` (the observed term is more general than the
    typical one); ``descendant`` (more specific than the typical one); ``related`` (they share only the
    common ancestor ``mica``). ``mica`` / ``ic`` describe the pair; ``contribution`` is the score's match value
    for the observed term (taken at the most telling level of its ancestors, see the module docstring).
    """

    observed: str
    typical: str
    how: MatchHow
    mica: str
    ic: float            # IC of the MICA (the Resnik similarity)
    frequency: float | None
    contribution: float
    likelihood_ratio: float | None = None  # method "likelihood": e^contribution


@dataclass(frozen=True)
class ContradictedTerm:
    """An observed phenotype at or below a phenotype the disease excludes."""

    observed: str
    excluded: str
    how: ContradictionHow  # the observed term is the excluded one, or below it
    contribution: float
    likelihood_ratio: float | None = None  # method "likelihood": e^contribution


@dataclass(frozen=True)
class AbsentTerm:
    """An absent phenotype that the disease excludes (consistent) or typically shows (conflicting)."""

    absent: str
    disease_term: str    # the excluded term (consistent) or the most frequent typical term at/below it
    how: AbsentHow       # the absent term relative to disease_term
    frequency: float | None
    contribution: float
    likelihood_ratio: float | None = None  # method "likelihood": e^contribution


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
    pooled_with: str | None = None  # the Orphanet entry whose annotations this OMIM entry was also scored on


@dataclass
class ResolvedTerms:
    """The outcome of resolving user-supplied ids: current ids in input order, redirects and unknowns."""

    ids: list[str] = field(default_factory=list)
    redirected: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)


@dataclass
class RankedQuery:
    """A user query ranked: the resolved present / absent ids, redirects, unknown ids and the ranking."""

    present: ResolvedTerms
    absent: ResolvedTerms
    results: list[RankedDisease]

    @property
    def unknown(self) -> list[str]:
        """Unknown ids of both lists (present first, each once)."""
        return self.present.unknown + [u for u in self.absent.unknown if u not in self.present.unknown]

    @property
    def redirected(self) -> dict[str, str]:
        return {**self.present.redirected, **self.absent.redirected}


@dataclass
class ScoreVectors:
    """Per-disease score parts for one query (arrays over every disease of the index)."""

    match: np.ndarray
    contradiction: np.ndarray
    absent_consistent: np.ndarray
    absent_conflicting: np.ndarray
    ratios: TermRatios | None = None  # method "likelihood": each term's log ratio per disease

    @property
    def total(self) -> np.ndarray:
        total: np.ndarray = self.match + self.contradiction + self.absent_consistent + self.absent_conflicting
        return total

    def parts(self, row: int) -> ScoreParts:
        """The score parts of one disease, rounded as explanations show them."""
        return ScoreParts(round(float(self.match[row]), 6), round(float(self.contradiction[row]), 6),
                          round(float(self.absent_consistent[row]), 6), round(float(self.absent_conflicting[row]), 6))


@dataclass
class _DiseaseRow:
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


# ---- index ---------------------------------------------------------------------------------------------
class RankingIndex:
    """Sparse disease × term matrices of one snapshot, and the ranking over them."""

    def __init__(self, sem: SemSimIndex, disease_ids: Sequence[str], names: Sequence[str], sources: Sequence[str],
                 typical: sp.csr_matrix, excluded: sp.csr_matrix, params: RankingParams | None = None,
                 stated: sp.csr_matrix | None = None, likelihood: LikelihoodParams | None = None,
                 pooled_from: dict[str, str] | None = None) -> None:
        self.sem = sem
        self.pooled_from: dict[str, str] = dict(pooled_from or {})  # OMIM id → Orphanet twin pooled into it
        self.params = params or RankingParams()
        self.likelihood = likelihood or LikelihoodParams()
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
        info = snapshot.diseases
        pairs = equivalent_diseases({d: i.name for d, i in info.items()},
                                    {d: i.genes for d, i in info.items() if i.genes}) if params.pool_equivalents else {}
        typical_of, excluded_of = pool_annotations(snapshot.typical, snapshot.excluded, pairs)
        t_rows: list[int] = []
        t_cols: list[int] = []
        t_vals: list[float] = []
        s_vals: list[float] = []
        for disease, rows_of in typical_of.items():
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
        for disease, phenotypes in excluded_of.items():
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
        return cls(sem, disease_ids, [info[d].name for d in disease_ids], [info[d].source for d in disease_ids],
                   typical, excluded, params, stated, pooled_from=pairs)

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
        ic = self.sem.ic
        for a in self.sem.ancestor_indices(q):
            if ic[a] < MIN_LEVEL_IC:  # the root, "Phenotypic abnormality": their value can't exceed ~0
                continue
            rows, values = self._match_column(int(a), log_k)
            if len(rows):
                out[rows] = np.maximum(out[rows], values)
        return out

    def excluded_at_or_above(self, q: int) -> np.ndarray:
        """Mask of diseases whose excluded set holds ``q`` or an ancestor of ``q`` — unless the disease's own
        typical set holds ``q`` or a descendant of it (the more specific positive annotation wins)."""
        out = np.zeros(len(self.disease_ids), dtype=np.bool_)
        ex = self.excluded_csc
        for a in self.sem.ancestor_indices(q):
            out[ex.indices[ex.indptr[a]:ex.indptr[a + 1]]] = True
        if out.any():
            out[self.share.indices[self.share.indptr[q]:self.share.indptr[q + 1]]] = False
        return out

    def score_vectors(self, present: np.ndarray, absent: np.ndarray | None = None, *,
                      use_exclusions: bool = True, method: RankMethod = DEFAULT_METHOD) -> ScoreVectors:
        """The four score parts for every disease, for term indices ``present`` and ``absent``."""
        p = self.params
        n_d = len(self.disease_ids)
        present = np.asarray(present, dtype=np.int64)
        absent = np.zeros(0, dtype=np.int64) if absent is None else np.asarray(absent, dtype=np.int64)
        if method == "likelihood":
            return self._likelihood_vectors(present, absent, use_exclusions)
        if method != "ic":
            raise ValidationError(f"unknown ranking method {method!r} (known: {', '.join(METHODS)})")
        match = np.zeros(n_d)
        contradiction = np.zeros(n_d)
        consistent = np.zeros(n_d)
        conflicting = np.zeros(n_d)
        check_excluded = use_exclusions and self.has_excluded
        log_k = math.log(max(1, len(present)))
        for q in present.tolist():
            value = self.match_values(q, log_k)
            if check_excluded:
                hit = self.excluded_at_or_above(q)
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
                    consistent[self.excluded_at_or_above(q)] += p.absent_bonus
        return ScoreVectors(match, contradiction, consistent, conflicting)

    def _likelihood_vectors(self, present: np.ndarray, absent: np.ndarray, use_exclusions: bool) -> ScoreVectors:
        r = term_ratios(self, present, absent, self.likelihood, use_exclusions=use_exclusions)
        contradicted = np.where(r.contradicted, r.present, 0.0)
        absent_for = r.absent_for
        return ScoreVectors(r.present.sum(axis=0) - contradicted.sum(axis=0), contradicted.sum(axis=0),
                            np.where(absent_for, r.absent, 0.0).sum(axis=0),
                            np.where(absent_for, 0.0, r.absent).sum(axis=0), r)

    # ---- ranking --------------------------------------------------------------------------------
    def rank_query(self, present: Iterable[str], absent: Iterable[str] = (), sources: Iterable[str] | None = None,
                   limit: int = 20, *, explain: bool = True, method: RankMethod = DEFAULT_METHOD) -> RankedQuery:
        """:meth:`rank` for user-supplied ids: resolved first (redirects followed, unknown ids set aside);
        raises :class:`ValidationError` when no present id is known."""
        pres, abs_ = self.resolve_terms(present), self.resolve_terms(absent)
        if not pres.ids:
            unknown = RankedQuery(pres, abs_, []).unknown
            raise ValidationError("no known present phenotype id" + (f" (unknown: {', '.join(unknown)})"
                                                                      if unknown else ""))
        return RankedQuery(pres, abs_, self.rank(pres.ids, abs_.ids, sources=sources, limit=limit, explain=explain,
                                                 method=method))

    def rank(self, present: Sequence[str], absent: Sequence[str] = (), sources: Iterable[str] | None = None,
             limit: int = 20, *, explain: bool = True, use_exclusions: bool = True,
             method: RankMethod = DEFAULT_METHOD) -> list[RankedDisease]:
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
        vectors = self.score_vectors(pres, abs_, use_exclusions=use_exclusions, method=method)
        total = vectors.total
        candidates = np.flatnonzero(self.source_mask(sources))
        order = candidates[np.lexsort((candidates, -total[candidates]))][:limit]
        rows = order.tolist()
        explanations: list[Explanation | None]
        if not explain:
            explanations = [None] * len(rows)
        elif vectors.ratios is not None:
            explanations = [self.explain_likelihood(row, pres, abs_, vectors) for row in rows]
        else:
            explanations = list(self.explain_rows(rows, pres, abs_, vectors, use_exclusions=use_exclusions))
        return [RankedDisease(r, self.disease_ids[row], self.names[row], str(self.sources[row]),
                              round(float(total[row]), 6), explanation, self.pooled_from.get(self.disease_ids[row]))
                for r, (row, explanation) in enumerate(zip(rows, explanations, strict=True), start=1)]

    # ---- explanation (for the few diseases shown) -------------------------------------------------
    def _disease_row(self, row: int, cols: list[int], *, use_exclusions: bool = True) -> _DiseaseRow:
        t_idx, t_freq = self._row(self.typical, row)
        return _DiseaseRow(
            t_idx=t_idx, t_freq=t_freq, freq={int(t): float(f) for t, f in zip(t_idx, t_freq, strict=True)},
            stated={int(t): float(f) for t, f in zip(*self._row(self.stated, row), strict=True)},
            excluded=[int(x) for x in self._row(self.excluded, row)[0]] if use_exclusions else [],
            below_block=self._below_block(t_idx, cols), pos={a: j for j, a in enumerate(cols)}, ic=self.sem.ic)

    def _row(self, matrix: sp.csr_matrix, row: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
        return matrix.indices[lo:hi], matrix.data[lo:hi]

    def _below_block(self, terms: np.ndarray, cols: list[int]) -> np.ndarray:
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

    def explain(self, row: int, present: np.ndarray, absent: np.ndarray, vectors: ScoreVectors | None = None,
                *, use_exclusions: bool = True) -> Explanation:
        """Which observed / absent phenotypes count for or against disease ``row``, and how."""
        return self.explain_rows([row], present, absent, vectors, use_exclusions=use_exclusions)[0]

    def explain_rows(self, rows: Sequence[int], present: np.ndarray, absent: np.ndarray,
                     vectors: ScoreVectors | None = None, *, use_exclusions: bool = True) -> list[Explanation]:
        """Explanations for several diseases at once (the query-dependent parts are computed once)."""
        p = self.params
        ic, depth = self.sem.ic, self.sem.depth
        present_l = [int(x) for x in present]
        absent_l = [int(x) for x in absent]
        log_k = math.log(max(1, len(present_l)))
        anc_of = {q: [int(a) for a in self.sem.ancestor_indices(q)] for q in present_l + absent_l}
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
        shares = (self.share_csr[row_arr][:, cols_arr].toarray() if len(row_arr) and len(cols_arr)
                  else np.zeros((len(row_arr), len(cols_arr))))
        with np.errstate(divide="ignore"):
            values = np.where((shares > 0) & (ic[cols_arr] >= MIN_LEVEL_IC),
                              ic[cols_arr] + p.size_exponent * np.minimum(0.0, np.log(shares) + log_k), -np.inf)
        return [self._explain_one(i, int(row), present_l, absent_l, anc_of, cols, pos, col_rank, q_cols,
                                  shares[i], values[i], vectors, use_exclusions)
                for i, row in enumerate(row_arr.tolist())]

    def explain_likelihood(self, row: int, present: np.ndarray, absent: np.ndarray,
                           vectors: ScoreVectors) -> Explanation:
        """Each term's likelihood ratio for disease ``row`` (method "likelihood"), with the phenotype of the
        disease that explains, contradicts or is absent with it."""
        r = vectors.ratios
        assert r is not None
        terms, ic = self.sem.terms, self.sem.ic
        cols = sorted({int(a) for q in [*present, *absent] for a in self.sem.ancestor_indices(int(q))})
        d = self._disease_row(row, cols)
        below, pick, freq_out, freq = d.below, d.pick, d.freq_out, d.freq

        def excluded_above(q: int) -> int:
            return d.most_informative(set(self.sem.ancestor_indices(q).tolist()))

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

    def _explain_one(self, i: int, row: int, present_l: list[int], absent_l: list[int],
                     anc_of: dict[int, list[int]], cols: list[int], pos: dict[int, int], col_rank: np.ndarray,
                     q_cols: dict[int, np.ndarray], shares: np.ndarray, values: np.ndarray,
                     vectors: ScoreVectors | None, use_exclusions: bool) -> Explanation:
        p = self.params
        terms, ic, depth = self.sem.terms, self.sem.ic, self.sem.depth
        cols_arr = np.asarray(cols, dtype=np.int64)
        d = self._disease_row(row, cols, use_exclusions=use_exclusions)
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
            t, m = int(t_idx[best_i]), int(mica_all[best_i])
            how: MatchHow
            if t == q:
                how = "exact"
            elif m == q:
                how = "ancestor"      # q is an ancestor of t: the observed term is vaguer
            elif m == t:
                how = "descendant"    # q is below t: the observed term is more specific
            else:
                how = "related"
            matched.append(MatchedTerm(terms[q], terms[t], how, terms[m], round(float(ic[m]), 4), freq_out(t),
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
            parts = ScoreParts(round(sum(m.contribution for m in matched), 6),
                               round(sum(c.contribution for c in contradicted), 6),
                               round(sum(c.contribution for c in consistent), 6),
                               round(sum(c.contribution for c in conflicting), 6))
        return Explanation(matched, contradicted, consistent, conflicting, unmatched, parts)
