"""The evidence scale benchmark's stages that read an imported graph back (``benchmarks/evidence_scale.py``): the
training-view export (a child process running ``evidence_scale.py _export-view``) and the evidence queries against
``phenokg serve``.

Imported by ``benchmarks/evidence_scale.py``, which puts ``benchmarks/`` on ``sys.path``."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from _common import free_port, stop_child
from _evidence_scale_home import ROOT, cli_env, db_start, graph_of, say

SCRIPT = Path(__file__).resolve().with_name("evidence_scale.py")


def export_view(home: Path, out: Path) -> None:
    """(child process) the evidence training view of ``home``'s running database, as JSONL; prints figures."""
    import resource

    from kg.repo.training_views import iter_evidence_items

    items = 0
    write_s = 0.0
    with graph_of(home) as graph, out.open("w", encoding="utf-8") as fh:
        t0 = time.perf_counter()
        for item in iter_evidence_items(graph, blob_root=home / "blobs"):  # read page by page, written as read
            t1 = time.perf_counter()
            fh.write(json.dumps(dict(item), ensure_ascii=False) + "\n")
            write_s += time.perf_counter() - t1
            items += 1
        read_s = time.perf_counter() - t0 - write_s
    print(json.dumps({"items": items, "read_s": round(read_s, 2), "write_s": round(write_s, 2),
                      "total_s": round(read_s + write_s, 2), "file_bytes": out.stat().st_size,
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


def stage_export(home: Path, folder: Path) -> dict[str, Any]:
    """:func:`export_view` in a child process; its figures and wall time including start-up."""
    db_start(home)
    out = folder / "evidence-view.jsonl"
    say("exporting the evidence training view (kg.repo.training_views.evidence_items → JSONL)")
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(SCRIPT), "_export-view", str(home), str(out)],
                          env=cli_env(home), cwd=ROOT, capture_output=True, text=True, timeout=7200)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"the export failed: {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s_with_startup"] = round(wall, 2)
    out.unlink(missing_ok=True)
    say(f"export: {result}")
    return result


def stage_queries(home: Path, folder: Path, term: dict[str, Any], repeats: int) -> dict[str, Any]:
    """``phenokg serve`` on ``home`` and ``GET /terms/{id}/evidence`` timed for ``term``."""
    try:
        from _evidence_queries import measure_evidence_queries
    except ImportError as exc:
        say(f"benchmarks/_evidence_queries.py is not there yet ({exc}): evidence queries skipped")
        return {"skipped": f"benchmarks/_evidence_queries.py missing: {exc}"}
    if not term:
        return {"skipped": "no phenotype has evidence"}
    db_start(home)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / "serve.log"
    say(f"starting phenokg serve on {url}; log {log}")
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli.main", "serve", "--host", "127.0.0.1", "--port",
                                 str(port), "--no-build"], env=cli_env(home), cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT)
        try:
            started = time.monotonic()
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"phenokg serve exited with {proc.returncode}; see {log}")
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                        break
                if time.monotonic() - started > 600:
                    raise RuntimeError(f"phenokg serve not ready after 600 s; see {log}")
                time.sleep(0.5)
            say(f"serving after {time.monotonic() - started:.1f} s; measuring GET /terms/{term['id']}/evidence")
            try:
                figures = measure_evidence_queries(url, term["id"], repeats=repeats)
            except (httpx.HTTPError, KeyError, ValueError) as exc:  # an API the function does not know yet
                say(f"evidence queries failed: {exc!r}; see {log}")
                return {"term": term, "error": repr(exc)}
        finally:
            stop_child(proc, say)
    say(f"evidence queries: {figures}")
    return {"term": term, "repeats": repeats, "figures": figures}
