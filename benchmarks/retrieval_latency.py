"""Image retrieval latency: images/s and p50/p95 of ``POST /retrieval/image`` on a real uvicorn server, at 1 and
16 concurrent clients, with dynamic micro-batching on and (baseline, same run) off.

Run from the repository root::

    .venv/bin/python benchmarks/retrieval_latency.py                        # full HPO graph on a temporary home
    .venv/bin/python benchmarks/retrieval_latency.py --home H               # an already built PHENOKG_HOME
    .venv/bin/python benchmarks/retrieval_latency.py --requests 200 --markdown /tmp/retrieval.md

What it does:

1. **Graph**: ``--home`` names an already built home (its embedded database is started with
   ``phenokg db start`` if it is not running); otherwise a temporary home gets the full HPO with the chest X-ray
   pack (``phenokg kg build``, about a minute and a half). ``--evidence N`` PneumoniaMNIST images per split
   (``../shared/data/pneumoniamnist.npz``) are imported as evidence (``phenokg evidence import-npz --limit``),
   so the answer includes nearest evidence images as in use.
2. **Model**: the image–text architecture phenokg trains (packaged EfficientNet-Lite0 image tower, packaged
   MiniLM text tower, 256-d heads) at ``--image-size`` (default 224), untrained — latency does not depend on the
   weights — saved as a model directory and served through ``PHENOKG_CLIP_MODEL``. At load the server embeds
   every live phenotype's name (cached on disk, so the second server reuses the first one's embeddings) and every
   evidence image.
3. **Servers**: ``uvicorn app.main:create_app --factory`` (one worker) on 127.0.0.1, twice: *batched*
   (``PHENOKG_RETRIEVAL_MAX_BATCH=32``, ``..._BATCH_WAIT_MS=5``: the defaults) and *baseline*
   (``PHENOKG_RETRIEVAL_MAX_BATCH=1``: every image runs alone).
4. **Requests**: ``--upload-size`` px square JPEGs (quality 90) made from PneumoniaMNIST test images, cycled;
   ``k=10&findings=5&evidence=6``. Per server and concurrency: ``--warmup`` requests, then ``--requests`` requests
   from that many threads, each with its own keep-alive ``httpx.Client``. Latency is client-side wall time per
   request (send → body read); images/s is requests answered / wall time of the timed phase.

Progress goes to stderr; the Markdown table to stdout (and ``--markdown``), the raw figures to ``--json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _common import cli_env, cpu_model, free_port, progress, stop_child

ROOT = Path(__file__).resolve().parents[1]
NPZ = ROOT.parent / "shared" / "data" / "pneumoniamnist.npz"
LABELS = "0=CXR:no_finding,1=CXR:pneumonia"
TARGET_P50_MS = 50.0


say = progress("retrieval_latency")



def phenokg(home: Path, *args: str, timeout: float = 1800) -> str:
    cmd = [sys.executable, "-m", "app.cli.main", *args]
    say("$ phenokg " + " ".join(args))
    out = subprocess.run(cmd, env=cli_env(home), cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"phenokg {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    return out.stdout


def save_model(out: Path, image_size: int) -> Path:
    """The untrained phenokg CLIP architecture as a model directory (``model/`` + ``train_config.json``)."""
    from models.train.clip_run import untrained_model
    from models.train.clip_train import ClipTrainConfig

    config = ClipTrainConfig(image_size=image_size)
    model = untrained_model(config, "cpu")
    model.save(out / "model")
    (out / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
    return out


def uploads(n: int, size: int) -> list[bytes]:
    from PIL import Image

    with np.load(NPZ) as data:
        images = data["test_images"][:n]
    out = []
    for arr in images:
        buf = io.BytesIO()
        Image.fromarray(arr).resize((size, size), Image.Resampling.BILINEAR).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


class Server:
    """``uvicorn app.main:create_app --factory`` as a child process (the embedded DB is already running)."""

    def __init__(self, home: Path, model: Path, max_batch: int, log: Path, torch_threads: int | None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = cli_env(home, PHENOKG_CLIP_MODEL=str(model), PHENOKG_RETRIEVAL_MAX_BATCH=str(max_batch),
                   PHENOKG_RETRIEVAL_BATCH_WAIT_MS="5",
                   **({"OMP_NUM_THREADS": str(torch_threads)} if torch_threads else {}))
        cmd = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1",
               "--port", str(self.port), "--log-level", "warning"]
        say(f"starting server (max batch {max_batch}) on {self.url}; log {log}")
        self._log = log.open("wb")
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, image: bytes, timeout: float) -> float:
        """Until the first retrieval answers 200 (the model and candidate embeddings are loaded)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self._log.name}")
            try:
                r = httpx.post(f"{self.url}/retrieval/image", files={"file": ("x.jpg", image, "image/jpeg")},
                               timeout=timeout)
                if r.status_code == 200:
                    return time.monotonic() - started
                raise RuntimeError(f"first retrieval answered {r.status_code}: {r.text[:500]}")
            except httpx.TransportError:
                time.sleep(0.25)
        raise RuntimeError(f"server not ready after {timeout:.0f} s; see {self._log.name}")

    def stop(self) -> None:
        stop_child(self.proc, say)
        self._log.close()


