"""The likelihood-ratio disease score (``method="likelihood"``, the default), LIRICAL-style, over the matrices of
:mod:`kg.analysis.ranking.matrices`.

Each phenotype of a case contributes the log of a likelihood ratio, ``ln LR = ln P(finding | d) − ln
P(finding | background)``, the background being the average over every disease of the index (a uniform prior),
so a ratio above 1 is evidence for ``d`` and below 1 against it. The score of ``d`` is the sum of its terms'
log ratios (the log posterior odds up to a constant). With the notation of :mod:`kg.analysis.ranking.ic`:

**Observed** phenotype ``q`` (``k`` observed terms in the case)::

    v_d(a)   = min(1, k · M_d(a) / F_d) ** λ          how likely a k-term report of d holds a finding under a
    LR(q, d) = max(φ, max_{a ∈ anc(q), IC(a) ≥ 0.01}  δ^[a ≠ q] · v_d(a) / mean_d' v_d'(a))

The observed term is explained at its most telling level ``a``: ``a = q`` when d has ``q`` or something below
it (an exact or a vaguer observed term), a proper ancestor when the observed term is more specific than d's
(or only related to it through ``a``), discounted by ``δ``. A term no level explains gets ``φ``. An observed
term at or below a phenotype ``d`` excludes gets ``LR = contradiction_ratio`` instead (unless d's typical set
holds the term or one below it: the specific positive annotation wins).

**Absent** phenotype ``q``: clinicians record the absence of findings they looked for, and they look for the
findings of the diseases they suspect. So an absence is *ascertained* ``γ`` times more often when ``q`` is in a
disease's spectrum, and it is consistent with ``d`` in proportion to how often ``d``'s patients lack it::

    n_d = γ · (1 − ρ · p_d(q))       d has typical phenotypes at or below q (p_d: noisy-or of their frequencies)
        = γ · β                      d excludes q or an ancestor of q (its own differential diagnosis)
        = 1                          otherwise
    LR(q, d) = n_d / mean_d' n_d'

Absent terms below the same excluded term of ``d`` are one observation, not several: the first counts ``γ·β``,
the others as for a disease silent about them (else a disease excluding a whole organ system gains ``ln γβ``
for every absent finding of that system, and wins every case with a long list of absent findings).

An absent term counts *for* ``d`` (score part and explanation ``absent_consistent``) when ``n_d > 1``, i.e. more
than for a disease silent about it, and *against* it (``absent_conflicting``) otherwise. With ``γ = 8, ρ = 0.9``
an absent obligate feature (``p_d ≈ 1``, ``n_d = 0.8``) counts against ``d``, the absence of an incompletely
penetrant one for it, as it did on real case reports (``benchmarks/ranking_real_cases.py``:
without the ascertainment factor every weight given to absent phenotypes made real-case ranking worse).

**Absences that nobody chose to look for.** ``γ`` models a clinician's report: an absence is recorded because the
finding was suspected. Absences derived from an image (a model that looked for every finding it knows and saw
none) are not ascertained by clinical suspicion, so for them pass ``LikelihoodParams(ascertainment=1.0)``: an
absent typical feature then counts against the disease, the more the more frequent the feature.

The background is the mean over the diseases *of the index*: an index restricted to a few sources
(``RankingIndex.from_snapshot(..., sources=...)``) compares its candidates with each other only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kg.analysis.ranking.matrices import DiseaseTermMatrices
from kg.analysis.ranking.types import MIN_LEVEL_IC, ScoreVectors, TermRatios


@dataclass(frozen=True)
class LikelihoodParams:
    """The constants of the likelihood-ratio score (see the module docstring); tuned on real dev cases only.

    ``ascertainment`` (γ) suits absences a clinician chose to record; for absences derived from an image, which
    no clinical suspicion selected, use ``LikelihoodParams(ascertainment=1.0)``."""

    sampling_weight: float = 0.7       # λ
    indirect_discount: float = 0.5     # δ
    unexplained_ratio: float = 1.0     # φ
    contradiction_ratio: float = 0.01  # LR of an observed phenotype the disease excludes
    absent_reliability: float = 0.9    # ρ
    ascertainment: float = 8.0         # γ
    excluded_absent_ratio: float = 5.0  # β


def _present_ratios(m: DiseaseTermMatrices, q: int, log_k: float, p: LikelihoodParams,
                    contradicted: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    n_d = m.n_diseases
    best = np.full(n_d, math.log(p.unexplained_ratio))
    level = np.full(n_d, -1, dtype=np.int64)
    share, ic = m.share, m.sem.ic
    log_discount = math.log(p.indirect_discount)
    for a in m.sem.ancestor_indices(q).tolist():
        if ic[a] < MIN_LEVEL_IC:
            continue
        lo, hi = share.indptr[a], share.indptr[a + 1]
        if lo == hi:
            continue
        rows = share.indices[lo:hi]
        v = np.exp(p.sampling_weight * np.minimum(0.0, np.log(share.data[lo:hi]) + log_k))
        values = np.log(v) - math.log(v.sum() / n_d) + (0.0 if a == q else log_discount)
        better = values > best[rows]
        best[rows[better]] = values[better]
        level[rows[better]] = a
    if contradicted is not None and contradicted.any():
        best[contradicted] = math.log(p.contradiction_ratio)
        level[contradicted] = -1
    return best, level


def _excluding_term(m: DiseaseTermMatrices, q: int) -> np.ndarray:
    """Per disease, the term of its excluded set at or above ``q`` (nearest ancestor first), −1 where none."""
    out = np.full(m.n_diseases, -1, dtype=np.int64)
    ex = m.excluded_csc
    for a in m.sem.ancestor_indices(q).tolist():
        rows = ex.indices[ex.indptr[a]:ex.indptr[a + 1]]
        free = rows[out[rows] < 0]
        out[free] = a
    return out


def _fold_redundant_exclusions(ratios: list[np.ndarray], hits: list[np.ndarray],
                               by_term: list[np.ndarray], silent: list[float]) -> None:
    """Count each excluded-set term of a disease once: further absent terms below the same excluded term add
    nothing the first did not say (a disease excluding a whole organ system would otherwise gain ``ln(γβ)``
    for every absent finding of that system), so they score as for a disease silent about them."""
    seen: set[tuple[int, int]] = set()
    for row, hit, terms, base in zip(ratios, hits, by_term, silent, strict=True):
        for d in np.flatnonzero(hit).tolist():
            key = (d, int(terms[d]))
            if key in seen:
                row[d] = base
                hit[d] = False
            else:
                seen.add(key)


def _absent_ratios(m: DiseaseTermMatrices, q: int, p: LikelihoodParams,
                   excluded: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, float]:
    n_d = m.n_diseases
    numerator = np.ones(n_d)
    typical = np.zeros(n_d, dtype=np.bool_)
    lm = m.log_miss
    lo, hi = lm.indptr[q], lm.indptr[q + 1]
    rows = lm.indices[lo:hi]
    typical[rows] = True
    numerator[rows] = p.ascertainment * (1.0 - p.absent_reliability * -np.expm1(lm.data[lo:hi]))
    if excluded is not None and excluded.any():
        numerator[excluded] = p.ascertainment * p.excluded_absent_ratio
    log_mean = math.log(numerator.mean())
    return np.log(numerator) - log_mean, typical, -log_mean


def term_ratios(m: DiseaseTermMatrices, present: np.ndarray, absent: np.ndarray, p: LikelihoodParams, *,
                use_exclusions: bool = True) -> TermRatios:
    """Every term's log likelihood ratio for every disease (vectorised over diseases)."""
    n_d = m.n_diseases
    if n_d == 0:
        present, absent = present[:0], absent[:0]  # nothing to score (and no background to average over)
    log_k = math.log(max(1, len(present)))
    check = use_exclusions and m.has_excluded
    pres_rows, levels, contra = [], [], []
    for q in present.tolist():
        hit = m.excluded_at_or_above(q) if check else np.zeros(n_d, dtype=np.bool_)
        ratios, level = _present_ratios(m, q, log_k, p, hit)
        pres_rows.append(ratios)
        levels.append(level)
        contra.append(hit)
    abs_rows, excl, typ, baseline, by_term = [], [], [], [], []
    for q in (absent.tolist() if use_exclusions else []):
        hit = m.excluded_at_or_above(q) if check else np.zeros(n_d, dtype=np.bool_)
        ratios, typical, silent = _absent_ratios(m, q, p, hit)
        abs_rows.append(ratios)
        baseline.append(silent)
        excl.append(hit)
        typ.append(typical & ~hit)
        by_term.append(_excluding_term(m, q) if hit.any() else np.full(n_d, -1, dtype=np.int64))
    if check and len(abs_rows) > 1:
        _fold_redundant_exclusions(abs_rows, excl, by_term, baseline)

    def stack(rows: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.vstack(rows) if rows else np.zeros((0, n_d), dtype=dtype)

    return TermRatios(stack(pres_rows, np.float64), stack(levels, np.int64), stack(contra, np.bool_),
                      stack(abs_rows, np.float64), stack(excl, np.bool_), stack(typ, np.bool_),
                      np.asarray(baseline, dtype=np.float64))


def likelihood_vectors(m: DiseaseTermMatrices, p: LikelihoodParams, present: np.ndarray, absent: np.ndarray, *,
                       use_exclusions: bool = True) -> ScoreVectors:
    """The four score parts of every disease (sums of the terms' log ratios), with the ratios themselves."""
    r = term_ratios(m, present, absent, p, use_exclusions=use_exclusions)
    contradicted = np.where(r.contradicted, r.present, 0.0)
    absent_for = r.absent_for
    return ScoreVectors(r.present.sum(axis=0) - contradicted.sum(axis=0), contradicted.sum(axis=0),
                        np.where(absent_for, r.absent, 0.0).sum(axis=0),
                        np.where(absent_for, 0.0, r.absent).sum(axis=0), r)
