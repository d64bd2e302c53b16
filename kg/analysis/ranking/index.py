"""The ranking index of one snapshot: its disease × term matrices, id resolution, and ``rank`` / ``rank_query``.

The top layer of :mod:`kg.analysis.ranking`: it builds the matrices (:mod:`.matrices`), scores with
:mod:`.ic` or :mod:`.likelihood` and explains the diseases shown with :mod:`.explain`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from kg.analysis.equivalence import equivalent_diseases, pool_annotations, same_name_pairs
from kg.analysis.ranking.explain import explain_ic_rows, explain_likelihood, explain_likelihood_rows
from kg.analysis.ranking.grouping import group_rows, merge_group, partner_rows
from kg.analysis.ranking.ic import ic_vectors, match_values
from kg.analysis.ranking.likelihood import LikelihoodParams, likelihood_vectors
from kg.analysis.ranking.matrices import DiseaseTermMatrices
from kg.analysis.ranking.types import (
    DEFAULT_METHOD,
    MAX_LIMIT,
    METHODS,
    Explanation,
    RankedDisease,
    RankedQuery,
    RankingParams,
    RankMethod,
    ResolvedTerms,
    ScoreVectors,
)
from kg.analysis.semsim import SemSimIndex
from kg.errors import ValidationError

if TYPE_CHECKING:
    from kg.analysis.snapshot import GraphSnapshot


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValidationError("limit must be at least 1")


class RankingIndex(DiseaseTermMatrices):
    """Sparse disease × term matrices of one snapshot (or of some of its sources), and the ranking over them."""

    def __init__(self, sem: SemSimIndex, disease_ids: Sequence[str], names: Sequence[str], sources: Sequence[str],
                 typical: sp.csr_matrix, excluded: sp.csr_matrix, params: RankingParams | None = None,
                 stated: sp.csr_matrix | None = None, likelihood: LikelihoodParams | None = None,
                 pooled_from: dict[str, str] | None = None, equivalents: dict[str, str] | None = None) -> None:
        super().__init__(sem, disease_ids, typical, excluded, stated)
        self.pooled_from: dict[str, str] = dict(pooled_from or {})  # OMIM id → Orphanet twin pooled into it
        # OMIM id → Orphanet id of the same disease (pooled or not): one result row with ``group=True``
        self.equivalents: dict[str, str] = dict(self.pooled_from if equivalents is None else equivalents)
        self.params = params or RankingParams()
        self.likelihood = likelihood or LikelihoodParams()
        self.names: list[str] = list(names)
        self.sources: np.ndarray = np.asarray(sources, dtype=object)
        self.position: dict[str, int] = {d: i for i, d in enumerate(self.disease_ids)}
        self.partner: dict[int, int] = partner_rows(self.equivalents, self.position)

    # ---- construction ---------------------------------------------------------------------------
    @classmethod
    def from_snapshot(cls, snapshot: GraphSnapshot, params: RankingParams | None = None,
                      sem: SemSimIndex | None = None, *, sources: Iterable[str] | None = None,
                      likelihood: LikelihoodParams | None = None) -> RankingIndex:
        """The index of ``snapshot``: every disease, or with ``sources`` only the diseases of those sources
        (case-insensitive, e.g. ``["CXR_PACK"]``).

        A restricted index is not the full one filtered: the likelihood score's background is the mean over the
        diseases of the index, so its candidates are compared with each other only (what ranking the 13 chest
        X-ray findings from an image wants). Orphanet annotations are still pooled into an OMIM entry of the
        index when its twin is left out. ``likelihood`` sets the likelihood score's constants; for absences
        derived from an image pass ``LikelihoodParams(ascertainment=1.0)`` (see
        :mod:`kg.analysis.ranking.likelihood`). An index with no disease ranks nothing (``rank`` returns ``[]``).
        """
        params = params or RankingParams()
        sem = sem or SemSimIndex.from_snapshot(snapshot)
        info = snapshot.diseases
        wanted = None if sources is None else {s.upper() for s in sources}
        disease_ids = sorted(d for d in info if wanted is None or info[d].source.upper() in wanted)
        position = {d: i for i, d in enumerate(disease_ids)}
        names = {d: i.name for d, i in info.items()}
        pooled = equivalent_diseases(names, {d: i.genes for d, i in info.items() if i.genes})
        pairs = pooled if params.pool_equivalents else {}
        # one result row per disease: the pooled pairs and the one-to-one same-name pairs (not pooled)
        equivalents = {**pooled, **same_name_pairs(names, pooled)}
        typical_of, excluded_of = pool_annotations(snapshot.typical, snapshot.excluded, pairs)
        if wanted is not None:
            pairs = {d: o for d, o in pairs.items() if d in position}
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
                   typical, excluded, params, stated, likelihood, pooled_from=pairs, equivalents=equivalents)

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
    def match_values(self, q: int, log_k: float) -> np.ndarray:
        """``match(q, d)`` of the IC score for every disease (see :func:`kg.analysis.ranking.ic.match_values`)."""
        return match_values(self, self.params, q, log_k)

    def score_vectors(self, present: np.ndarray, absent: np.ndarray | None = None, *,
                      use_exclusions: bool = True, method: RankMethod = DEFAULT_METHOD) -> ScoreVectors:
        """The four score parts for every disease, for term indices ``present`` and ``absent``."""
        present = np.asarray(present, dtype=np.int64)
        absent = np.zeros(0, dtype=np.int64) if absent is None else np.asarray(absent, dtype=np.int64)
        if method == "likelihood":
            return likelihood_vectors(self, self.likelihood, present, absent, use_exclusions=use_exclusions)
        if method != "ic":
            raise ValidationError(f"unknown ranking method {method!r} (known: {', '.join(METHODS)})")
        return ic_vectors(self, self.params, present, absent, use_exclusions=use_exclusions)

    # ---- ranking --------------------------------------------------------------------------------
    def rank_query(self, present: Iterable[str], absent: Iterable[str] = (), sources: Iterable[str] | None = None,
                   limit: int = 20, *, explain: bool = True, method: RankMethod = DEFAULT_METHOD,
                   require_present: bool = True, group: bool = False) -> RankedQuery:
        """:meth:`rank` for user-supplied ids: resolved once (redirects followed, unknown ids set aside);
        raises :class:`ValidationError` when no present id is known (unless ``require_present`` is false)."""
        pres, abs_ = self.resolve_terms(present), self.resolve_terms(absent)
        if require_present and not pres.ids:
            unknown = RankedQuery(pres, abs_, []).unknown
            raise ValidationError("no known present phenotype id" + (f" (unknown: {', '.join(unknown)})"
                                                                      if unknown else ""))
        results = self._rank(self.sem.indices(pres.ids), self.sem.indices(abs_.ids), sources, limit,
                             explain=explain, use_exclusions=True, method=method, require_present=require_present,
                             group=group)
        return RankedQuery(pres, abs_, results)

    def rank(self, present: Sequence[str], absent: Sequence[str] = (), sources: Iterable[str] | None = None,
             limit: int = 20, *, explain: bool = True, use_exclusions: bool = True,
             method: RankMethod = DEFAULT_METHOD, require_present: bool = True,
             group: bool = False) -> list[RankedDisease]:
        """Diseases ranked for the observed (``present``) and explicitly ``absent`` phenotype ids.

        ``group=True`` gives one row per disease: an OMIM entry and its Orphanet twin (:attr:`equivalents`)
        are one row, with the OMIM id, the group's best score and ``equivalents`` (:mod:`.grouping`);
        ``limit`` then counts rows.

        Unknown ids raise :class:`ValidationError`, and so does a query with no present phenotype, unless
        ``require_present`` is false: then an absent-only query is scored on its absences, and an empty query
        gives every candidate score 0, in disease id order. Image retrieval ranks findings that way, from the
        phenotypes a model saw and ruled out; such absences are not ascertained by clinical suspicion, so build
        its index with ``likelihood=LikelihoodParams(ascertainment=1.0)``
        (see :mod:`kg.analysis.ranking.likelihood`).
        """
        _check_limit(limit)
        return self._rank(self._indices(present, "present"), self._indices(absent, "absent"), sources, limit,
                          explain=explain, use_exclusions=use_exclusions, method=method,
                          require_present=require_present, group=group)

    def _rank(self, pres: np.ndarray, abs_: np.ndarray, sources: Iterable[str] | None, limit: int, *,
              explain: bool, use_exclusions: bool, method: RankMethod, require_present: bool,
              group: bool = False) -> list[RankedDisease]:
        """:meth:`rank` over term indices (the ids resolved once by the caller)."""
        _check_limit(limit)
        limit = min(limit, MAX_LIMIT)
        if require_present and len(pres) == 0:
            raise ValidationError("at least one present phenotype is needed")
        both = set(pres.tolist()) & set(abs_.tolist())
        if both:
            names = ", ".join(self.sem.terms[i] for i in sorted(both))
            raise ValidationError(f"phenotype(s) both present and absent: {names}")
        vectors = self.score_vectors(pres, abs_, use_exclusions=use_exclusions, method=method)
        total = vectors.total
        mask = self.source_mask(sources)
        candidates = np.flatnonzero(mask)
        order = candidates[np.lexsort((candidates, -total[candidates]))]
        groups = (group_rows((int(r) for r in order), self.partner, mask, limit) if group
                  else [(int(r),) for r in order[:limit]])
        rows = [g[0] for g in groups]
        explanations: list[Explanation | None]
        if not explain:
            explanations = [None] * len(rows)
        elif vectors.ratios is not None:
            explanations = list(explain_likelihood_rows(self, rows, pres, abs_, vectors))
        else:
            explanations = list(self.explain_rows(rows, pres, abs_, vectors, use_exclusions=use_exclusions))

        def entry(rank: int, row: int, explanation: Explanation | None = None) -> RankedDisease:
            return RankedDisease(rank, self.disease_ids[row], self.names[row], str(self.sources[row]),
                                 round(float(total[row]), 6), explanation, self.pooled_from.get(self.disease_ids[row]))

        if not group:
            return [entry(r, row, explanation)
                    for r, (row, explanation) in enumerate(zip(rows, explanations, strict=True), start=1)]
        return [merge_group(r, [entry(r, g[0], explanation), *(entry(r, other) for other in g[1:])])
                for r, (g, explanation) in enumerate(zip(groups, explanations, strict=True), start=1)]

    # ---- explanation (for the few diseases shown) -------------------------------------------------
    def explain(self, row: int, present: np.ndarray, absent: np.ndarray, vectors: ScoreVectors | None = None,
                *, use_exclusions: bool = True) -> Explanation:
        """Which observed / absent phenotypes count for or against disease ``row``, and how (IC score)."""
        return self.explain_rows([row], present, absent, vectors, use_exclusions=use_exclusions)[0]

    def explain_rows(self, rows: Sequence[int], present: np.ndarray, absent: np.ndarray,
                     vectors: ScoreVectors | None = None, *, use_exclusions: bool = True) -> list[Explanation]:
        """IC-score explanations for several diseases at once (the query-dependent parts are computed once)."""
        return explain_ic_rows(self, self.params, rows, present, absent, vectors, use_exclusions=use_exclusions)

    def explain_likelihood(self, row: int, present: np.ndarray, absent: np.ndarray,
                           vectors: ScoreVectors) -> Explanation:
        """Each term's likelihood ratio for disease ``row`` (method "likelihood")."""
        return explain_likelihood(self, row, present, absent, vectors)