def measure(url: str, images: list[bytes], concurrency: int, requests: int, warmup: int) -> dict[str, Any]:
    params = {"k": 10, "findings": 5, "evidence": 6}
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    counter = iter(range(10**9))

    def worker(budget: int, record: bool) -> None:
        with httpx.Client(base_url=url, timeout=120.0) as client:
            for _ in range(budget):
                with lock:
                    i = next(counter)
                t0 = time.perf_counter()
                r = client.post("/retrieval/image", params=params,
                                files={"file": (f"{i}.jpg", images[i % len(images)], "image/jpeg")})
                dt = (time.perf_counter() - t0) * 1000.0
                if record:
                    with lock:
                        if r.status_code == 200:
                            latencies.append(dt)
                        else:
                            failures.append(str(r.status_code))

    def run(total: int, record: bool) -> float:
        per = [total // concurrency + (1 if t < total % concurrency else 0) for t in range(concurrency)]
        threads = [threading.Thread(target=worker, args=(b, record)) for b in per]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - t0

    run(max(warmup, concurrency), record=False)
    wall = run(requests, record=True)
    qs = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    return {"concurrency": concurrency, "requests": requests, "ok": len(latencies), "failed": len(failures),
            "wall_s": round(wall, 3), "images_per_s": round(len(latencies) / wall, 1),
            "p50_ms": round(qs[49], 1), "p95_ms": round(qs[94], 1), "mean_ms": round(statistics.fmean(latencies), 1)}


def machine() -> dict[str, Any]:
    model = cpu_model()
    import torch

    return {"cpu": model, "cores": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "load_before": os.getloadavg()[0]}


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} (CPU; load average at start "
             f"{m['load_before']:.1f}, at the end {result['load_after']:.1f}; server torch threads "
             f"{result['torch_threads']}). Graph: {result['graph']}; {result['evidence_images']} evidence images; "
             f"{result['upload_size']} px JPEG uploads, model input {result['image_size']} px.", "",
             "| server | clients | requests | images/s | p50 ms | p95 ms | failed |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, runs in result["servers"].items():
        for r in runs["runs"]:
            lines.append(f"| {name} | {r['concurrency']} | {r['ok']} | {r['images_per_s']} | {r['p50_ms']} | "
                         f"{r['p95_ms']} | {r['failed']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="an already built PHENOKG_HOME (default: build one)")
    parser.add_argument("--mini", action="store_true", help="build the mini test fixture instead of the full HPO")
    parser.add_argument("--evidence", type=int, default=50, help="PneumoniaMNIST images per split to import")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--upload-size", type=int, default=512)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--torch-threads", type=int, help="OMP_NUM_THREADS for the servers (default: torch's own)")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]

    temp = Path(tempfile.mkdtemp(prefix="retrieval-bench-"))
    home = args.home or temp / "home"
    started_db = False
    servers: dict[str, Any] = {}
    info = machine()
    try:
        status = subprocess.run([sys.executable, "-m", "app.cli.main", "db", "status", "--json"], env=cli_env(home),
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
        if status.returncode != 0 or not json.loads(status.stdout or "{}").get("running"):
            phenokg(home, "db", "start")
            started_db = True
        if args.home is None:
            fixture = ROOT / "tests" / "fixtures"
            build_args = (["--obo", str(fixture / "mini.obo"), "--hpoa", str(fixture / "mini.hpoa"), "--no-pack"]
                          if args.mini else [])
            phenokg(home, "kg", "build", *build_args, "--quiet")
            if args.evidence and not args.mini:
                phenokg(home, "evidence", "import-npz", str(NPZ), "--labels", LABELS, "--license", "CC BY 4.0",
                        "--dataset", "pneumoniamnist", "--limit", str(args.evidence), "--quiet")
        model = save_model(temp / "clip", args.image_size)
        images = uploads(64, args.upload_size)
        for name, max_batch in (("batched (max 32, 5 ms)", 32), ("baseline (batch 1)", 1)):
            server = Server(home, model / "model", max_batch, temp / f"server-{max_batch}.log", args.torch_threads)
            try:
                ready = server.wait_ready(images[0], timeout=1800)
                say(f"{name}: ready in {ready:.1f} s")
                runs = []
                for c in concurrency:
                    r = measure(server.url, images, c, args.requests, args.warmup)
                    say(f"{name} c={c}: {r}")
                    runs.append(r)
                probe = httpx.post(f"{server.url}/retrieval/image", files={"file": ("x.jpg", images[1], "image/jpeg")},
                                   timeout=60).json()
                servers[name] = {"max_batch": max_batch, "ready_s": round(ready, 1), "runs": runs,
                                 "device": probe["device"], "evidence_returned": len(probe["evidence"])}
            finally:
                server.stop()
        graph = "mini fixture" if args.mini else ("given home" if args.home else "full HPO + chest X-ray pack")
        result = {"machine": info, "graph": graph, "torch_threads": args.torch_threads or "default",
                  "load_after": os.getloadavg()[0], "image_size": args.image_size, "upload_size": args.upload_size,
                  "evidence_images": 3 * args.evidence if not args.mini and args.home is None else "as in home",
                  "servers": servers, "target_p50_ms_at_1": TARGET_P50_MS}
        md = markdown(result)
        print(md)
        if args.markdown:
            args.markdown.write_text(md + "\n", encoding="utf-8")
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        return 0
    finally:
        if started_db:
            try:
                phenokg(home, "db", "stop", timeout=120)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                say(f"stopping the database failed: {exc}")
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
