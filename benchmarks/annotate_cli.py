"""Benchmark ``phenokg annotate`` on 1,000 short reports: startup, time to first output line, throughput.

Run from the repository root::

    .venv/bin/python benchmarks/annotate_cli.py                        # builds a graph on a temporary home
    .venv/bin/python benchmarks/annotate_cli.py --home ~/.local/share/phenokg --repeats 5 --json /tmp/a.json

What it does:

1. **Reports**: ``benchmarks/linker_eval.py --write-reports DIR`` writes 1,000 real short reports (Indiana
   University chest X-ray FINDINGS + IMPRESSION when ``--iu`` exists; else NegEx sentences, else GSC+
   sentences, 4 per report).  ``--reports-dir`` reuses a directory of ``*.txt`` files instead.
2. **Graph**: ``--home`` names an already built ``PHENOKG_HOME``; without it the graph is built once on a
   temporary home (deleted at the end; a user's data is never touched).
3. **In-process comparison** (server running): the lexicon query, the ``Linker`` construction, then
   ``Linker.annotate`` over the same 1,000 texts (median of ``--repeats``), and the same plus
   ``Mention.to_dict`` + ``json.dumps`` (what the CLI does per file).
4. **The real CLI**, ``phenokg annotate DIR/*.txt`` (all 1,000 paths on one command line, stdout a pipe),
   ``--repeats`` times in each of two situations:

   * *cold*: no server running -- the CLI starts the embedded JVM, reads the lexicon, stops the JVM, then
     annotates (what a user gets by default);
   * *warm*: the server already running (``phenokg db start`` first, ``phenokg db stop`` after).

   Measured from the spawn: total wall time, time to the first output line (startup + lexicon load), and
   reports/s after the first output (lines after the first chunk / time from first to last chunk).  The CLI
   runs with ``PYTHONUNBUFFERED=1`` (as in the environment the published figures were taken in), so every
   JSON line reaches the pipe when it is written and the first line's time is exact; block-buffered, it
   would arrive with the first ~8 KB of output (about 25 reports, ~15 ms later).  The output is checked:
   one JSON line per file and the same number of mentions as in-process.

Progress goes to stderr; the Markdown report to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _common import cpu_model, load_average, progress  # noqa: E402

from kg.config import GraphSettings  # noqa: E402
from kg.store.embedded import EmbeddedServer  # noqa: E402

DEFAULT_IU = Path("/tmp/negex/indiana_reports.csv")
DEFAULT_NEGEX = Path("/tmp/negex/Annotations-1-120.txt")
DEFAULT_GSC = ROOT.parent / "shared" / "data" / "GSCplus_dev_gold.tsv"


say = progress("annotate_cli")


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE", "PHENOKG_BOLT_PORT",
                "PHENOKG_HTTP_PORT"):
        env.pop(key, None)
    env["PHENOKG_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"  # each output line reaches the pipe as written: an exact first-line time
    return env


def _settings(home: Path) -> GraphSettings:
    return GraphSettings(PHENOKG_HOME=home, NEO4J_URI=None, PHENOKG_BOLT_PORT=0, PHENOKG_HTTP_PORT=0)


# ---- inputs ---------------------------------------------------------------------------------------
def write_reports(out: Path, n: int, iu: Path, negex: Path, gsc: Path) -> str:
    """Write ``n`` reports with linker_eval.py; returns a description of their source."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "linker_eval.py"), "--reports", str(n), "--repeats", "1",
           "--write-reports", str(out), "--gsc", str(gsc)]
    source = "GSC+ sentences, 4 per report"
    if negex.exists():
        cmd += ["--negex", str(negex)]
        source = "NegEx sentences, 4 per report"
    if iu.exists():
        cmd += ["--iu", str(iu)]
        source = "IU chest X-ray FINDINGS + IMPRESSION"
    say(f"writing {n} reports: {' '.join(cmd[1:])}")
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    return source


def build_home(home: Path) -> dict[str, Any]:
    """Build the graph on a new home (server started and stopped here)."""
    from kg.ingest.build import build
    from kg.store.graph import connect

    settings = _settings(home)
    server = EmbeddedServer(settings)
    server.start()
    try:
        graph = connect(settings)
        report = build(graph, progress=False)
        graph.driver.close()
    finally:
        server.stop()
    return {"counts": report.counts, "timings": report.timings}


