"""Concurrent numpy matrix-vector products with the BLAS default threads vs one BLAS thread per call.

What semantic search does per request (``query @ matrix.T`` over the phenotype label vectors), from 1, 16 and 64
threads at once; the reason the server limits BLAS to one thread per call (:mod:`app.core.threads`).

    .venv/bin/python benchmarks/blas_concurrency.py [--rows 42546 --dim 384 --calls 400]

Prints calls/s per thread count for both settings, each in a fresh interpreter (a BLAS limit cannot be undone
for threads already started), with the machine and load average.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from _common import cpu_model, load_average


def _measure(rows: int, dim: int, calls: int, limit: bool) -> dict[int, float]:
    import numpy as np

    if limit:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
    rng = np.random.default_rng(0)
    matrix = rng.random((rows, dim), dtype=np.float32)
    query = rng.random((1, dim), dtype=np.float32)

    def one(_: int) -> float:
        return float((query @ matrix.T).max())

    out = {}
    for threads in (1, 16, 64):
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(calls)))
        out[threads] = calls / (time.perf_counter() - started)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=42546, help="Rows of the matrix (the full HPO's label vectors)")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("--child", choices=("default", "one"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_measure(args.rows, args.dim, args.calls, args.child == "one")))
        return 0
    print(f"{cpu_model()}, {os.cpu_count()} logical CPUs; load average {load_average()}")
    print("| BLAS threads per call | calls/s @1 | @16 | @64 |\n|---|---:|---:|---:|")
    for setting, label in (("default", "library default"), ("one", "one (app.core.threads)")):
        raw = subprocess.run([sys.executable, __file__, "--child", setting, "--rows", str(args.rows), "--dim",
                              str(args.dim), "--calls", str(args.calls)], capture_output=True, text=True,
                             check=True).stdout
        rates = {int(k): v for k, v in json.loads(raw).items()}
        print(f"| {label} | {rates[1]:.0f} | {rates[16]:.0f} | {rates[64]:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
