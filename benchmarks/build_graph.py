"""Benchmark the full graph build on the embedded server: wall time and peak memory (Python + the JVM).

Run from the repository root::

    .venv/bin/python benchmarks/build_graph.py                      # fresh build, no-op rebuild, baseline
    .venv/bin/python benchmarks/build_graph.py --runs 3 --json /tmp/build_graph.json
    .venv/bin/python benchmarks/build_graph.py --heap 768m --baseline none

What it does (issue 3's bar: the full HPO build -- 19,034 live terms, 23,392 IS_A edges, all 271,702
annotation rows -- under 45 s and 1.2 GB, and under 60 s in any case):

1. **Fresh build**: a new temporary ``PHENOKG_HOME`` (a user's data is never touched), the embedded
   ArcadeDB server started (timed on its own), then ``kg.ingest.build.build()`` on the shipped HPO release and
   chest X-ray pack.
   A background thread samples the RSS and CPU time of the Python process and of the JVM every 50 ms; the
   peak of each, and the peak of their *sum taken at the same instant* (plus, for comparison, the sum of the
   two peaks) are reported, with the build's own stage timings and the CPU each process spent per stage.
   The counts are checked against the release: live terms, IS_A edges, diseases (HPOA + pack findings) and
   annotation source rows (``sum(source_rows)`` over HAS_PHENOTYPE + EXCLUDES, minus the pack's rows).
2. **Rebuild**: the server restarted on the same home and ``build()`` run again (nothing changes; every
   diff must be empty), measured the same way -- what a second ``phenokg kg build`` costs.
3. ``--runs N`` repeats step 1 on fresh homes (medians reported; the rebuild runs once).
4. **Baseline** (``--baseline full``, the default): the "plain UNWIND-batch prototype" of DESIGN.md on
   another fresh home -- the same migrations (constraints), then ``UNWIND $rows AS r MERGE (n {id: r.id})
   SET n += r.props`` for nodes and ``MATCH … MATCH … MERGE (a)-[e:T]->(b) SET e += r.props`` for every
   edge, batches of 1,000, the same property maps as the build, no read-and-diff.  Timed and sampled
   the same way.

Each measurement runs in its own Python process (this script re-invoked with ``--worker``), so one run's
allocations do not inflate the next one's RSS.  On a shared machine, check the row "other processes' CPU":
the machine's busy CPU time (``/proc/stat``) minus that of our Python process and JVM, in cores, averaged
over the build -- wall times are only comparable between runs where it is near 0.  Every server started is
stopped (try/finally) and every temporary home deleted.  Progress goes to stderr; the Markdown report to
stdout.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, LiteralString, cast

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _common import cpu_model, load_average, progress  # noqa: E402

from kg.config import GraphSettings  # noqa: E402
from kg.store.embedded import ARCADEDB_VERSION, EmbeddedServer  # noqa: E402

EXPECTED: dict[str, int] = {
    "live_phenotypes": 19_034,
    "is_a": 23_392,
    "hpoa_diseases": 12_687,
    "pack_findings": 13,
    "source_rows": 271_702,
}
TARGET_S = 45.0
HARD_LIMIT_S = 60.0
TARGET_BYTES = 1.2e9
PACK_SOURCE = "CXR_PACK"
MB = 1e6

# ---- verification queries (read-only) ------------------------------------------------------------
Q_DISEASES_BY_SOURCE: LiteralString = "MATCH (d:Disease) RETURN d.source AS source, count(d) AS n"
Q_SOURCE_ROWS: dict[str, LiteralString] = {
    "HAS_PHENOTYPE": "MATCH (:Disease)-[e:HAS_PHENOTYPE]->(:Phenotype) RETURN sum(e.source_rows) AS n",
    "EXCLUDES": "MATCH (:Disease)-[e:EXCLUDES]->(:Phenotype) RETURN sum(e.source_rows) AS n",
}
Q_PACK_ROWS: dict[str, LiteralString] = {
    "HAS_PHENOTYPE": "MATCH (d:Disease)-[e:HAS_PHENOTYPE]->(:Phenotype) WHERE d.source = $pack "
                     "RETURN sum(e.source_rows) AS n",
    "EXCLUDES": "MATCH (d:Disease)-[e:EXCLUDES]->(:Phenotype) WHERE d.source = $pack "
                "RETURN sum(e.source_rows) AS n",
}

# ---- the baseline: plain UNWIND … MERGE … SET += in batches of 1,000 -------------------------------
def _q(text: str) -> LiteralString:
    """A statement built from constants in this file (labels, relationship types), never from input."""
    return text  # mypy treats LiteralString as str


BASE_NODES: dict[str, LiteralString] = {
    label: _q(f"UNWIND $rows AS r MERGE (n:{label} {{id: r.id}}) SET n += r.props")
    for label in ("Phenotype", "Disease")
}
BASE_STRUCTURAL: dict[str, LiteralString] = {
    rel: _q(f"UNWIND $rows AS r MATCH (a:Phenotype {{id: r.source}}) "
            f"MATCH (b:Phenotype {{id: r.target}}) MERGE (a)-[:{rel}]->(b)")
    for rel in ("IS_A", "REPLACED_BY", "CONSIDER")
}
BASE_ANNOTATIONS: dict[str, LiteralString] = {
    rel: _q(f"UNWIND $rows AS r MATCH (d:Disease {{id: r.source}}) "
            f"MATCH (p:Phenotype {{id: r.target}}) MERGE (d)-[e:{rel}]->(p) SET e += r.props")
    for rel in ("HAS_PHENOTYPE", "EXCLUDES")
}
BATCH = 1000


say = progress("build_graph")


# ==================================================================================================
# Sampling RSS and CPU of this process and the JVM
# ==================================================================================================
@dataclass(frozen=True)
class Sample:
    t: float  # time.perf_counter()
    py_rss: int
    jvm_rss: int
    py_cpu: float  # user + system seconds, cumulative
    jvm_cpu: float


class Sampler:
    """Samples RSS and CPU time of this Python process and of one other pid (the JVM) every ``interval``."""

    def __init__(self, jvm_pid: int, interval: float = 0.05) -> None:
        self.me = psutil.Process()
        self.jvm = psutil.Process(jvm_pid)
        self.interval = interval
        self.samples: list[Sample] = []
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def _take(self) -> None:
        t = time.perf_counter()
        with self.me.oneshot():
            py_rss = self.me.memory_info().rss
            cpu = self.me.cpu_times()
            py_cpu = cpu.user + cpu.system
        try:
            with self.jvm.oneshot():
                jvm_rss = self.jvm.memory_info().rss
                jcpu = self.jvm.cpu_times()
                jvm_cpu = jcpu.user + jcpu.system
        except psutil.Error:  # the JVM exited: keep its last CPU figure, no memory
            jvm_rss, jvm_cpu = 0, (self.samples[-1].jvm_cpu if self.samples else 0.0)
        self.samples.append(Sample(t, py_rss, jvm_rss, py_cpu, jvm_cpu))

    def _loop(self) -> None:
        while not self._halt.wait(self.interval):
            self._take()

    @staticmethod
    def _system_cpu() -> tuple[float, float]:
        """Busy (user + nice + system + irq + softirq) and steal CPU seconds of the whole machine."""
        c = psutil.cpu_times()
        busy = c.user + c.nice + c.system + getattr(c, "irq", 0.0) + getattr(c, "softirq", 0.0)
        return busy, getattr(c, "steal", 0.0)

    def __enter__(self) -> Sampler:
        self._sys_start = self._system_cpu()
        self._take()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt.set()
        self._thread.join()
        self._take()
        self._sys_end = self._system_cpu()

    def others(self) -> dict[str, float]:
        """CPU that processes other than these two used meanwhile (contention from the shared machine)."""
        first, last = self.samples[0], self.samples[-1]
        wall = last.t - first.t
        busy = self._sys_end[0] - self._sys_start[0]
        ours = (last.py_cpu - first.py_cpu) + (last.jvm_cpu - first.jvm_cpu)
        other = max(0.0, busy - ours)
        return {"wall_s": round(wall, 3), "machine_busy_cpu_s": round(busy, 2), "ours_cpu_s": round(ours, 2),
                "others_cpu_s": round(other, 2), "others_cores_avg": round(other / wall, 2) if wall else 0.0,
                "steal_s": round(self._sys_end[1] - self._sys_start[1], 2)}

    def memory(self) -> dict[str, Any]:
        s = self.samples
        top_sum = max(s, key=lambda x: x.py_rss + x.jvm_rss)
        return {
            "samples": len(s),
            "interval_s": self.interval,
            "py_rss_start": s[0].py_rss,
            "jvm_rss_start": s[0].jvm_rss,
            "peak_py_rss": max(x.py_rss for x in s),
            "peak_jvm_rss": max(x.jvm_rss for x in s),
            "peak_sum_rss": top_sum.py_rss + top_sum.jvm_rss,
            "peak_sum_at_py_rss": top_sum.py_rss,
            "peak_sum_at_jvm_rss": top_sum.jvm_rss,
            "sum_of_peaks": max(x.py_rss for x in s) + max(x.jvm_rss for x in s),
        }

    def _cpu_at(self, t: float) -> tuple[float, float]:
        """CPU seconds (Python, JVM) at time ``t``, linearly interpolated between samples."""
        s = self.samples
        times = [x.t for x in s]
        i = bisect.bisect_left(times, t)
        if i <= 0:
            return s[0].py_cpu, s[0].jvm_cpu
        if i >= len(s):
            return s[-1].py_cpu, s[-1].jvm_cpu
        a, b = s[i - 1], s[i]
        f = (t - a.t) / (b.t - a.t) if b.t > a.t else 0.0
        return a.py_cpu + f * (b.py_cpu - a.py_cpu), a.jvm_cpu + f * (b.jvm_cpu - a.jvm_cpu)

    def cpu_split(self, stages: Sequence[tuple[str, float, float]]) -> dict[str, dict[str, float]]:
        """Wall, Python CPU and JVM CPU seconds, and peak RSS, of each (name, start, end) stage."""
        out: dict[str, dict[str, float]] = {}
        for name, t0, t1 in stages:
            p0, j0 = self._cpu_at(t0)
            p1, j1 = self._cpu_at(t1)
            inside = [x for x in self.samples if t0 <= x.t <= t1] or [
                min(self.samples, key=lambda x: abs(x.t - t1))]
            out[name] = {"wall": round(t1 - t0, 3), "py_cpu": round(p1 - p0, 2), "jvm_cpu": round(j1 - j0, 2),
                         "py_rss_peak": max(x.py_rss for x in inside),
                         "jvm_rss_peak": max(x.jvm_rss for x in inside),
                         "sum_rss_peak": max(x.py_rss + x.jvm_rss for x in inside)}
        return out


# ==================================================================================================
# Worker side: one measurement in this (fresh) process
# ==================================================================================================
def _settings() -> GraphSettings:
    """Settings from the environment the orchestrator prepared (PHENOKG_HOME, PHENOKG_DB_HEAP)."""
    settings = GraphSettings()
    if not settings.embedded:
        raise SystemExit("NEO4J_URI is set: this benchmark measures the embedded server only")
    return settings


def _verify(graph: Any) -> dict[str, Any]:
    """Counts to check against the release, read back from the graph."""
    from kg.ingest.build import counts

    c = counts(graph)
    by_source = {r["source"]: int(r["n"]) for r in graph.read(Q_DISEASES_BY_SOURCE)}
    total_rows = sum(int(graph.read(q)[0]["n"] or 0) for q in Q_SOURCE_ROWS.values())
    pack_rows = sum(int(graph.read(q, pack=PACK_SOURCE)[0]["n"] or 0) for q in Q_PACK_ROWS.values())
    found = {
        "live_phenotypes": c["phenotypes"],
        "is_a": c["is_a"],
        "hpoa_diseases": sum(n for s, n in by_source.items() if s != PACK_SOURCE),
        "pack_findings": by_source.get(PACK_SOURCE, 0),
        "source_rows": total_rows - pack_rows,
    }
    return {"counts": c, "diseases_by_source": by_source, "source_rows_total": total_rows,
            "source_rows_pack": pack_rows, "checked": found,
            "ok": all(found[k] == v for k, v in EXPECTED.items())}


def _start_server(settings: GraphSettings) -> tuple[EmbeddedServer, float, int]:
    server = EmbeddedServer(settings)
    if server.status() is not None:
        raise SystemExit(f"a server already runs on {settings.home}; refusing to measure it")
    t0 = time.perf_counter()
    state = server.start()
    return server, time.perf_counter() - t0, state.pid


def worker_build(interval: float) -> dict[str, Any]:
    """``build()`` on PHENOKG_HOME (fresh or already built), sampled; then the counts checked."""
    from kg.ingest.build import build
    from kg.store.graph import connect

    settings = _settings()
    server, start_s, pid = _start_server(settings)
    result: dict[str, Any] = {"server_start_s": round(start_s, 3), "jvm_pid": pid,
                              "heap": settings.embedded_heap}
    try:
        with Sampler(pid, interval) as sampler:
            t0 = time.perf_counter()
            graph = connect(settings)
            t1 = time.perf_counter()
            report = build(graph, progress=False)
            t2 = time.perf_counter()
        # Stage boundaries, rebuilt from the report's laps (in the order build() records them).
        stages: list[tuple[str, float, float]] = []
        clock = t1
        for name, seconds in report.timings.items():
            if name == "total":
                continue
            stages.append((name, clock, clock + seconds))
            clock += seconds
        stages.append(("counts+provenance", clock, t2))
        split = sampler.cpu_split([("connect", t0, t1), *stages, ("build() total", t1, t2)])
        result.update({
            "connect_s": round(t1 - t0, 3),
            "build_wall_s": round(t2 - t1, 3),
            "parse_s": report.timings["parse"],
            "database_s": round(report.timings["total"] - report.timings["parse"], 3),
            "timings": report.timings,
            "changes": report.changes,
            "memory": sampler.memory(),
            "cpu": split,
            "others": sampler.others(),
        })
        result["verify"] = _verify(graph)
        graph.driver.close()
    finally:
        t3 = time.perf_counter()
        server.stop()
        result["server_stop_s"] = round(time.perf_counter() - t3, 3)
    result["disk_bytes"] = sum(f.stat().st_size for f in settings.db_dir.rglob("*") if f.is_file())
    return result


def worker_baseline(interval: float) -> dict[str, Any]:
    """The plain UNWIND-batch load (MERGE + SET +=, batches of 1,000) of the same data on a fresh home."""
    from kg.ingest import build as B
    from kg.store.graph import connect
    from kg.store.migrations import migrate

    settings = _settings()
    server, start_s, pid = _start_server(settings)
    result: dict[str, Any] = {"server_start_s": round(start_s, 3), "jvm_pid": pid,
                              "heap": settings.embedded_heap}
    try:
        with Sampler(pid, interval) as sampler:
            t0 = time.perf_counter()
            graph = connect(settings)
            marks: list[tuple[str, float, float]] = [("connect", t0, time.perf_counter())]

            def lap(name: str, fn: Callable[[], object]) -> None:
                start = time.perf_counter()
                fn()
                marks.append((name, start, time.perf_counter()))
                say(f"  baseline {name}: {marks[-1][2] - start:.1f} s")

            t1 = time.perf_counter()
            data: Any = None

            def parse() -> None:
                nonlocal data
                data = B.load_sources()

            lap("parse", parse)
            lap("migrate", lambda: migrate(graph))
            lap("phenotypes", lambda: graph.write_batches(
                BASE_NODES["Phenotype"], [{"id": k, "props": v} for k, v in B.phenotype_props(data).items()],
                BATCH))

            def structure() -> None:
                for rel, query in BASE_STRUCTURAL.items():
                    rows = [{"source": a, "target": b} for a, b in B.structural_pairs(data, rel)]
                    graph.write_batches(query, rows, BATCH)

            lap("structure", structure)
            lap("diseases", lambda: graph.write_batches(
                BASE_NODES["Disease"], [{"id": k, "props": v} for k, v in B.disease_props(data).items()],
                BATCH))
            for rel, query in BASE_ANNOTATIONS.items():
                lap(rel.lower(), lambda rel=rel, query=query: graph.write_batches(  # type: ignore[misc]
                    query, [{"source": a, "target": b, "props": p}
                            for (a, b), p in B.annotation_props(data, rel).items()], BATCH))
            lap("indexes", lambda: B.ensure_search_indexes(graph))
            t2 = time.perf_counter()
        split = sampler.cpu_split([*marks, ("load total", t1, t2)])
        parse_s = marks[1][2] - marks[1][1]
        result.update({
            "connect_s": round(marks[0][2] - marks[0][1], 3),
            "build_wall_s": round(t2 - t1, 3),
            "parse_s": round(parse_s, 3),
            "database_s": round(t2 - t1 - parse_s, 3),
            "timings": {name: round(b - a, 3) for name, a, b in marks[1:]} | {"total": round(t2 - t1, 3)},
            "memory": sampler.memory(),
            "cpu": split,
            "others": sampler.others(),
        })
        result["verify"] = _verify(graph)
        graph.driver.close()
    finally:
        t3 = time.perf_counter()
        server.stop()
        result["server_stop_s"] = round(time.perf_counter() - t3, 3)
    result["disk_bytes"] = sum(f.stat().st_size for f in settings.db_dir.rglob("*") if f.is_file())
    return result


# ==================================================================================================
# Orchestrator side
# ==================================================================================================
def _worker_env(home: Path, heap: str | None) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE", "PHENOKG_BOLT_PORT",
                "PHENOKG_HTTP_PORT"):
        env.pop(key, None)
    env["PHENOKG_HOME"] = str(home)
    if heap:
        env["PHENOKG_DB_HEAP"] = heap
    return env


def run_worker(kind: str, home: Path, heap: str | None, interval: float) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--interval", str(interval)]
    load_before = os.getloadavg()[0]
    proc = subprocess.run(cmd, env=_worker_env(home, heap), stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"worker {kind} failed with exit code {proc.returncode}")
    result = cast(dict[str, Any], json.loads(proc.stdout.strip().splitlines()[-1]))
    result["load1_before"], result["load1_after"] = round(load_before, 2), round(os.getloadavg()[0], 2)
    return result


def cleanup(home: Path) -> None:
    """Stop any server still serving ``home`` (it should not be) and delete the home."""
    with contextlib.suppress(Exception):
        settings = GraphSettings(PHENOKG_HOME=home, NEO4J_URI=None)
        if EmbeddedServer(settings).stop():
            say(f"stopped a leftover server on {home}")
    shutil.rmtree(home, ignore_errors=True)


def machine() -> dict[str, Any]:
    cpu = cpu_model()
    try:
        arcade = metadata.version("arcadedb-embedded")
    except metadata.PackageNotFoundError:
        arcade = "not installed"
    return {
        "cpu": cpu, "nproc": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(), "arcadedb_embedded": arcade, "arcadedb_pinned": ARCADEDB_VERSION,
        "heap": os.environ.get("PHENOKG_DB_HEAP") or GraphSettings.model_fields["embedded_heap"].default,
    }


def _mb(n: float) -> str:
    return f"{n / MB:,.0f}"


def _med(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    fresh: list[dict[str, Any]] = results["fresh"]
    rebuild: dict[str, Any] | None = results.get("rebuild")
    base: dict[str, Any] | None = results.get("baseline")
    cols: list[tuple[str, Callable[[Callable[[dict[str, Any]], float]], float]]] = []
    label = "fresh build" + (f" (median of {len(fresh)})" if len(fresh) > 1 else "")
    cols.append((label, lambda f: _med([f(r) for r in fresh])))
    if rebuild:
        cols.append(("rebuild (no change)", lambda f: f(rebuild)))
    if base:
        cols.append(("baseline: plain UNWIND MERGE", lambda f: f(base)))

    def mem(key: str) -> Callable[[dict[str, Any]], float]:
        return lambda r: float(r["memory"][key])

    def cpu(stage: str, key: str) -> Callable[[dict[str, Any]], float]:
        return lambda r: float(r["cpu"].get(stage, r["cpu"].get("load total", {})).get(key, float("nan")))

    rows: list[tuple[str, Callable[[dict[str, Any]], float], Callable[[float], str]]] = [
        ("server start (s)", lambda r: r["server_start_s"], lambda v: f"{v:.1f}"),
        ("parse (s)", lambda r: r["parse_s"], lambda v: f"{v:.1f}"),
        ("database (s)", lambda r: r["database_s"], lambda v: f"{v:.1f}"),
        ("**build total: parse + database (s)**", lambda r: r["build_wall_s"], lambda v: f"**{v:.1f}**"),
        ("peak RSS Python (MB)", mem("peak_py_rss"), _mb),
        ("peak RSS JVM (MB)", mem("peak_jvm_rss"), _mb),
        ("**peak RSS Python + JVM, same instant (MB)**", mem("peak_sum_rss"), lambda v: f"**{_mb(v)}**"),
        ("sum of the two peaks (MB)", mem("sum_of_peaks"), _mb),
        ("CPU Python during build (s)", cpu("build() total", "py_cpu"), lambda v: f"{v:.1f}"),
        ("CPU JVM during build (s)", cpu("build() total", "jvm_cpu"), lambda v: f"{v:.1f}"),
        ("CPU Python + JVM (s)",
         lambda r: cpu("build() total", "py_cpu")(r) + cpu("build() total", "jvm_cpu")(r),
         lambda v: f"{v:.1f}"),
        ("other processes' CPU meanwhile (cores busy, avg)", lambda r: r.get("others", {}).get(
            "others_cores_avg", float("nan")), lambda v: f"{v:.2f}"),
        ("1-min load average at start", lambda r: r.get("load1_before", float("nan")), lambda v: f"{v:.2f}"),
        ("database size on disk (MB)", lambda r: r["disk_bytes"], _mb),
        ("server stop (s)", lambda r: r["server_stop_s"], lambda v: f"{v:.1f}"),
    ]
    out = ["## Graph build benchmark\n",
           f"Machine: {m['cpu']}, {m['nproc']} cores, {m['memory_gb']} GiB RAM; Python {m['python']}; "
           f"arcadedb-embedded {m['arcadedb_embedded']}; JVM heap `-Xmx{m['heap']}`; "
           f"RSS/CPU sampled every {fresh[0]['memory']['interval_s'] * 1000:.0f} ms.  "
           f"Load average before: {results['load_before']}, after: {results['load_after']}.\n",
           "| measure | " + " | ".join(c[0] for c in cols) + " |",
           "|---|" + "---:|" * len(cols)]
    for name, getter, fmt in rows:
        out.append(f"| {name} | " + " | ".join(fmt(agg(getter)) for _, agg in cols) + " |")

    # Stage table: wall and CPU split per stage.
    runs: list[tuple[str, dict[str, Any]]] = [("fresh run 1", fresh[0])]
    if rebuild:
        runs.append(("rebuild", rebuild))
    if base:
        runs.append(("baseline", base))
    out += ["", "Stages (wall s / Python CPU s / JVM CPU s):", "",
            "| stage | " + " | ".join(n for n, _ in runs) + " |", "|---|" + "---:|" * len(runs)]
    stage_names: list[str] = []
    for _, r in runs:
        stage_names += [s for s in r["cpu"]
                        if s not in stage_names and s not in ("build() total", "load total")]
    for stage in stage_names:
        cells = []
        for _, r in runs:
            c = r["cpu"].get(stage)
            cells.append(f"{c['wall']:.1f} / {c['py_cpu']:.1f} / {c['jvm_cpu']:.1f}" if c else "–")
        out.append(f"| {stage} | " + " | ".join(cells) + " |")
    out += ["", "Peak RSS within each stage (Python MB / JVM MB / both at the same instant MB):", "",
            "| stage | " + " | ".join(n for n, _ in runs) + " |", "|---|" + "---:|" * len(runs)]
    for stage in stage_names:
        cells = []
        for _, r in runs:
            c = r["cpu"].get(stage)
            cells.append(f"{_mb(c['py_rss_peak'])} / {_mb(c['jvm_rss_peak'])} / {_mb(c['sum_rss_peak'])}"
                         if c else "–")
        out.append(f"| {stage} | " + " | ".join(cells) + " |")

    if len(fresh) > 1:
        out += ["", "Fresh builds, each on a new home:", "",
                "| run | start s | parse s | database s | total s | CPU Py + JVM s | peak Py+JVM MB "
                "| load at start | others' cores |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for i, r in enumerate(fresh, 1):
            c = r["cpu"]["build() total"]
            out.append(f"| {i} | {r['server_start_s']:.1f} | {r['parse_s']:.1f} | {r['database_s']:.1f} | "
                       f"{r['build_wall_s']:.1f} | {c['py_cpu']:.1f} + {c['jvm_cpu']:.1f} | "
                       f"{_mb(r['memory']['peak_sum_rss'])} | {r.get('load1_before', float('nan')):.2f} | "
                       f"{r.get('others', {}).get('others_cores_avg', float('nan')):.2f} |")

    # Counts check.
    checked = [("fresh run 1", fresh[0])] + ([("rebuild", rebuild)] if rebuild else []) + (
        [("baseline", base)] if base else [])
    out += ["", "| count | expected | " + " | ".join(n for n, _ in checked) + " |",
            "|---|---:|" + "---:|" * len(checked)]
    for key, want in EXPECTED.items():
        cells = []
        for _, r in checked:
            got = r["verify"]["checked"][key]
            cells.append(f"{got:,}" + ("" if got == want else " **MISMATCH**"))
        out.append(f"| {key} | {want:,} | " + " | ".join(cells) + " |")
    if rebuild:
        changed = {k: v for k, v in rebuild["changes"].items() if any(v.values())}
        out.append(f"\nRebuild changes: {'none (every diff empty)' if not changed else json.dumps(changed)}.")

    total = _med([r["build_wall_s"] for r in fresh])
    db = _med([r["database_s"] for r in fresh])
    peak = _med([r["memory"]["peak_sum_rss"] for r in fresh])

    def verdict(value: float, limit: float, unit: str) -> str:
        if value <= limit:
            return f"met ({limit - value:.1f} {unit} to spare)" if unit == "s" else \
                f"met ({_mb(limit - value)} MB to spare)"
        if unit == "s":
            return f"**missed by {value - limit:.1f} s**"
        return f"**missed by {_mb(value - limit)} MB**"

    out += ["", "Targets (fresh build):",
            f"- build total {total:.1f} s vs 45 s: {verdict(total, TARGET_S, 's')}; "
            f"vs 60 s hard limit: {verdict(total, HARD_LIMIT_S, 's')}",
            f"- database part alone {db:.1f} s vs 45 s: {verdict(db, TARGET_S, 's')}",
            f"- peak RSS Python + JVM {_mb(peak)} MB vs 1,200 MB: {verdict(peak, TARGET_BYTES, 'B')}",
            "- counts: " + ("all as expected" if all(r["verify"]["ok"] for _, r in checked)
                            else "**MISMATCH**")]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                 epilog="See the module docstring for what is measured.")
    ap.add_argument("--runs", type=int, default=1, help="fresh builds, each on a new home (median reported)")
    ap.add_argument("--heap", default=None,
                    help="JVM heap, passed as PHENOKG_DB_HEAP (default: the settings default, "
                         f"{GraphSettings.model_fields['embedded_heap'].default})")
    ap.add_argument("--baseline", choices=("full", "none"), default="full",
                    help="also load the plain UNWIND-MERGE baseline on another fresh home (default: full)")
    ap.add_argument("--no-rebuild", action="store_true", help="skip the second (no-op) build")
    ap.add_argument("--interval", type=float, default=0.05, help="RSS/CPU sampling interval in seconds")
    ap.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write all figures as JSON")
    ap.add_argument("--worker", choices=("build", "baseline"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:  # one measurement in this fresh process; result as one JSON line on stdout
        result = worker_build(args.interval) if args.worker == "build" else worker_baseline(args.interval)
        print(json.dumps(result))
        return 0

    if args.heap:
        os.environ["PHENOKG_DB_HEAP"] = args.heap
    results: dict[str, Any] = {"machine": machine(), "load_before": load_average()}
    say(f"load average {results['load_before']}; heap {results['machine']['heap']}")
    homes: list[Path] = []

    def new_home() -> Path:
        home = Path(tempfile.mkdtemp(prefix="phenokg-bench-"))
        homes.append(home)
        return home

    try:
        results["fresh"] = []
        for i in range(max(1, args.runs)):
            home = new_home()
            say(f"fresh build {i + 1}/{args.runs} on {home}")
            r = run_worker("build", home, args.heap, args.interval)
            results["fresh"].append(r)
            say(f"  start {r['server_start_s']:.1f} s, parse {r['parse_s']:.1f} s, "
                f"database {r['database_s']:.1f} s, peak Py+JVM {_mb(r['memory']['peak_sum_rss'])} MB, "
                f"counts ok: {r['verify']['ok']}")
            if i == 0 and not args.no_rebuild:
                say("rebuild (server restarted, nothing changes)")
                r = run_worker("build", home, args.heap, args.interval)
                results["rebuild"] = r
                say(f"  start {r['server_start_s']:.1f} s, parse {r['parse_s']:.1f} s, "
                    f"database {r['database_s']:.1f} s, peak Py+JVM {_mb(r['memory']['peak_sum_rss'])} MB")
            cleanup(home)
        if args.baseline == "full":
            home = new_home()
            say(f"baseline: plain UNWIND MERGE load on {home}")
            r = run_worker("baseline", home, args.heap, args.interval)
            results["baseline"] = r
            say(f"  database {r['database_s']:.1f} s, peak Py+JVM {_mb(r['memory']['peak_sum_rss'])} MB")
            cleanup(home)
    finally:
        for home in homes:
            cleanup(home)
    results["load_after"] = load_average()
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        say(f"wrote {args.json}")
    ok = all(r["verify"]["ok"] for r in results["fresh"]) and all(
        results[k]["verify"]["ok"] for k in ("rebuild", "baseline") if k in results)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
