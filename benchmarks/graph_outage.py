"""The graph layer when its database dies, and what the liveness check of pooled connections costs.

Run from the repository root::

    .venv/bin/python benchmarks/graph_outage.py [--reads 500] [--rounds 5] [--kills 3]

What it does, on a fresh embedded server in a temporary ``PHENOKG_HOME`` (stopped and deleted at the end):

1. **Liveness check cost**: ``RETURN 1`` through :meth:`kg.store.graph.Graph.read` with the production driver
   (every pooled connection checked with a RESET before use, ``liveness_check_timeout=0``) against the same
   Graph with a driver without that check (the baseline), alternating ``--rounds`` blocks of ``--reads`` reads
   each; per-read mean and p95.
2. **Outage**: ``--kills`` times, SIGKILL of the JVM under a Graph connected with ``restart=True`` (as the API
   is): how long the first call after the kill takes to fail, how long the next ones take (the fail-fast
   path), and how long until a read succeeds again (supervisor back-off of 1 s + JVM start + reconnect).

Progress goes to stderr, a Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import load_average, machine_line, percentile, progress

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kg.config import GraphSettings  # noqa: E402
from kg.errors import GraphUnavailableError  # noqa: E402
from kg.store.graph import Graph, _open_driver, connect  # noqa: E402


def _reads(graph: Graph, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        graph.read("RETURN 1 AS ok")
        out.append((time.perf_counter() - started) * 1000)
    return out


def _liveness(graph: Graph, settings: GraphSettings, reads: int, rounds: int) -> dict[str, list[float]]:
    checked = graph._driver  # the production driver
    plain = _open_driver(graph.uri, graph._auth, settings, liveness_check=False)  # the same, without the check
    samples: dict[str, list[float]] = {"checked": [], "unchecked": []}
    try:
        _reads(graph, 100)  # warm-up
        for _ in range(rounds):
            for name, driver in (("checked", checked), ("unchecked", plain)):
                graph._driver = driver
                samples[name] += _reads(graph, reads)
    finally:
        graph._driver = checked
        plain.close()
    return samples


def _outage(graph: Graph) -> tuple[float, float, float]:
    assert graph.server is not None
    state = graph.server.status()
    assert state is not None
    os.kill(state.pid, signal.SIGKILL)
    killed = time.monotonic()
    timings = []
    for _ in range(2):
        started = time.monotonic()
        with contextlib.suppress(GraphUnavailableError):
            graph.read("RETURN 1 AS ok")
        timings.append(time.monotonic() - started)
    while True:
        try:
            graph.read("RETURN 1 AS ok")
            break
        except GraphUnavailableError:
            time.sleep(0.05)
    return timings[0], timings[1], time.monotonic() - killed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()
    say = progress("graph_outage")
    home = Path(tempfile.mkdtemp(prefix="phenokg-outage-"))
    settings = GraphSettings(PHENOKG_HOME=str(home))  # type: ignore[call-arg]
    try:
        say("starting the embedded server")
        graph = connect(settings, restart=True)
        try:
            say(f"liveness check: {args.rounds} × {args.reads} reads per driver")
            samples = _liveness(graph, settings, args.reads, args.rounds)
            outages = []
            for i in range(args.kills):
                say(f"kill {i + 1}/{args.kills}")
                outages.append(_outage(graph))
        finally:
            graph.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"Machine: {machine_line()}; load average at the end {load_average()}\n")
    print("| driver | reads | mean ms | p95 ms |\n|---|---|---|---|")
    for name, values in samples.items():
        print(f"| {name} | {len(values)} | {statistics.fmean(values):.2f} | {percentile(values, 0.95):.2f} |")
    print("\n| kill | first call after the kill (s) | next call (s) | kill → first read served (s) |")
    print("|---|---|---|---|")
    for i, (first, second, back) in enumerate(outages, 1):
        print(f"| {i} | {first:.3f} | {second:.3f} | {back:.1f} |")


if __name__ == "__main__":
    main()
