"""Footprint: resident memory of a real ``phenokg serve`` (API process and embedded JVM), idle and after one request
of each kind, and where the API's memory goes.

Run from the repository root::

    .venv/bin/python benchmarks/footprint.py --home /tmp/bench-home                  # an already built home
    .venv/bin/python benchmarks/footprint.py --home H --heap 512m --markdown out.md  # PHENOKG_DB_HEAP for the JVM

What it does:

1. **Graph**: the ``db`` folder of ``--home`` (a built full-HPO home, embedded) is copied to a temporary home, so
   the original is only read and no second JVM opens it (``--in-place`` serves it directly).
2. **Server**: ``phenokg serve --no-build`` as a child process (as ``benchmarks/api_latency.py`` starts it), ready
   when ``GET /health`` says ok; then **idle** once the API process has used under ``--quiet-cpu`` CPU seconds per
   second for ``--quiet`` seconds in a row (its start-up warm-up thread builds every index). Memory of the API
   process and of the JVM it started: RSS, and USS / PSS (``psutil.memory_full_info``, Linux) — RSS counts shared
   libraries in full, USS only the pages the process alone holds.
3. **Requests**: one request of each kind (lookup, hybrid search, rank, annotate), then memory again (cumulative:
   after all four), once the process is quiet again.
4. **Attribution** (``--attribute``, on by default): a fresh interpreter attached to the same running JVM
   (``PHENOKG_HOME`` = the served copy) repeats what the API holds, step by step, and reports RSS and USS after
   each (after ``gc`` + glibc ``malloc_trim``, as the API trims after its warm-up; the untrimmed RSS too): the
   API's imports, the snapshot, the disease index, the linker, semsim, ranking, the lexical search index, the
   phenotype vectors, the query encoder, the image (CLIP) stack (which the API imports only when a ``clip`` model
   is registered).
5. **Imports** (``--imports``, on by default): RSS and USS after importing each heavy library in a fresh
   interpreter (baseline: the bare interpreter).

Progress goes to stderr; the Markdown to stdout, and to ``--markdown`` if given; raw figures to ``--json``.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import psutil
from _common import progress
from api_latency import SEARCH_QUERIES, Server, machine, note_2000

from kg.config import GraphSettings

ROOT = Path(__file__).resolve().parents[1]
MiB = float(1 << 20)
IMPORTS = ("numpy", "tokenizers", "onnxruntime", "transformers", "torch", "timm", "sentence_transformers",
           "fastapi", "neo4j", "ray", "app.main", "models.embeddings", "models.serving")

say = progress("footprint")


# ---- memory ---------------------------------------------------------------------------------------
def memory(pid: int) -> dict[str, float]:
    """RSS, USS and PSS (MiB) of one process; USS / PSS are NaN where the platform has no full info."""
    proc = psutil.Process(pid)
    out = {"rss": proc.memory_info().rss / MiB, "uss": float("nan"), "pss": float("nan")}
    try:
        full = proc.memory_full_info()
        out["uss"] = full.uss / MiB
        out["pss"] = getattr(full, "pss", float("nan")) / MiB
    except (psutil.AccessDenied, AttributeError):
        pass
    return out


def native_libraries(pid: int) -> list[str]:
    """Which heavy native libraries the process has mapped (from ``/proc/PID/maps``; empty elsewhere)."""
    wanted = {"libtorch_cpu": "torch", "onnxruntime": "onnxruntime", "libcudart": "CUDA runtime"}
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return []
    return sorted({label for needle, label in wanted.items() if needle in maps})


def jvm_of(api: psutil.Process, home: Path) -> psutil.Process | None:
    """The embedded JVM: a java child of the API process, else the pid in the home's ``server.json``."""
    for child in api.children(recursive=True):
        try:
            if "java" in child.name().lower():
                return child
        except psutil.NoSuchProcess:
            continue
    state = home / "db" / "server.json"
    if state.exists():
        pid = json.loads(state.read_text()).get("pid")
        if pid and psutil.pid_exists(int(pid)):
            return psutil.Process(int(pid))
    return None


