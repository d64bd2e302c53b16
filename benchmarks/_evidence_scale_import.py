"""The evidence scale benchmark's import stages (``benchmarks/evidence_scale.py``): ``phenokg evidence import`` as
a child process with its peak RSS sampled, and the kill/rerun resume check.

Imported by ``benchmarks/evidence_scale.py``, which puts ``benchmarks/`` on ``sys.path``."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _evidence_scale_home import ROOT, cli_env, copy_home, db_start, db_stop, graph_counts, graph_of, say, top_phenotype


class RssSampler(threading.Thread):
    """Peak RSS every ``interval`` s of a process tree (minus the JVM) and of the database JVM."""

    def __init__(self, root_pid: int, jvm_pid: int | None, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.root_pid, self.jvm_pid, self.interval = root_pid, jvm_pid, interval
        self.peak_python = self.peak_jvm = self.peak_total = 0
        self.samples = 0
        self._halt = threading.Event()

    def _sample(self) -> None:
        import psutil

        python = jvm = 0
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.root_pid)
            for p in [root, *root.children(recursive=True)]:
                if p.pid != self.jvm_pid:
                    with contextlib.suppress(psutil.Error):
                        python += p.memory_info().rss
        if self.jvm_pid:
            with contextlib.suppress(psutil.Error):
                jvm = psutil.Process(self.jvm_pid).memory_info().rss
        self.peak_python = max(self.peak_python, python)
        self.peak_jvm = max(self.peak_jvm, jvm)
        self.peak_total = max(self.peak_total, python + jvm)
        self.samples += 1

    def run(self) -> None:
        while not self._halt.is_set():
            self._sample()
            self._halt.wait(self.interval)

    def stop(self) -> dict[str, float]:
        self._halt.set()
        self.join(timeout=5)
        mb = 1024 * 1024
        return {"peak_rss_python_mb": round(self.peak_python / mb, 1), "peak_rss_jvm_mb": round(self.peak_jvm / mb, 1),
                "peak_rss_total_mb": round(self.peak_total / mb, 1), "rss_samples": self.samples}


def run_import(home: Path, manifest: Path, n: int, log: Path, *, kill_at_evidence: int | None = None,
               kill_after: float | None = None) -> dict[str, Any]:
    """``phenokg evidence import`` as a child process, sampled. SIGKILLed once the graph holds
    ``kill_at_evidence`` Evidence nodes (polled every 0.5 s) or ``kill_after`` s have passed, if given."""
    jvm = db_start(home)
    cmd = [sys.executable, "-m", "app.cli.main", "evidence", "import", str(manifest)]
    when = [f"{kill_at_evidence:,} Evidence nodes" if kill_at_evidence else "",
            f"{kill_after:.0f} s" if kill_after else ""]
    say(f"$ PHENOKG_HOME={home} phenokg evidence import {manifest}" +
        (f"  (SIGKILL at {' or '.join(w for w in when if w)})" if any(when) else ""))
    killed = False
    with log.open("w") as out, contextlib.ExitStack() as stack:
        graph = stack.enter_context(graph_of(home)) if kill_at_evidence else None
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=cli_env(home), cwd=ROOT, stdout=out, stderr=None)
        sampler = RssSampler(proc.pid, jvm)
        sampler.start()
        while proc.poll() is None:
            if kill_after is not None and time.perf_counter() - started >= kill_after:
                killed = True
            elif graph is not None and kill_at_evidence:
                with contextlib.suppress(Exception):
                    killed = graph.read("MATCH (e:Evidence) RETURN count(e) AS n")[0]["n"] >= kill_at_evidence
            if killed:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.5)
        proc.wait()
        wall = time.perf_counter() - started
        rss = sampler.stop()
    result: dict[str, Any] = {"pairs": n, "wall_s": round(wall, 2), "exit": proc.returncode, "killed": killed, **rss}
    if not killed:
        if proc.returncode != 0:
            raise RuntimeError(f"the import failed ({proc.returncode}); its output is in {log}")
        result["pairs_per_s"] = round(n / wall, 1)
        lines = [ln for ln in log.read_text().splitlines() if ln.strip().startswith("{")]
        if lines:
            result["report"] = json.loads(lines[-1])
    return result


def stage_import(home: Path, manifest: Path, n: int, folder: Path, data: Path) -> dict[str, Any]:
    """The clean import of ``manifest`` into ``home``, then its graph counts and heaviest phenotype."""
    result = run_import(home, manifest, n, folder / "import.log")
    say(f"import of {n:,}: {result['wall_s']} s, {result.get('pairs_per_s')} pairs/s, peak Python "
        f"{result['peak_rss_python_mb']} MB + JVM {result['peak_rss_jvm_mb']} MB")
    result["graph"] = graph_counts(home)
    result["top_phenotype"] = top_phenotype(home, data)
    return result


def stage_resume(base: Path, manifest: Path, n: int, folder: Path, clean: dict[str, Any] | None,
                 kill_at: float, kill_after_s: float | None, keep: bool) -> dict[str, Any]:
    """On a copy of ``base``: the import killed part way, run again, then checked for duplicates against
    ``clean`` (the clean import's figures, if any)."""
    home = folder / "home-resume"
    copy_home(base, home)
    try:
        first = run_import(home, manifest, n, folder / "resume-killed.log", kill_at_evidence=max(1, int(n * kill_at)),
                           kill_after=kill_after_s)
        at_kill = graph_counts(home)
        rerun = run_import(home, manifest, n, folder / "resume-rerun.log")
        after = graph_counts(home, duplicates=True)
        clean_graph = (clean or {}).get("graph") or {}
        same_edges = (after["shows"] == clean_graph.get("shows") and after["rules_out"] == clean_graph.get("rules_out")
                      ) if clean_graph else None
        ok = (after["evidence"] == after["evidence_ids"] == n and after["repeated_edges"] == 0
              and same_edges is not False)
        result = {"pairs": n, "killed_after_s": first["wall_s"], "killed": first["killed"],
                  "evidence_at_kill": at_kill["evidence"], "rerun_wall_s": rerun["wall_s"],
                  "rerun_report": rerun.get("report"), "rerun_peak_rss_total_mb": rerun["peak_rss_total_mb"],
                  "after": after, "same_edges_as_clean_import": same_edges, "nothing_duplicated": ok}
        say(f"resume check ({n:,}): killed after {first['wall_s']} s with {at_kill['evidence']:,} Evidence nodes; "
            f"rerun {rerun['wall_s']} s; Evidence {after['evidence']:,}, distinct {after['evidence_ids']:,}, "
            f"repeated edges {after['repeated_edges']}: {'OK' if ok else 'FAILED'}")
        return result
    finally:
        db_stop(home)
        if not keep:
            shutil.rmtree(home, ignore_errors=True)