# ---- in-process -----------------------------------------------------------------------------------
def in_process(home: Path, texts: list[str], repeats: int) -> dict[str, Any]:
    """Lexicon load and Linker.annotate on the texts, with the server this function starts (or finds)."""
    from kg.ids import PHENOTYPIC_ABNORMALITY
    from kg.store import queries as Q
    from kg.store.graph import connect
    from kg.text.linker import Linker, TermLabels

    settings = _settings(home)
    server = EmbeddedServer(settings)
    running = server.status() is not None
    t0 = time.perf_counter()
    if not running:
        server.start()
    t1 = time.perf_counter()
    try:
        graph = connect(settings)
        t2 = time.perf_counter()
        rows = graph.read(Q.TERM_LABELS, branch=PHENOTYPIC_ABNORMALITY)
        t3 = time.perf_counter()
        linker = Linker(TermLabels(r["id"], r["name"] or "", tuple(r["synonyms"] or ())) for r in rows)
        t4 = time.perf_counter()
        graph.driver.close()
    finally:
        t5 = time.perf_counter()
        if not running:
            server.stop()
        t6 = time.perf_counter()
    annotate_runs, json_runs = [], []
    mentions = negated = 0
    for _ in range(repeats):
        a = time.perf_counter()
        results = [linker.annotate(t) for t in texts]
        annotate_runs.append(time.perf_counter() - a)
        mentions = sum(len(r) for r in results)
        negated = sum(m.negated for r in results for m in r)
        a = time.perf_counter()
        for i, text in enumerate(texts):
            mentions_json = [m.to_dict() for m in linker.annotate(text)]
            json.dumps({"file": f"report_{i:04d}.txt", "mentions": mentions_json}, ensure_ascii=False)
        json_runs.append(time.perf_counter() - a)
    return {
        "server_start_s": round(t1 - t0, 3) if not running else None,
        "connect_s": round(t2 - t1, 3),
        "lexicon_query_s": round(t3 - t2, 3),
        "linker_build_s": round(t4 - t3, 3),
        "server_stop_s": round(t6 - t5, 3) if not running else None,
        "terms": len(rows),
        "surface_forms": linker.size,
        "annotate_s": statistics.median(annotate_runs),
        "annotate_runs_s": annotate_runs,
        "annotate_json_s": statistics.median(json_runs),
        "mentions": mentions,
        "negated": negated,
    }


# ---- the real CLI ---------------------------------------------------------------------------------
@dataclass
class CliRun:
    mode: str
    wall_s: float
    first_line_s: float
    last_line_s: float
    lines_in_first_chunk: int
    lines: int
    mentions: int
    reports_per_s_after_first: float
    returncode: int
    cpu_s: float = float("nan")  # the CLI (and a JVM it started and reaped) plus a running server's JVM
    others_cores_avg: float = float("nan")  # CPU other processes used meanwhile, in cores


def _busy_cpu() -> float:
    c = psutil.cpu_times()
    return c.user + c.nice + c.system + getattr(c, "irq", 0.0) + getattr(c, "softirq", 0.0)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _proc_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        c = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return c.user + c.system


def run_cli(cmd: list[str], env: dict[str, str], mode: str, server_pid: int | None = None) -> CliRun:
    """Spawn the CLI; timestamp every chunk of stdout as it arrives."""
    with tempfile.TemporaryFile() as err:
        busy0, kids0, server0 = _busy_cpu(), _children_cpu(), _proc_cpu(server_pid)
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env)
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        chunks: list[tuple[float, int]] = []
        data = bytearray()
        while True:
            block = os.read(fd, 1 << 16)
            if not block:
                break
            chunks.append((time.perf_counter(), block.count(b"\n")))
            data += block
        proc.wait()
        t_end = time.perf_counter()
        ours = _children_cpu() - kids0 + _proc_cpu(server_pid) - server0
        others = max(0.0, _busy_cpu() - busy0 - ours)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"phenokg annotate failed ({proc.returncode}): {stderr[-2000:]}")
    with_lines = [(t, n) for t, n in chunks if n]
    first_t, n0 = with_lines[0]
    last_t = with_lines[-1][0]
    records = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
    rate = (len(records) - n0) / (last_t - first_t) if last_t > first_t else float("nan")
    return CliRun(mode=mode, wall_s=t_end - t0, first_line_s=first_t - t0, last_line_s=last_t - t0,
                  lines_in_first_chunk=n0, lines=len(records),
                  mentions=sum(len(r["mentions"]) for r in records), reports_per_s_after_first=rate,
                  returncode=proc.returncode, cpu_s=round(ours, 2),
                  others_cores_avg=round(others / (t_end - t0), 2))


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


# ---- report ---------------------------------------------------------------------------------------
def _median(runs: list[CliRun], key: str) -> float:
    return float(statistics.median(getattr(r, key) for r in runs))


