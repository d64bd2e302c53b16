"""The IC score (``method="ic"``): Resnik-style matches tempered by a sampling likelihood, over the matrices of
:mod:`kg.analysis.ranking.matrices`.

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

``method="likelihood"`` (:mod:`kg.analysis.ranking.likelihood`) scores the same evidence as a sum of log likelihood
ratios; it is the default because it ranked real published cases better (``benchmarks/ranking_real_cases.py``,
docs/benchmarks.md).
"""

from __future__ import annotations

import math

import numpy as np

from kg.analysis.ranking.matrices import DiseaseTermMatrices
from kg.analysis.ranking.types import MIN_LEVEL_IC, RankingParams, ScoreVectors


def _match_column(m: DiseaseTermMatrices, p: RankingParams, col: int, log_k: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows with mass at or below term ``col`` and their value ``IC(col) + λ·min(0, ln(k·share))``."""
    lo, hi = m.share.indptr[col], m.share.indptr[col + 1]
    rows = m.share.indices[lo:hi]
    penalty = np.minimum(0.0, np.log(m.share.data[lo:hi]) + log_k)
    return rows, m.sem.ic[col] + p.size_exponent * penalty


def match_values(m: DiseaseTermMatrices, p: RankingParams, q: int, log_k: float) -> np.ndarray:
    """``match(q, d)`` for every disease: the best level over the ancestors of ``q`` (floored at 0)."""
    out = np.zeros(m.n_diseases)
    ic = m.sem.ic
    for a in m.sem.ancestor_indices(q):
        if ic[a] < MIN_LEVEL_IC:  # the root, "Phenotypic abnormality": their value can't exceed ~0
            continue
        rows, values = _match_column(m, p, int(a), log_k)
        if len(rows):
            out[rows] = np.maximum(out[rows], values)
    return out


def ic_vectors(m: DiseaseTermMatrices, p: RankingParams, present: np.ndarray, absent: np.ndarray, *,
               use_exclusions: bool = True) -> ScoreVectors:
    """The four score parts of every disease for term indices ``present`` and ``absent``."""
    n_d = m.n_diseases
    match = np.zeros(n_d)
    contradiction = np.zeros(n_d)
    consistent = np.zeros(n_d)
    conflicting = np.zeros(n_d)
    check_excluded = use_exclusions and m.has_excluded
    log_k = math.log(max(1, len(present)))
    for q in present.tolist():
        value = match_values(m, p, q, log_k)
        if check_excluded:
            hit = m.excluded_at_or_above(q)
            if hit.any():
                value[hit] = 0.0
                contradiction[hit] -= p.contradiction
        match += value
    if use_exclusions:
        lm = m.log_miss
        for q in absent.tolist():
            log_miss = np.zeros(n_d)  # ln Π(1 − f_t) over typical t ≤ q (≤ 0)
            log_miss[lm.indices[lm.indptr[q]:lm.indptr[q + 1]]] = lm.data[lm.indptr[q]:lm.indptr[q + 1]]
            conflicting += np.log1p(p.absent_reliability * np.expm1(log_miss))
            if m.has_excluded:
                consistent[m.excluded_at_or_above(q)] += p.absent_bonus
    return ScoreVectors(match, contradiction, consistent, conflicting)
