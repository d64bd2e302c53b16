"""Evidence at scale (issue 23): import, evidence queries, nearest-evidence retrieval and the training-view export
on generated image–caption evidence of 10K, 100K and 520K pairs over 3,000 phenotypes.

A PERFORMANCE benchmark only: the data is generated (``benchmarks/evidence_scale_data.py``), so no quality figure
is computed on it (recall@10 below is the ANN index against exact search on the same vectors, not a retrieval
quality).

Run from the repository root::

    .venv/bin/python benchmarks/evidence_scale.py --work /tmp/evscale --json /tmp/evscale/result.json \\
        --markdown /tmp/evscale/result.md                                 # 10K, 100K, 520K; plot in docs/
    .venv/bin/python benchmarks/evidence_scale.py --sizes 2000 --work /tmp/evs-dev --plot /tmp/evs-dev/p.png
    .venv/bin/python benchmarks/evidence_scale.py --sizes 100000 --skip-import --skip-resume  # rerun the rest

What it does, per size N (every step can be skipped, and results merge into an existing ``--json``):

0. **Data**: ``--data`` (default ``WORK/data``) holds the largest size's pairs, generated once with 2 processes
   (about 7 minutes and 4.5 GB for 520K on 2 quiet cores; reused and resumable); size N imports
   ``manifest-N.jsonl``, its first N lines. Phenotypes are drawn from the graph of ``--base-home``.
1. **Import**: a copy of ``--base-home`` (an already built full-HPO ``PHENOKG_HOME``, copied with its database
   stopped; built with ``phenokg kg build`` if it has no database) in ``WORK/homes/N``; its embedded database is
   started (``phenokg db start``), then ``phenokg evidence import manifest-N.jsonl`` runs as a child process.
   Wall time, pairs/s, and peak RSS sampled every 0.5 s with psutil: the CLI's process tree (Python) and the
   database JVM (the pid in ``db/server.json``). Then Evidence nodes, SHOWS / RULES_OUT edges and the phenotype
   with the most linked items (both relations; anchored counts over the generator's 5 heaviest phenotypes) are
   counted. A stage that fails is recorded in the JSON and the run goes on.
2. **Resume** (``--resume-size``, default the smallest size): on another copy of the base home the import is
   killed with SIGKILL once ``--kill-at`` (0.5) of the pairs are Evidence nodes (the count is polled every 0.5 s;
   ``--kill-after-s`` kills at a time instead, if earlier), then run again; recorded: Evidence nodes at the kill,
   the rerun's wall time, and whether Evidence nodes == distinct ids == N with no repeated
   (evidence, phenotype) edge and the same edge counts as the clean import.
3. **Training-view export**: ``kg.repo.training_views.evidence_items`` (what ``phenokg train clip`` and training
   jobs read the evidence through; there is no separate export command for it) in a child process, written as
   JSONL: seconds to read, to write, items, file size, the child's peak RSS.
4. **Evidence queries**: ``phenokg serve --no-build`` on 127.0.0.1 (a free port), then
   ``benchmarks/_evidence_queries.measure_evidence_queries(url, term_id)`` for the phenotype with the most items
   (``GET /terms/{id}/evidence`` p50/p95 per variant the function measures).
5. **Retrieval**: every image of the size embedded with the image tower of phenokg's CLIP architecture
   (``untrained_model(ClipTrainConfig(image_size=S))``, S = ``--image-size``, default 64, on the CPU; cached in
   ``DATA/embeddings`` so a larger size only embeds its new images), put into
   ``models.evidence_index.EvidenceVectorIndex`` keyed by image sha256; HNSW build time, index size on disk, load
   time; per query image, one at a time, 200 held-out generated images: decode bytes → tensor → encode → search
   (k = 10), p50/p95 for the HNSW graph and for exact search, search-only times, recall@10 of HNSW against exact.
   Also the encoder's single-image latency at S and at 224 px, so a reader can put the 224 px model in.
6. **Disk**: database folder and blob store of the home, with the database stopped.

Output: the Markdown tables to stdout (and ``--markdown``), the raw figures to ``--json``, the plot of cost against
size to ``--plot`` (default ``docs/evidence_scale.png``). Progress on stderr, with tqdm bars for the long steps.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import evidence_scale_data as gen  # noqa: E402
from _common import cpu_model, free_port, percentile, progress, stop_child  # noqa: E402

DEFAULT_SIZES = "10000,100000,520000"
DEFAULT_BASE_HOME = Path("/tmp/bench-home")
TARGETS = {"import_pairs_per_s": 1000.0, "import_peak_rss_mb": 2048.0, "retrieval_p50_ms": 50.0,
           "recall_at_10": 0.95, "query_p50_ms": 20.0}
K = 10
EMBED_SEGMENT = 50_000
say = progress("evidence_scale")


# ---------------------------------------------------------------------------------------------------- helpers

def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_") and k not in
           ("PHENOKG_BOLT_PORT", "PHENOKG_HTTP_PORT")}
    env.update({"PHENOKG_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **extra})
    return env


def phenokg(home: Path, *args: str, timeout: float = 3600, show: bool = False) -> str:
    """Run the CLI on ``home``; ``show``: its stderr (progress bars) goes to ours."""
    cmd = [sys.executable, "-m", "app.cli.main", *args]
    say(f"$ PHENOKG_HOME={home} phenokg " + " ".join(args))
    out = subprocess.run(cmd, env=_env(home), cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=None if show else subprocess.PIPE, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"phenokg {' '.join(args)} failed ({out.returncode}): {(out.stderr or '').strip()[-2000:]}")
    return out.stdout


def db_state(home: Path) -> dict[str, Any] | None:
    """The running embedded database of ``home`` (its state file), or None."""
    from kg.store.embedded import pid_alive

    path = home / "db" / "server.json"
    with contextlib.suppress(OSError, ValueError):
        state = json.loads(path.read_text())
        if pid_alive(int(state["pid"])):
            return dict(state)
    return None


def db_start(home: Path) -> int:
    if db_state(home) is None:
        phenokg(home, "db", "start", timeout=300)
    state = db_state(home)
    if state is None:
        raise RuntimeError(f"the database of {home} did not start (see {home}/db/server.log)")
    return int(state["pid"])


def db_stop(home: Path) -> None:
    if db_state(home) is not None:
        phenokg(home, "db", "stop", timeout=300)


def disk_bytes(path: Path) -> dict[str, int]:
    """Allocated bytes (``du``) and file count under ``path``."""
    total = files = 0
    if path.exists():
        for folder, _, names in os.walk(path):
            for name in names:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(folder, name)).st_blocks * 512
                    files += 1
    return {"bytes": total, "files": files}


def ensure_base_home(base: Path) -> None:
    if (base / "db" / "databases").is_dir() and any((base / "db" / "databases").iterdir()):
        return
    say(f"{base} holds no graph: building the full HPO there (phenokg kg build, a few minutes)")
    base.mkdir(parents=True, exist_ok=True)
    try:
        phenokg(base, "kg", "build", show=True)
    finally:
        db_stop(base)


def copy_home(base: Path, target: Path) -> None:
    if db_state(base) is not None:
        raise SystemExit(f"the database of {base} is running: stop it (PHENOKG_HOME={base} phenokg db stop) so "
                         "its files can be copied consistently")
    if target.exists():
        db_stop(target)
        shutil.rmtree(target)
    say(f"copying {base} to {target}")
    shutil.copytree(base, target, symlinks=True, ignore=shutil.ignore_patterns("server.json"))


@contextlib.contextmanager
def graph_of(home: Path) -> Iterator[Any]:
    """A driver to the running database of ``home`` (never starts one)."""
    from kg.config import GraphSettings
    from kg.store.graph import open_graph

    with open_graph(GraphSettings(**_home_setting(home)), start_embedded=False) as graph:
        yield graph


def graph_counts(home: Path, *, duplicates: bool = False) -> dict[str, Any]:
    with graph_of(home) as graph:
        ev = graph.read("MATCH (e:Evidence) RETURN count(e) AS n, count(DISTINCT e.id) AS ids")[0]
        out: dict[str, Any] = {"evidence": int(ev["n"]), "evidence_ids": int(ev["ids"])}
        for rel in ("SHOWS", "RULES_OUT"):
            out[rel.lower()] = int(graph.read(f"MATCH (:Evidence)-[r:{rel}]->(:Phenotype) RETURN count(r) AS n")[0]
                                   ["n"])
        if duplicates:
            out["repeated_edges"] = int(graph.read(
                "MATCH (e:Evidence)-[r:SHOWS|RULES_OUT]->(p:Phenotype) WITH e, p, type(r) AS t, count(r) AS c "
                "WHERE c > 1 RETURN count(*) AS n")[0]["n"])
    return out


TOP_CANDIDATES = 5


def top_phenotype(home: Path, data: Path) -> dict[str, Any]:
    """The phenotype with the most linked evidence (both relations) among the generator's ``TOP_CANDIDATES``
    heaviest ones: anchored counts, milliseconds each, where one aggregation over every link of a 520K graph
    would scan about a million edges."""
    candidates = [p.id for p in gen.load_phenotypes(data)[:TOP_CANDIDATES]]
    with graph_of(home) as graph:
        rows = graph.read("UNWIND $ids AS id MATCH (p:Phenotype {id: id}) "
                          "RETURN p.id AS id, p.name AS name, COUNT { (p)<-[:SHOWS]-() } AS shows, "
                          "COUNT { (p)<-[:RULES_OUT]-() } AS rules_out", ids=candidates)
    found = [{"id": r["id"], "name": r["name"], "shows": int(r["shows"]), "rules_out": int(r["rules_out"]),
              "items": int(r["shows"]) + int(r["rules_out"])} for r in rows]
    return max(found, key=lambda r: (r["items"], r["id"])) if found else {}


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
        proc = subprocess.Popen(cmd, env=_env(home), cwd=ROOT, stdout=out, stderr=None)
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
    result = run_import(home, manifest, n, folder / "import.log")
    say(f"import of {n:,}: {result['wall_s']} s, {result.get('pairs_per_s')} pairs/s, peak Python "
        f"{result['peak_rss_python_mb']} MB + JVM {result['peak_rss_jvm_mb']} MB")
    result["graph"] = graph_counts(home)
    result["top_phenotype"] = top_phenotype(home, data)
    return result


def stage_resume(base: Path, manifest: Path, n: int, folder: Path, clean: dict[str, Any] | None,
                 kill_at: float, kill_after_s: float | None, keep: bool) -> dict[str, Any]:
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


def export_view(home: Path, out: Path) -> None:
    """(child process) the evidence training view of ``home``'s running database, as JSONL; prints figures."""
    import resource

    from kg.repo.training_views import evidence_items

    with graph_of(home) as graph:
        t0 = time.perf_counter()
        items = evidence_items(graph, blob_root=home / "blobs")
        read_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    with out.open("w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(dict(item), ensure_ascii=False) + "\n")
    write_s = time.perf_counter() - t1
    print(json.dumps({"items": len(items), "read_s": round(read_s, 2), "write_s": round(write_s, 2),
                      "total_s": round(read_s + write_s, 2), "file_bytes": out.stat().st_size,
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


def stage_export(home: Path, folder: Path) -> dict[str, Any]:
    db_start(home)
    out = folder / "evidence-view.jsonl"
    say("exporting the evidence training view (kg.repo.training_views.evidence_items → JSONL)")
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "_export-view", str(home), str(out)],
                          env=_env(home), cwd=ROOT, capture_output=True, text=True, timeout=7200)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"the export failed: {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s_with_startup"] = round(wall, 2)
    out.unlink(missing_ok=True)
    say(f"export: {result}")
    return result


def stage_queries(home: Path, folder: Path, term: dict[str, Any], repeats: int) -> dict[str, Any]:
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
                                 str(port), "--no-build"], env=_env(home), cwd=ROOT, stdout=out,
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


