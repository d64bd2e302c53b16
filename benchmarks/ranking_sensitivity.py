"""How much each constant of the likelihood ranker matters on the real dev cases: one change at a time.

Run from the repository root (no database, no peer; ~35 s a variant on 2 cores)::

    .venv/bin/python benchmarks/ranking_sensitivity.py
    .venv/bin/python benchmarks/ranking_sensitivity.py --variant '{"indirect_discount": 0.3}'

Each variant changes one :class:`LikelihoodParams` or :class:`RankingParams` field (``rp_`` prefix) of the
defaults and is scored, present + absent phenotypes, on the cases of ``benchmarks/ranking_real_cases.py``
(the gold disease among every OMIM disease, per disease metrics). The dev file is one fold of the benchmark
split, so to see whether a change generalises at all the diseases are split once more in two halves by
``md5(gold) % 2``: a change worth keeping should help in both halves, not just overall.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line
from ranking_bench import snapshot_from_sources
from ranking_real_cases import DEFAULT_CASES, Case, load_cases, per_disease, phenokg_ranks

from kg.analysis.ranking import LikelihoodParams, RankingIndex, RankingParams

DEFAULT_VARIANTS: list[dict[str, Any]] = [
    {}, {"rp_pool_equivalents": False},
    {"sampling_weight": 0.5}, {"sampling_weight": 0.9}, {"indirect_discount": 0.3}, {"indirect_discount": 0.7},
    {"unexplained_ratio": 0.7}, {"contradiction_ratio": 0.05}, {"ascertainment": 5.0}, {"ascertainment": 12.0},
    {"absent_reliability": 0.8}, {"absent_reliability": 0.97}, {"excluded_absent_ratio": 3.0},
    {"excluded_absent_ratio": 8.0}, {"rp_default_frequency": 0.3}, {"rp_default_frequency": 0.7},
]


def half_of(gold: str) -> int:
    return int(hashlib.md5(gold.encode()).hexdigest(), 16) % 2


def row(name: str, cases: Sequence[Case], ranks: Sequence[float]) -> str:
    cells = []
    for half in (0, 1, None):
        keep = [i for i, c in enumerate(cases) if half is None or half_of(c.gold) == half]
        m = per_disease([cases[i] for i in keep], [ranks[i] for i in keep])
        cells.append(f"{m.top1:.3f} / {m.top10:.3f} / {m.mrr:.3f}")
    return f"| {name} | " + " | ".join(cells) + " |"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=str(DEFAULT_CASES))
    parser.add_argument("--variant", action="append", type=json.loads,
                        help="a JSON object of changed fields (repeatable; default: the built-in list)")
    args = parser.parse_args(argv)
    variants: list[dict[str, Any]] = args.variant or DEFAULT_VARIANTS
    t0 = time.perf_counter()
    snapshot = snapshot_from_sources()
    print(f"Machine: {machine_line()}. Cases: `{args.cases}`.\n")
    print("| change from the defaults (present + absent) | half 0: top-1 / top-10 / MRR | half 1 | all |")
    print("|---|---|---|---|")
    for variant in variants:
        ranking = {k[3:]: v for k, v in variant.items() if k.startswith("rp_")}
        likelihood = {k: v for k, v in variant.items() if not k.startswith("rp_")}
        index = RankingIndex.from_snapshot(snapshot, RankingParams(**ranking))
        index.likelihood = LikelihoodParams(**likelihood)
        cases = load_cases(Path(args.cases), index).cases
        ranks = phenokg_ranks(index, cases, "likelihood", True)
        print(row(json.dumps(variant) if variant else "defaults", cases, ranks), flush=True)
    print(f"\nwhole run: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