def wait_quiet(proc: psutil.Process, quiet_s: float, cpu_per_s: float, timeout: float) -> float:
    """Wait until ``proc`` used under ``cpu_per_s`` CPU seconds per second for ``quiet_s`` s; seconds waited."""
    started = time.monotonic()
    calm_since: float | None = None
    last = sum(proc.cpu_times()[:2])
    while time.monotonic() - started < timeout:
        time.sleep(0.5)
        now = sum(proc.cpu_times()[:2])
        busy = (now - last) / 0.5
        last = now
        if busy < cpu_per_s:
            calm_since = calm_since or time.monotonic()
            if time.monotonic() - calm_since >= quiet_s:
                return time.monotonic() - started
        else:
            calm_since = None
    say(f"not quiet after {timeout:.0f} s; measuring anyway")
    return time.monotonic() - started


# ---- attribution (runs in a fresh interpreter: --attribute-child) -----------------------------------
def _trim() -> bool:
    """glibc ``malloc_trim(0)``: give freed heap pages back to the system; False where there is no glibc."""
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def attribute_child() -> list[dict[str, Any]]:
    """Build what the API holds, one piece at a time, measuring this process after each step."""
    rows: list[dict[str, Any]] = []
    me = os.getpid()

    def step(name: str, fn: Callable[[], object]) -> object:
        t0 = time.perf_counter()
        result = fn()
        gc.collect()
        untrimmed = memory(me)["rss"]
        _trim()  # what the step keeps, not its transient peak (the API trims after its warm-up)
        rows.append({"step": name, "seconds": time.perf_counter() - t0, "untrimmed": untrimmed, **memory(me)})
        return result

    _trim()
    rows.append({"step": "interpreter", "seconds": 0.0, "untrimmed": memory(me)["rss"], **memory(me)})
    step("import the API (app.main and what it imports)", lambda: __import__("app.main"))
    from app.core.config import AppSettings
    from app.services import Services
    from app.services.search import SearchService
    from kg.repo.snapshots import SnapshotCache
    from kg.store.graph import connect

    settings = AppSettings()
    graph: Any = step("connect (Bolt driver)", lambda: connect(settings, start_embedded=False))
    cache = SnapshotCache(graph)
    services = Services(cache, SearchService(cache, settings.onnx_cache_dir))
    step("snapshot (kg.analysis.snapshot.GraphSnapshot)", cache.get)
    step("disease index (phenotype → diseases, names)", services.diseases)
    step("linker (text → phenotypes)", services.linker)
    step("semsim (IC, ancestors)", services.semsim)
    step("ranking index", services.ranking)
    step("lexical search index", services.search.lexical)
    index: Any = step("phenotype vectors (semantic index)", lambda: services.search.semantic_index()[0])
    encoder_name = "query encoder (tokenizer + ONNX session / torch weights)"
    if index is not None:
        step(encoder_name, lambda: services.search.encoder_for(index))
    else:
        rows.append({"step": encoder_name + ": no vectors in the graph", "seconds": 0.0, "untrimmed": float("nan"),
                     **memory(me)})
    step("image (CLIP) stack import (models.serving: torch, timm, transformers)", lambda: __import__("models.serving"))
    loaded = sorted(m for m in ("torch", "transformers", "onnxruntime", "sentence_transformers", "timm", "ray")
                    if m in sys.modules)
    rows.append({"step": "modules loaded: " + (", ".join(loaded) or "none"), "seconds": 0.0,
                 "untrimmed": float("nan"), **memory(me)})
    graph.close()
    return rows