# ---------------------------------------------------------------------------------------------------- retrieval

def _prepare(image_bytes: bytes, size: int, channels: int) -> Any:
    from PIL import Image

    from models.images import to_image_tensor

    with Image.open(io.BytesIO(image_bytes)) as img:
        t = to_image_tensor(img, size)
    if t.shape[0] == 1 and channels != 1:
        t = t.expand(channels, -1, -1)
    return t.contiguous()


def embed_pairs(model: Any, data: Path, n: int, size: int, batch: int) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """Unit embeddings (``model``'s image tower at ``size`` px) and sha256 of the first ``n`` pairs' images, cached
    in ``data/embeddings``."""
    import torch
    from tqdm import tqdm

    cache = data / "embeddings"
    cache.mkdir(exist_ok=True)
    vec_path, hash_path, meta_path = (cache / f"s{size}.npy", cache / f"s{size}.hashes.txt",
                                      cache / f"s{size}.json")
    vectors = np.load(vec_path) if vec_path.exists() and meta_path.exists() else np.zeros((0, 0), np.float32)
    hashes = hash_path.read_text().split() if vectors.size else []
    meta: dict[str, Any] = json.loads(meta_path.read_text()) if vectors.size else {"runs": []}
    if len(hashes) != len(vectors):
        vectors, hashes, meta = np.zeros((0, 0), np.float32), [], {"runs": []}
    have = len(hashes)
    if have < n:
        channels = int(model.image_encoder.mean.shape[1])
        records = list(gen.manifest_records(gen.manifest_for(data, n)))[have:n]
        say(f"embedding {len(records):,} images at {size} px ({have:,} cached), torch threads "
            f"{torch.get_num_threads()}")
        run: dict[str, Any] = {"images": 0, "seconds": 0.0, "torch_threads": torch.get_num_threads(), "batch": batch}
        meta["runs"].append(run)
        with torch.inference_mode(), tqdm(total=len(records), desc=f"embed {size}px", unit="img",
                                          dynamic_ncols=True, mininterval=0.5) as bar:
            # saved every EMBED_SEGMENT images, so an interrupted run keeps what it embedded
            for seg in range(0, len(records), EMBED_SEGMENT):
                part = records[seg:seg + EMBED_SEGMENT]
                new_vecs: list[np.ndarray] = []
                started = time.perf_counter()
                for start in range(0, len(part), batch):
                    tensors = []
                    for rec in part[start:start + batch]:
                        raw = (data / rec["image"]).read_bytes()
                        hashes.append(hashlib.sha256(raw).hexdigest())
                        tensors.append(_prepare(raw, size, channels))
                    new_vecs.append(model.encode_image(torch.stack(tensors)).float().numpy())
                    bar.update(len(tensors))
                run["seconds"] += time.perf_counter() - started
                run["images"] += len(part)
                run.update(seconds=round(run["seconds"], 2), images_per_s=round(run["images"] / run["seconds"], 1),
                           load_after=[round(x, 2) for x in os.getloadavg()], at=time.strftime("%Y-%m-%dT%H:%M:%S"))
                added = np.concatenate(new_vecs).astype(np.float32)
                vectors = added if not vectors.size else np.concatenate([vectors, added])
                tmp = vec_path.with_suffix(".tmp.npy")
                np.save(tmp, vectors)
                os.replace(tmp, vec_path)
                hash_path.write_text("\n".join(hashes) + "\n")
                meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return vectors[:n], hashes[:n], meta