def render(res: dict[str, Any]) -> str:
    m, ip = res["machine"], res["in_process"]
    n = res["reports"]
    out = ["## phenokg annotate benchmark\n",
           f"Machine: {m['cpu']}, {m['nproc']} cores; Python {m['python']}; "
           f"arcadedb-embedded {m['arcadedb']}.  "
           f"Reports: {n:,} files ({res['source']}), {res['chars_per_report']:.0f} characters on average.  "
           f"Lexicon: {ip['terms']:,} terms, {ip['surface_forms']:,} surface forms.  "
           f"Load average before: {res['load_before']}, after: {res['load_after']}.\n",
           f"`phenokg annotate DIR/*.txt` ({n:,} paths, stdout a pipe), "
           f"median of {res['repeats']} runs each:\n",
           "| measure | cold (CLI starts + stops the JVM) | warm (server already running) |",
           "|---|---:|---:|"]
    cold: list[CliRun] = [CliRun(**r) for r in res["cli"].get("cold", [])]
    warm: list[CliRun] = [CliRun(**r) for r in res["cli"].get("warm", [])]

    def cell(runs: list[CliRun], key: str, fmt: str) -> str:
        return format(_median(runs, key), fmt) if runs else "–"

    out += [
        f"| **total wall time (s)** | **{cell(cold, 'wall_s', '.2f')}** | "
        f"**{cell(warm, 'wall_s', '.2f')}** |",
        f"| time to first output line (s) | {cell(cold, 'first_line_s', '.2f')} | "
        f"{cell(warm, 'first_line_s', '.2f')} |",
        f"| reports/s after the first output | {cell(cold, 'reports_per_s_after_first', ',.0f')} | "
        f"{cell(warm, 'reports_per_s_after_first', ',.0f')} |",
        "| last line → exit (s) | "
        + " | ".join(f"{statistics.median(r.wall_s - r.last_line_s for r in runs):.2f}" if runs else "–"
                     for runs in (cold, warm)) + " |",
        "| CPU used by the CLI + JVM (s) | "
        + " | ".join(f"{statistics.median(r.cpu_s for r in runs):.1f}" if runs else "–"
                     for runs in (cold, warm)) + " |",
        "| other processes' CPU meanwhile (cores busy, avg) | "
        + " | ".join(f"{statistics.median(r.others_cores_avg for r in runs):.2f}" if runs else "–"
                     for runs in (cold, warm)) + " |",
        "| output lines / mentions (first run) | "
        + " | ".join(f"{runs[0].lines:,} / {runs[0].mentions:,}" if runs else "–"
                     for runs in (cold, warm)) + " |",
    ]
    out += ["", "Per run (wall s / first line s / others' cores): "
            + "; ".join(f"{r.mode} {r.wall_s:.2f} / {r.first_line_s:.2f} / {r.others_cores_avg:.2f}"
                        for r in cold + warm) + "."]
    parts = res.get("startup_parts", {})
    out += ["", "Comparison, in-process (same texts, same lexicon):", "",
            "| measure | value |", "|---|---:|"]
    if parts.get("help_s") is not None:
        out.append(f"| `phenokg --help` (Python + CLI import) | {parts['help_s']:.2f} s |")
    if parts.get("db_start_s") is not None:
        out.append(f"| `phenokg db start` (detached JVM, database reopened) | {parts['db_start_s']:.2f} s |")
    if ip.get("server_start_s") is not None:
        out.append(f"| server start (in-process `EmbeddedServer.start`) | {ip['server_start_s']:.2f} s |")
    out += [
        f"| lexicon query (TERM_LABELS over Bolt) | {ip['lexicon_query_s']:.2f} s |",
        f"| `Linker` construction | {ip['linker_build_s']:.2f} s |",
    ]
    if ip.get("server_stop_s") is not None:
        out.append(f"| server stop | {ip['server_stop_s']:.2f} s |")
    out += [
        f"| **`Linker.annotate` × {n:,}** | "
        f"**{ip['annotate_s']:.3f} s = {n / ip['annotate_s']:,.0f} reports/s** |",
        f"| annotate + `to_dict` + `json.dumps` × {n:,} | {ip['annotate_json_s']:.3f} s = "
        f"{n / ip['annotate_json_s']:,.0f} reports/s |",
        f"| mentions (negated) | {ip['mentions']:,} ({ip['negated']:,}) |",
    ]
    ok = all(r.lines == n and r.mentions == ip["mentions"] for r in cold + warm)
    out.append(f"\nCheck: every CLI run printed {n:,} JSON lines with the in-process mention count: "
               f"{'yes' if ok else '**NO**'}.")
    return "\n".join(out) + "\n"