def attribute(home: Path) -> list[dict[str, Any]]:
    env = dict(os.environ, PHENOKG_HOME=str(home))
    for key in ("NEO4J_URI", "PHENOKG_TEXT_ENCODER", "PHENOKG_CLIP_MODEL"):
        env.pop(key, None)
    out = subprocess.run([sys.executable, __file__, "--attribute-child"], env=env, cwd=str(ROOT),
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"attribution failed: {out.stderr[-2000:]}")
    rows: list[dict[str, Any]] = json.loads(out.stdout.strip().splitlines()[-1])
    return rows


def import_costs() -> list[dict[str, Any]]:
    code = ("import importlib, json, sys, psutil\n"
            "m = sys.argv[1]\n"
            "importlib.import_module(m) if m else None\n"
            "i = psutil.Process().memory_full_info()\n"
            "print(json.dumps({'rss': i.rss / 2**20, 'uss': i.uss / 2**20}))")
    rows = []
    for module in ("", *IMPORTS):
        out = subprocess.run([sys.executable, "-c", code, module], cwd=str(ROOT), capture_output=True, text=True,
                             check=False)
        if out.returncode != 0:
            rows.append({"module": module, "rss": float("nan"), "uss": float("nan"),
                         "error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"})
            continue
        rows.append({"module": module or "(bare interpreter)", **json.loads(out.stdout)})
        say(f"import {module or '(nothing)'}: RSS {rows[-1]['rss']:.0f} MiB")
    return rows


# ---- requests ---------------------------------------------------------------------------------------
def one_of_each(url: str) -> dict[str, int]:
    with httpx.Client(base_url=url, timeout=300.0) as c:
        marfan = c.get("/diseases/OMIM:154700")
        present = [p["id"] for p in marfan.json().get("typical", [])][:10] if marfan.status_code == 200 \
            else ["HP:0001166", "HP:0001519"]
        return {
            "lookup": c.get("/terms/HP:0001166").status_code,
            "hybrid search": c.get("/search", params={"q": SEARCH_QUERIES[0], "mode": "hybrid"}).status_code,
            "rank": c.post("/rank", json={"present": present}).status_code,
            "annotate": c.post("/annotate", json={"documents": [{"id": "n", "text": note_2000()}]}).status_code,
        }


# ---- report -----------------------------------------------------------------------------------------
def _f(x: float) -> str:
    return "–" if x != x else f"{x:,.0f}"


def markdown(res: dict[str, Any]) -> str:
    lines = [f"Command: `{res['command']}`", "", f"- Machine: {res['machine']}.",
             f"- Server: `phenokg serve --no-build` on a copy of a built home ({res['graph']}); JVM heap "
             f"`PHENOKG_DB_HEAP={res['heap']}`; ready {res['ready_s']:.1f} s after spawn, quiet {res['quiet_s']:.1f} s "
             "later.", "",
             "| when | API RSS | API USS | API PSS | JVM RSS | JVM USS |", "|---|---|---|---|---|---|"]
    for when, m in res["memory"].items():
        api, jvm = m["api"], m["jvm"]
        lines.append(f"| {when} | {_f(api['rss'])} | {_f(api['uss'])} | {_f(api['pss'])} | {_f(jvm['rss'])} | "
                     f"{_f(jvm['uss'])} |")
    lines += ["", f"MiB. Requests: {res['requests']} (HTTP status of each). Native libraries mapped in the API "
                  f"process after them: {', '.join(res.get('libraries') or []) or 'none of torch, onnxruntime, CUDA'}.",
              ""]
    if res.get("attribution"):
        lines += ["Attribution (a fresh interpreter attached to the same JVM builds what the API holds, one step "
                  "at a time, each followed by gc + `malloc_trim`; Δ = what that step keeps; *before trim* = RSS "
                  "right after the step, with its freed transient pages still mapped):", "",
                  "| step | RSS | Δ RSS | USS | Δ USS | before trim | s |", "|---|---|---|---|---|---|---|"]
        prev: dict[str, Any] | None = None
        for row in res["attribution"]:
            d_rss = row["rss"] - prev["rss"] if prev else float("nan")
            d_uss = row["uss"] - prev["uss"] if prev else float("nan")
            lines.append(f"| {row['step']} | {_f(row['rss'])} | {_f(d_rss)} | {_f(row['uss'])} | {_f(d_uss)} | "
                         f"{_f(row.get('untrimmed', float('nan')))} | {row['seconds']:.1f} |")
            prev = row
        lines.append("")
    if res.get("imports"):
        lines += ["Imports, each in a fresh interpreter:", "", "| module | RSS | USS |", "|---|---|---|"]
        lines += [f"| `{r['module']}` | {_f(r['rss'])} | {_f(r['uss'])} |" for r in res["imports"]]
        lines.append("")
    return "\n".join(lines)


