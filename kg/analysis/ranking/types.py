"""The vocabulary of the ranking: constants, the IC score's parameters, and the result and per-query types.

The bottom layer of :mod:`kg.analysis.ranking` (it imports nothing of the package): every other module reads these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

DEFAULT_ASPECTS = frozenset({"P"})
RankMethod = Literal["likelihood", "ic"]
METHODS: tuple[RankMethod, ...] = ("likelihood", "ic")
DEFAULT_METHOD: RankMethod = "likelihood"
MatchHow = Literal["exact", "ancestor", "descendant", "related"]
ContradictionHow = Literal["exact", "descendant"]
AbsentHow = Literal["exact", "descendant", "ancestor"]
MAX_LIMIT = 1000
# Levels less informative than this (the root and "Phenotypic abnormality", IC ≈ 0) explain nothing, in both
# scores: their match value is at most their IC, so they are skipped (a match must be worth at least this much).
MIN_LEVEL_IC = 0.01


@dataclass(frozen=True)
class RankingParams:
    """The constants of the IC score (see :mod:`kg.analysis.ranking.ic`) and of the index built for it."""

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
    for the observed term (taken at the most telling level of its ancestors, see :mod:`kg.analysis.ranking.ic`).
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
class EquivalentEntry:
    """Another entry of the same disease, folded into a grouped result row (with its own score)."""

    id: str
    name: str
    source: str
    score: float


@dataclass(frozen=True)
class RankedDisease:
    rank: int
    id: str
    name: str
    source: str
    score: float
    explanation: Explanation | None = None
    pooled_with: str | None = None  # the Orphanet entry whose annotations this OMIM entry was also scored on
    # grouped results (``group=True``): the other entries of the same disease, and the entry whose score and
    # explanation the row shows when that is not the row's own id (the group's best-scored entry)
    equivalents: tuple[EquivalentEntry, ...] = ()
    score_from: str | None = None


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


# ---- per-query vectors --------------------------------------------------------------------------------
@dataclass
class TermRatios:
    """Per-term log likelihood ratios for every disease (rows: the case's terms, in order); method "likelihood"."""

    present: np.ndarray          # k × n_d, ln LR of each observed term
    present_level: np.ndarray    # k × n_d, the explaining level (term index), −1 where none or contradicted
    contradicted: np.ndarray     # k × n_d, bool
    absent: np.ndarray           # m × n_d, ln LR of each absent term
    absent_excluded: np.ndarray  # m × n_d, bool: the disease excludes the absent term (or an ancestor)
    absent_typical: np.ndarray   # m × n_d, bool: the disease has typical phenotypes at or below it
    absent_baseline: np.ndarray  # m, ln LR of each absent term for a disease silent about it

    @property
    def absent_for(self) -> np.ndarray:
        """m × n_d, bool: the absence counts for the disease (more than for one silent about the term)."""
        return self.absent > self.absent_baseline[:, None] + 1e-12


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