def machine() -> dict[str, Any]:
    cpu = cpu_model()
    try:
        arcade = metadata.version("arcadedb-embedded")
    except metadata.PackageNotFoundError:
        arcade = "not installed"
    return {"cpu": cpu, "nproc": os.cpu_count(), "python": platform.python_version(), "arcadedb": arcade}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                 epilog="See the module docstring for what is measured.")
    ap.add_argument("--home", type=Path, default=None,
                    help="an existing PHENOKG_HOME with the graph built "
                         "(default: build one on a temporary home)")
    ap.add_argument("--reports-dir", type=Path, default=None,
                    help="existing directory of *.txt reports (default: write them with linker_eval.py)")
    ap.add_argument("--reports", type=int, default=1000, help="number of reports to write (default: 1000)")
    ap.add_argument("--iu", type=Path, default=DEFAULT_IU,
                    help="IU indiana_reports.csv (default: %(default)s)")
    ap.add_argument("--negex", type=Path, default=DEFAULT_NEGEX,
                    help="NegEx Annotations-1-120.txt (default: %(default)s)")
    ap.add_argument("--gsc", type=Path, default=DEFAULT_GSC, help="GSC+ gold TSV, the fallback text")
    ap.add_argument("--repeats", type=int, default=3, help="runs per situation (median reported; default 3)")
    ap.add_argument("--modes", default="cold,warm", help="comma-separated: cold, warm (default: both)")
    ap.add_argument("--phenokg", type=Path, default=Path(sys.executable).parent / "phenokg",
                    help="the phenokg executable (default: next to this Python)")
    ap.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write all figures as JSON")
    args = ap.parse_args(argv)

    phenokg = args.phenokg if args.phenokg.exists() else Path(shutil.which("phenokg") or "phenokg")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    res: dict[str, Any] = {"machine": machine(), "load_before": load_average(), "repeats": args.repeats,
                           "cli": {}, "startup_parts": {}}
    say(f"load average {res['load_before']}")
    temp_dirs: list[Path] = []
    home = args.home
    started_warm = False
    try:
        # Reports.
        if args.reports_dir:
            reports_dir = args.reports_dir
            res["source"] = f"files in {reports_dir}"
        else:
            reports_dir = Path(tempfile.mkdtemp(prefix="phenokg-reports-"))
            temp_dirs.append(reports_dir)
            res["source"] = write_reports(reports_dir, args.reports, args.iu, args.negex, args.gsc)
        files = sorted(reports_dir.glob("*.txt"))
        if not files:
            raise SystemExit(f"no *.txt reports in {reports_dir}")
        texts = [f.read_text(encoding="utf-8") for f in files]
        res["reports"] = len(files)
        res["chars_per_report"] = sum(len(t) for t in texts) / len(texts)

        # Graph.
        if home is None:
            home = Path(tempfile.mkdtemp(prefix="phenokg-bench-"))
            temp_dirs.append(home)
            say(f"building the graph on {home} (once)")
            t0 = time.perf_counter()
            res["build"] = build_home(home)
            say(f"  built in {time.perf_counter() - t0:.1f} s")
        env = _env(home)
        already = EmbeddedServer(_settings(home)).status() is not None
        if already and "cold" in modes:
            say("a server already runs on this home: the cold situation cannot be measured; skipping it")
            modes = [m for m in modes if m != "cold"]

        say("in-process: lexicon load and Linker.annotate")
        res["in_process"] = in_process(home, texts, max(1, args.repeats))
        res["startup_parts"]["help_s"] = min(timed([str(phenokg), "--help"], env) for _ in range(3))

        cmd = [str(phenokg), "annotate", *map(str, files)]
        if "cold" in modes:
            runs = []
            for i in range(args.repeats):
                say(f"cold run {i + 1}/{args.repeats}")
                runs.append(run_cli(cmd, env, "cold"))
            res["cli"]["cold"] = [asdict(r) for r in runs]
        if "warm" in modes:
            if not already:
                res["startup_parts"]["db_start_s"] = timed([str(phenokg), "db", "start"], env)
                started_warm = True
            state = EmbeddedServer(_settings(home)).status()
            runs = []
            for i in range(args.repeats):
                say(f"warm run {i + 1}/{args.repeats}")
                runs.append(run_cli(cmd, env, "warm", state.pid if state else None))
            res["cli"]["warm"] = [asdict(r) for r in runs]
    finally:
        if home is not None and (started_warm or home in temp_dirs):
            with contextlib.suppress(Exception):
                EmbeddedServer(_settings(home)).stop()
        for d in temp_dirs:
            shutil.rmtree(d, ignore_errors=True)
    res["load_after"] = load_average()
    print(render(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
        say(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