def stage_retrieval(data: Path, n: int, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    # as in the server (app.core.threads): numpy's BLAS on one thread, so the exact search's threads do not spin
    # against torch's between queries (on 2 cores that made the next encode 3-5x slower)
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        return _retrieval(data, n, folder, args)


def _retrieval(data: Path, n: int, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from models.evidence_index import EvidenceVectorIndex
    from models.train.clip_run import untrained_model
    from models.train.clip_train import ClipTrainConfig

    size = args.image_size
    model = untrained_model(ClipTrainConfig(image_size=size), "cpu")
    channels = int(model.image_encoder.mean.shape[1])
    vectors, hashes, emb_meta = embed_pairs(model, data, n, size, args.embed_batch)
    result: dict[str, Any] = {"image_size": size, "images": n, "dim": int(vectors.shape[1]),
                              "torch_threads": torch.get_num_threads(), "blas_threads": args.blas_threads,
                              "embedding": emb_meta["runs"][-1], "embedding_runs": emb_meta["runs"]}
    index = EvidenceVectorIndex(vectors.shape[1])
    index.add(hashes, vectors)
    say(f"building the HNSW index over {n:,} vectors")
    started = time.perf_counter()
    index.build_ann(threads=args.ann_threads)
    result["ann_build_s"] = round(time.perf_counter() - started, 2)
    folder_index = folder / "evidence-index"
    shutil.rmtree(folder_index, ignore_errors=True)
    index.save(folder_index)
    del index
    result["index_disk"] = disk_bytes(folder_index)
    started = time.perf_counter()
    loaded = EvidenceVectorIndex.load(folder_index)
    result["index_load_s"] = round(time.perf_counter() - started, 3)
    result["index_has_ann_after_load"] = loaded.has_ann

    queries = gen.query_images(args.seed, args.queries)
    from tqdm import tqdm

    with torch.inference_mode():
        modes = ("ann", "exact")
        rows_by_mode: dict[str, list[np.ndarray]] = {m: [] for m in modes}
        total_ms: dict[str, list[float]] = {m: [] for m in modes}
        search_ms: dict[str, list[float]] = {m: [] for m in modes}
        for raw, _ in queries[:5]:  # warm-up
            e = model.encode_image(_prepare(raw, size, channels)[None]).float().numpy()
            for mode in modes:
                loaded.search(e, K, exact=mode == "exact")
        # both modes per query, in alternating order: on a shared machine they see the same load
        for i, (raw, _) in enumerate(tqdm(queries, desc="queries (HNSW, exact)", unit="img", dynamic_ncols=True,
                                          mininterval=0.5)):
            for mode in modes if i % 2 == 0 else modes[::-1]:
                t0 = time.perf_counter()
                e = model.encode_image(_prepare(raw, size, channels)[None]).float().numpy()
                t1 = time.perf_counter()
                rows, _ = loaded.search(e, K, exact=mode == "exact")
                t2 = time.perf_counter()
                total_ms[mode].append((t2 - t0) * 1000)
                search_ms[mode].append((t2 - t1) * 1000)
                rows_by_mode[mode].append(rows[0])
        for mode in modes:
            result[mode] = {"p50_ms": round(percentile(total_ms[mode], 0.5), 2),
                            "p95_ms": round(percentile(total_ms[mode], 0.95), 2),
                            "search_p50_ms": round(percentile(search_ms[mode], 0.5), 3),
                            "search_p95_ms": round(percentile(search_ms[mode], 0.95), 3)}
        recall = [len(set(a.tolist()) & set(b.tolist())) / K
                  for a, b in zip(rows_by_mode["ann"], rows_by_mode["exact"], strict=True)]
        result["recall_at_10_ann_vs_exact"] = round(float(np.mean(recall)), 4)
        result["queries"] = len(queries)
        result["encoder_single_ms"] = {str(size): _encoder_latency(model, queries, size, channels)}
        ref = args.reference_size
        if ref and ref != size:
            big = untrained_model(ClipTrainConfig(image_size=ref), "cpu")
            result["encoder_single_ms"][str(ref)] = _encoder_latency(big, queries, ref, channels)
    say(f"retrieval ({n:,}): HNSW p50 {result['ann']['p50_ms']} ms, exact p50 {result['exact']['p50_ms']} ms, "
        f"recall@10 {result['recall_at_10_ann_vs_exact']}, build {result['ann_build_s']} s")
    return result


def _encoder_latency(model: Any, queries: list[tuple[bytes, str]], size: int, channels: int,
                     n: int = 50) -> dict[str, float]:
    """Decode + encode of one image at a time (no search): p50/p95 ms."""
    times = []
    for i in range(n + 5):
        raw = queries[i % len(queries)][0]
        t0 = time.perf_counter()
        model.encode_image(_prepare(raw, size, channels)[None])
        if i >= 5:
            times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(percentile(times, 0.5), 2), "p95_ms": round(percentile(times, 0.95), 2)}


# ---------------------------------------------------------------------------------------------------- output

def machine() -> dict[str, Any]:
    import psutil

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": sys.version.split()[0], "jvm_heap": os.environ.get("PHENOKG_DB_HEAP", "512m (default)")}


def _mb(b: float | None) -> str:
    return "–" if b is None else f"{b / 2**20:,.0f}"


def _get(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _fmt(x: Any, spec: str = "") -> str:
    if x is None:
        return "–"
    return format(x, spec) if spec else str(x)


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GiB, Python {m['python']}, JVM heap "
             f"{m['jvm_heap']}. Generated evidence (performance only), seed {result['params']['seed']}, "
             f"{result['params']['phenotypes']:,} phenotypes.", ""]
    for size in sorted(result["sizes"], key=int):
        s = result["sizes"][size]
        lines += [f"### {int(size):,} pairs", "", "| measure | value |", "|---|---:|"]
        stages = {k: s.get(k) or {} for k in ("import", "resume", "export", "retrieval", "queries", "disk")}
        for k, d in stages.items():
            if "error" in d:
                lines.append(f"| {k} | failed ({d.get('at')}): {d['error'][:200]} |")
                stages[k] = {}
        imp, res, exp, ret, q, disk = stages.values()
        if imp:
            g = imp.get("graph", {})
            top = imp.get("top_phenotype") or {}
            lines += [f"| import wall time | {imp['wall_s']} s ({imp.get('pairs_per_s')} pairs/s; target ≥ 1,000) |",
                      f"| import peak RSS Python / JVM / sum | {imp['peak_rss_python_mb']} / "
                      f"{imp['peak_rss_jvm_mb']} / "
                      f"{imp['peak_rss_total_mb']} MB (target sum ≤ 2,048) |",
                      f"| Evidence nodes / SHOWS / RULES_OUT | {g.get('evidence', 0):,} / {g.get('shows', 0):,} / "
                      f"{g.get('rules_out', 0):,} |",
                      f"| phenotype with most items | {top.get('id')} {top.get('name')} ({top.get('items', 0):,}) |",
                      f"| load average before / after import | {imp.get('load_before')} / {imp.get('load_after')} |"]
        if disk:
            lines += [f"| database on disk | {_mb(_get(disk, 'graph', 'bytes'))} MB |",
                      f"| blob store on disk | {_mb(_get(disk, 'blobs', 'bytes'))} MB "
                      f"({_fmt(_get(disk, 'blobs', 'files'), ',')} files) |"]
        if res:
            kill = (f"{res['killed_after_s']} s / {res['evidence_at_kill']:,}" if res.get("killed") else
                    f"not killed: the import finished first ({res['killed_after_s']} s)")
            lines += [f"| resume: SIGKILL after / Evidence nodes then | {kill} |",
                      f"| resume: rerun wall time | {res['rerun_wall_s']} s |",
                      f"| resume: nothing duplicated | {'yes' if res['nothing_duplicated'] else 'NO'} "
                      f"(Evidence {res['after']['evidence']:,}, distinct ids {res['after']['evidence_ids']:,}, "
                      f"repeated edges {res['after']['repeated_edges']}) |"]
        if exp:
            lines += [f"| training-view export (evidence_items → JSONL) | {exp['total_s']} s (read {exp['read_s']}, "
                      f"write {exp['write_s']}; {exp['items']:,} items, {_mb(exp['file_bytes'])} MB, peak RSS "
                      f"{exp['peak_rss_mb']} MB) |"]
        if q and "figures" in q:
            for variant, fig in q["figures"].items():
                lines.append(f"| GET /terms/{q['term']['id']}/evidence {variant} | p50 "
                             f"{_fmt(fig.get('p50_ms'), '.1f')} ms, p95 {_fmt(fig.get('p95_ms'), '.1f')} ms |")
        elif q:
            why = f"failed: {q['error']}" if "error" in q else f"skipped: {q.get('skipped')}"
            lines.append(f"| evidence queries | {why} |")
        if ret:
            emb = ret["embedding"]
            enc = ret["encoder_single_ms"]
            lines += [f"| image embedding ({ret['image_size']} px, batches of {emb.get('batch', '?')}) | "
                      f"{emb['images_per_s']} images/s ({emb['torch_threads']} torch threads; measured "
                      f"{emb['at']} on {emb['images']:,} images) |",
                      f"| HNSW build / index on disk / load | {ret['ann_build_s']} s / "
                      f"{_mb(ret['index_disk']['bytes'])} MB / {ret['index_load_s']} s |",
                      f"| retrieval per image incl. encoder, HNSW | p50 {ret['ann']['p50_ms']} ms, p95 "
                      f"{ret['ann']['p95_ms']} ms (search alone p50 {ret['ann']['search_p50_ms']} ms) |",
                      f"| retrieval per image incl. encoder, exact | p50 {ret['exact']['p50_ms']} ms, p95 "
                      f"{ret['exact']['p95_ms']} ms (search alone p50 {ret['exact']['search_p50_ms']} ms) |",
                      f"| recall@10 HNSW vs exact | {ret['recall_at_10_ann_vs_exact']} ({ret['queries']} held-out "
                      "queries) |",
                      f"| load average before / after retrieval | {ret.get('load_before')} / "
                      f"{ret.get('load_after')} |",
                      "| single-image decode + encode | " + ", ".join(
                          f"{s} px p50 {v['p50_ms']} ms" for s, v in enc.items()) + " |"]
        lines.append("")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(result["sizes"], key=int)
    xs = [int(s) for s in sizes]

    def series(*keys: str, scale: float = 1.0) -> tuple[list[int], list[float]]:
        pts = [(x, _get(result["sizes"][s], *keys)) for x, s in zip(xs, sizes, strict=True)]
        pts = [(x, float(v) * scale) for x, v in pts if isinstance(v, (int, float))]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    ax = axes[0][0]
    ax.plot(*series("import", "wall_s"), "o-", label="import")
    ax.plot(*series("export", "total_s"), "s-", label="training-view export")
    ax.plot(*series("resume", "rerun_wall_s"), "^--", label="import rerun after kill")
    ax.set_title("time (s)")
    ax = axes[0][1]
    q_sizes = [s for s in sizes if _get(result["sizes"][s], "queries", "figures")]
    variants = sorted({v for s in q_sizes for v in result["sizes"][s]["queries"]["figures"]})
    for v in variants:
        ax.plot(*series("queries", "figures", v, "p50_ms"), "o-", label=f"{v}")
    ax.set_title("GET /terms/{id}/evidence p50 (ms)")
    ax = axes[1][0]
    ax.plot(*series("retrieval", "ann", "p50_ms"), "o-", label="HNSW (incl. encoder)")
    ax.plot(*series("retrieval", "exact", "p50_ms"), "s-", label="exact (incl. encoder)")
    ax.set_title("nearest-evidence retrieval p50 per image (ms)")
    ax = axes[1][1]
    mb = 1 / 2**20
    ax.plot(*series("disk", "graph", "bytes", scale=mb), "o-", label="database")
    ax.plot(*series("disk", "blobs", "bytes", scale=mb), "s-", label="blob store")
    ax.plot(*series("retrieval", "index_disk", "bytes", scale=mb), "^-", label="vector index")
    ax.set_title("disk (MB)")
    for row in axes:
        for a in row:
            a.set_xscale("log")
            a.set_xlabel("evidence pairs")
            a.grid(True, alpha=0.3)
            if a.get_legend_handles_labels()[0]:
                a.legend(fontsize=8)
    m = result["machine"]
    fig.suptitle(f"Evidence at scale (generated data): {m['cpu']}, {m['cores']} cores", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------- main

def _load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_export-view"]:
        export_view(Path(argv[1]), Path(argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated pair counts")
    parser.add_argument("--work", type=Path, default=Path("/tmp/evidence-scale"),
                        help="working folder: homes per size, logs, indexes")
    parser.add_argument("--data", type=Path, help="generated data folder (default WORK/data; reused if present)")
    parser.add_argument("--base-home", type=Path, default=DEFAULT_BASE_HOME,
                        help="a built full-HPO PHENOKG_HOME to copy (built there if it has no graph)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--phenotypes", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2, help="processes generating the data")
    parser.add_argument("--image-size", type=int, default=64, help="model input size S for retrieval")
    parser.add_argument("--embed-batch", type=int, default=128)
    parser.add_argument("--torch-threads", type=int, help="torch intra-op threads for retrieval (default: torch's)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="numpy BLAS threads for retrieval (default 1, as the server sets them)")
    parser.add_argument("--ann-threads", type=int, help="hnswlib build threads (default: every core)")
    parser.add_argument("--reference-size", type=int, default=224,
                        help="also time the single-image encoder at this size (0: not)")
    parser.add_argument("--queries", type=int, default=200, help="held-out query images")
    parser.add_argument("--query-repeats", type=int, default=50, help="repeats of each evidence query")
    parser.add_argument("--resume-size", type=int, help="size of the resume check (default: the smallest)")
    parser.add_argument("--kill-at", type=float, default=0.5,
                        help="resume check: kill the import once this share of the pairs are Evidence nodes")
    parser.add_argument("--kill-after-s", type=float,
                        help="resume check: kill the import after this many seconds at the latest")
    for stage in ("import", "resume", "export", "queries", "retrieval"):
        parser.add_argument(f"--skip-{stage}", action="store_true")
    parser.add_argument("--keep-homes", action=argparse.BooleanOptionalAction, default=True,
                        help="keep WORK/homes/N after the size (needed to rerun stages with --skip-import)")
    parser.add_argument("--fresh", action="store_true", help="do not merge into an existing --json")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "evidence_scale.png")
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    resume_size = args.resume_size or sizes[0]
    work: Path = args.work
    data: Path = args.data or work / "data"
    work.mkdir(parents=True, exist_ok=True)

    result: dict[str, Any] = {"sizes": {}}
    if args.json and args.json.exists() and not args.fresh:
        result = json.loads(args.json.read_text())
    result.update({"benchmark": "evidence_scale", "machine": machine(),
                   "params": {"seed": args.seed, "phenotypes": args.phenotypes, "image_size": args.image_size,
                              "queries": args.queries, "query_repeats": args.query_repeats, "k": K},
                   "targets": TARGETS})
    result.setdefault("runs", []).append({"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "sizes": sizes,
                                          "load_before": _load_avg()})
    say(f"machine: {result['machine']}; load average {_load_avg()}")

    needs_graph = not (args.skip_import and args.skip_resume and args.skip_export and args.skip_queries)
    if not (args.skip_import and args.skip_resume and args.skip_retrieval):
        if needs_graph or not (data / "terms.json").exists():
            ensure_base_home(args.base_home)
        gen.ensure_data(data, max(sizes), home=args.base_home, seed=args.seed, phenotypes=args.phenotypes,
                        workers=args.workers, say=say)

    def save() -> None:
        result["runs"][-1]["load_after"] = _load_avg()
        if args.json:
            args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")

    for n in sizes:
        measure_size(n, result["sizes"].setdefault(str(n), {}), args, data, resume_size, save)
    save()
    md = markdown(result)
    print(md)
    if args.markdown:
        args.markdown.write_text(md + "\n", encoding="utf-8")
    if args.plot:
        plot(result, args.plot)
        say(f"plot: {args.plot}")
    return 0


def measure_size(n: int, entry: dict[str, Any], args: argparse.Namespace, data: Path, resume_size: int,
                 save: Callable[[], None]) -> None:
    """Every stage asked for at size ``n``, into ``entry``; ``save`` writes the JSON after each."""
    work: Path = args.work
    folder = work / f"n{n}"
    folder.mkdir(parents=True, exist_ok=True)
    home = work / "homes" / str(n)
    manifest = gen.manifest_for(data, n) if (data / "manifest.jsonl").exists() else None

    def run_stage(name: str, fn: Callable[[], dict[str, Any]]) -> bool:
        """Run one stage; a failure is recorded (and the run goes on with the next stage or size)."""
        before = _load_avg()
        try:
            entry[name] = fn()
            entry[name].update(load_before=before, load_after=_load_avg(),
                               at=time.strftime("%Y-%m-%dT%H:%M:%S"))
            return True
        except Exception as exc:  # a long unattended run records the failure and goes on
            say(f"{name} ({n:,} pairs) failed: {exc!r}\n{traceback.format_exc()}")
            entry[name] = {"error": repr(exc), "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
            return False
        finally:
            save()

    try:
        imported = True
        if not args.skip_import:
            assert manifest is not None
            copy_home(args.base_home, home)
            imported = run_stage("import", lambda: stage_import(home, manifest, n, folder, data))
        has_home = (home / "db").is_dir() and imported
        if not args.skip_export and has_home:
            run_stage("export", lambda: stage_export(home, folder))
        if not args.skip_queries and has_home:
            run_stage("queries", lambda: stage_queries(
                home, folder, _get(entry, "import", "top_phenotype") or top_phenotype_started(home, data),
                args.query_repeats))
        if has_home:
            db_stop(home)
            run_stage("disk", lambda: {"graph": disk_bytes(home / "db"), "blobs": disk_bytes(home / "blobs")})
        if not args.skip_resume and n == resume_size:
            assert manifest is not None
            clean = entry.get("import")
            clean = clean if clean and "error" not in clean else None
            run_stage("resume", lambda: stage_resume(args.base_home, manifest, n, folder, clean,
                                                     args.kill_at, args.kill_after_s, keep=False))
        if not args.skip_retrieval:
            run_stage("retrieval", lambda: stage_retrieval(data, n, folder, args))
    finally:
        with contextlib.suppress(Exception):
            db_stop(home)
        if not args.keep_homes:
            shutil.rmtree(home, ignore_errors=True)


def top_phenotype_started(home: Path, data: Path) -> dict[str, Any]:
    db_start(home)
    return top_phenotype(home, data)


def _home_setting(home: Path) -> dict[str, Any]:
    """``GraphSettings`` keyword arguments naming ``home`` (settings are read by their aliases only)."""
    return {"PHENOKG_HOME": str(home)}


if __name__ == "__main__":
    raise SystemExit(main())