# ---- main -------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, help="An already built PHENOKG_HOME (its db is copied)")
    ap.add_argument("--in-place", action="store_true", help="Serve --home itself instead of a copy")
    ap.add_argument("--heap", default=None, help="PHENOKG_DB_HEAP for the embedded JVM (default: the setting's)")
    ap.add_argument("--quiet", type=float, default=5.0, help="Seconds of low CPU that count as idle")
    ap.add_argument("--quiet-cpu", type=float, default=0.05, help="CPU seconds per second that count as low")
    ap.add_argument("--ready-timeout", type=float, default=600.0)
    ap.add_argument("--no-attribute", dest="attribute", action="store_false")
    ap.add_argument("--no-imports", dest="imports", action="store_false")
    ap.add_argument("--attribute-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--markdown", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.attribute_child:
        print(json.dumps(attribute_child()))
        return 0
    if args.home is None:
        ap.error("--home is required (a built PHENOKG_HOME)")
    if args.heap:
        os.environ["PHENOKG_DB_HEAP"] = args.heap
    tmp = Path(tempfile.mkdtemp(prefix="phenokg-footprint-"))
    server: Server | None = None
    res: dict[str, Any] = {"machine": machine(), "heap": os.environ.get("PHENOKG_DB_HEAP") or
                           f"{GraphSettings.model_fields['embedded_heap'].default} (the default)",
                           "memory": {}}
    res["command"] = "python benchmarks/footprint.py " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        if args.in_place:
            home, res["graph"] = args.home, f"`{args.home}` in place"
        else:
            home = tmp / "home"
            say(f"copying {args.home / 'db'} to {home / 'db'}")
            shutil.copytree(args.home / "db", home / "db", symlinks=True,
                            ignore=shutil.ignore_patterns("server.json", "*.pid", "log", "server.log"))
            cache = args.home / "cache" / "onnx"  # the query encoder's ONNX export, as a served home has it
            if cache.is_dir():
                shutil.copytree(cache, home / "cache" / "onnx")
            res["graph"] = f"copied from `{args.home}`"
        server = Server(home, False, tmp / "serve.log")
        res["ready_s"] = server.wait_ready(args.ready_timeout)
        api = psutil.Process(server.proc.pid)
        res["quiet_s"] = wait_quiet(api, args.quiet, args.quiet_cpu, 600)
        jvm = jvm_of(api, home)

        def snap(when: str) -> None:
            m = {"api": memory(api.pid), "jvm": memory(jvm.pid) if jvm else {"rss": float("nan"),
                                                                               "uss": float("nan")}}
            res["memory"][when] = m
            say(f"{when}: API RSS {m['api']['rss']:.0f} MiB (USS {m['api']['uss']:.0f}), "
                f"JVM RSS {m['jvm']['rss']:.0f} MiB")

        snap("idle after start (warm-up done)")
        res["requests"] = one_of_each(server.url)
        wait_quiet(api, args.quiet, args.quiet_cpu, 300)
        snap("after lookup, hybrid search, rank, annotate")
        res["libraries"] = native_libraries(api.pid)
        if args.attribute:
            say("attribution in a fresh interpreter")
            res["attribution"] = attribute(home)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.imports:
        res["imports"] = import_costs()
    text = markdown(res)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
