"""Disease ranking from observed and explicitly absent phenotypes, with an explanation per disease.

Built once per graph snapshot (``cache.derived("ranking", RankingIndex.from_snapshot)``) as sparse matrices
over *diseases × terms*; a query is a handful of column slices and vector operations, not a Python loop
over 12.7k diseases.

Two scores over the same evidence (typical sets with frequencies, excluded sets, observed and absent terms):

* ``method="likelihood"`` (:mod:`.likelihood`, the default, :data:`DEFAULT_METHOD`): a sum of log likelihood
  ratios against the mean disease of the index, LIRICAL-style; it ranked real published cases better
  (``benchmarks/ranking_real_cases.py``, docs/benchmarks.md).
* ``method="ic"`` (:mod:`.ic`): Resnik's IC of the best matching level, tempered by how likely a report of the
  disease is to hold a phenotype there; the formula and its notation are documented there.

**Annotations pooled from an Orphanet twin** (``RankingParams.pool_equivalents``, on by default): an OMIM
entry's typical and excluded sets also hold those of the Orphanet entry of the same disease
(:mod:`kg.analysis.equivalence`: same name, or a shared gene and a similar name, one-to-one only). The two are
curated separately and OMIM's are often sparse and without frequencies; pooling raised real-case top-3 by two
points in both halves of the dev diseases (docs/benchmarks.md). Results carry ``pooled_with``.

**One row per disease** (``rank(..., group=True)``, :mod:`.grouping`): the same pairs (kept in
``RankingIndex.equivalents`` whether pooled or not), and the one-to-one same-name pairs that the gene rule
keeps from pooling (:func:`kg.analysis.equivalence.same_name_pairs`: OMIM:154700 and ORPHA:558, Marfan
syndrome), make one result row, with the OMIM id, the group's best score and the other entry in
``equivalents``; ``limit`` counts rows. The default is the raw list.

Ties are broken by disease id (deterministic). ``use_exclusions=False`` drops every excluded/absent term
(the ablation of the benchmark). Unknown ids raise :class:`kg.errors.ValidationError`; alternative and
obsolete-with-replacement ids are resolved.

**Ranking a few candidates from image-derived phenotypes** (e.g. the chest X-ray findings): build an index of
those sources only, ``RankingIndex.from_snapshot(snapshot, sources=["CXR_PACK"],
likelihood=LikelihoodParams(ascertainment=1.0))`` (absences a model derived from an image were not ascertained
by clinical suspicion), and rank with ``require_present=False`` so that a query of ruled-out phenotypes only is
scored too.

Modules, each importing only those below it (``lint-imports`` checks it): :mod:`.index` (:class:`RankingIndex`:
construction, id resolution, ``rank`` / ``rank_query``) → :mod:`.explain`, :mod:`.grouping`, :mod:`.ic`,
:mod:`.likelihood` →
:mod:`.matrices` (the disease × term matrices) → :mod:`.types` (constants, parameters, results).
"""

from kg.analysis.ranking.explain import DiseaseRow, explain_ic_rows, explain_likelihood, explain_likelihood_rows
from kg.analysis.ranking.grouping import group_results, group_rows, merge_group, partner_rows
from kg.analysis.ranking.ic import ic_vectors, match_values
from kg.analysis.ranking.index import RankingIndex
from kg.analysis.ranking.likelihood import LikelihoodParams, likelihood_vectors, term_ratios
from kg.analysis.ranking.matrices import DiseaseTermMatrices
from kg.analysis.ranking.types import (
    DEFAULT_ASPECTS,
    DEFAULT_METHOD,
    MAX_LIMIT,
    METHODS,
    MIN_LEVEL_IC,
    AbsentHow,
    AbsentTerm,
    ContradictedTerm,
    ContradictionHow,
    EquivalentEntry,
    Explanation,
    MatchedTerm,
    MatchHow,
    RankedDisease,
    RankedQuery,
    RankingParams,
    RankMethod,
    ResolvedTerms,
    ScoreParts,
    ScoreVectors,
    TermRatios,
)

__all__ = [
    "DEFAULT_ASPECTS",
    "DEFAULT_METHOD",
    "MAX_LIMIT",
    "METHODS",
    "MIN_LEVEL_IC",
    "AbsentHow",
    "AbsentTerm",
    "ContradictedTerm",
    "ContradictionHow",
    "DiseaseRow",
    "DiseaseTermMatrices",
    "EquivalentEntry",
    "Explanation",
    "LikelihoodParams",
    "MatchHow",
    "MatchedTerm",
    "RankMethod",
    "RankedDisease",
    "RankedQuery",
    "RankingIndex",
    "RankingParams",
    "ResolvedTerms",
    "ScoreParts",
    "ScoreVectors",
    "TermRatios",
    "explain_ic_rows",
    "explain_likelihood",
    "explain_likelihood_rows",
    "group_results",
    "group_rows",
    "ic_vectors",
    "likelihood_vectors",
    "match_values",
    "merge_group",
    "partner_rows",
    "term_ratios",
]
