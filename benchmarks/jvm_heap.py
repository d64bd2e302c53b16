"""The embedded server's JVM heap (``PHENOKG_DB_HEAP``): what the database reads of the API cost at each heap, and
the JVM's resident memory after them.

Run from the repository root::

    .venv/bin/python benchmarks/jvm_heap.py --home /tmp/bench-home --heaps 1g,512m,384m,256m

For each heap, in turn (each in a fresh Python process, the embedded server started on a copy of ``--home``'s
``db`` with that ``-Xmx``, stopped at the end):

* ``snapshot`` load (every term, disease, annotation and IS_A edge: what the API reads at start and after a build),
  timed twice (cold JVM, then warm);
* the phenotype vectors (``kg.repo.embeddings.load_semantic_index``);
* 400 ``disease_detail`` reads (the Cypher behind ``GET /diseases/{id}``), p50 / p95;
* the JVM's RSS at start and 3 s after the reads.

Build time per heap: ``benchmarks/build_graph.py --heap``. Progress goes to stderr; the Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import machine_line, progress

ROOT = Path(__file__).resolve().parents[1]
say = progress("jvm_heap")


def worker() -> dict[str, Any]:
    import psutil

    from kg.config import GraphSettings
    from kg.repo.diseases import disease_detail
    from kg.repo.embeddings import load_semantic_index
    from kg.repo.snapshots import SnapshotCache
    from kg.store.graph import connect

    settings = GraphSettings()
    graph = connect(settings)
    try:
        assert graph.server is not None
        state = graph.server.status()
        assert state is not None
        jvm = psutil.Process(state.pid)
        out: dict[str, Any] = {"heap": settings.embedded_heap, "start_rss": jvm.memory_info().rss / 2**20}
        t = time.perf_counter()
        snapshot = SnapshotCache(graph).get()
        out["snapshot_s"] = time.perf_counter() - t
        t = time.perf_counter()
        load_semantic_index(graph, snapshot.terms)
        out["vectors_s"] = time.perf_counter() - t
        latencies = []
        for disease in sorted(snapshot.diseases)[:400]:
            t = time.perf_counter()
            disease_detail(graph, disease, None)
            latencies.append((time.perf_counter() - t) * 1000)
        out["detail_p50_ms"] = statistics.median(latencies)
        out["detail_p95_ms"] = sorted(latencies)[int(0.95 * (len(latencies) - 1))]
        t = time.perf_counter()
        SnapshotCache(graph).get()
        out["snapshot_warm_s"] = time.perf_counter() - t
        time.sleep(3)
        out["idle_rss"] = jvm.memory_info().rss / 2**20
        return out
    finally:
        graph.close()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--home", type=Path, help="A built PHENOKG_HOME (its db folder is copied)")
    ap.add_argument("--heaps", default="1g,512m,384m,256m", help="Comma-separated -Xmx values")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker()))
        return 0
    if args.home is None:
        ap.error("--home is required")
    rows = []
    for heap in [h.strip() for h in args.heaps.split(",") if h.strip()]:
        tmp = Path(tempfile.mkdtemp(prefix="phenokg-jvm-heap-"))
        try:
            shutil.copytree(args.home / "db", tmp / "db", symlinks=True,
                            ignore=shutil.ignore_patterns("server.json", "*.pid", "log", "server.log"))
            env = dict(os.environ, PHENOKG_HOME=str(tmp), PHENOKG_DB_HEAP=heap)
            for key in ("NEO4J_URI", "PHENOKG_BOLT_PORT", "PHENOKG_HTTP_PORT"):
                env.pop(key, None)
            say(f"heap {heap}")
            out = subprocess.run([sys.executable, __file__, "--worker"], env=env, cwd=str(ROOT),
                                 capture_output=True, text=True, check=False, timeout=900)
            if out.returncode != 0:
                say(f"heap {heap} failed: {out.stderr.strip().splitlines()[-1:]}")
                rows.append({"heap": heap, "error": (out.stderr.strip().splitlines() or ["failed"])[-1]})
                continue
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            say(json.dumps(rows[-1]))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    command = "python benchmarks/jvm_heap.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"Command: `{command}`; machine: {machine_line()}; load average at end "
             f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}.", "",
             "| -Xmx | snapshot load, cold / warm (s) | vectors (s) | disease detail p50 / p95 (ms) | "
             "JVM RSS at start / after (MiB) |", "|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['heap']} | failed: {r['error']} | | | |")
            continue
        lines.append(f"| {r['heap']} | {r['snapshot_s']:.1f} / {r['snapshot_warm_s']:.1f} | {r['vectors_s']:.1f} | "
                     f"{r['detail_p50_ms']:.1f} / {r['detail_p95_ms']:.1f} | {r['start_rss']:.0f} / "
                     f"{r['idle_rss']:.0f} |")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
