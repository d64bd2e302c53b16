"""Training throughput (samples/s) and peak memory of the image–text trainer and the knowledge encoder.

Synthetic inputs of the real shapes go through the real trainer (:func:`models.train.clip_train.train_clip`:
EfficientNet-Lite0 + all-MiniLM-L6-v2, PhenoLIP loss with the distillation term) for ``--steps`` steps after
``--warmup`` steps; the rate counts the timed steps only. Settings, each one row:

* ``clip``: CLIP at ``--image-size`` (224 by default) with the whole text tower training (the GPU setting);
* ``clip-frozen-text``: the same with the text tower frozen and its caption embeddings cached;
* ``clip-frozen-text-64px``: the CPU demonstration's setting (64 px, frozen text);
* ``knowledge-encoder``: MiniLM attribute pairs (2 texts per sample), for reference.

Each row reports the process's peak resident memory while it ran (sampled; the process already holds
torch and earlier rows' leftovers). On CUDA the trainer runs as ``phenokg train clip`` does there (AMP,
channels-last image tower, pinned memory, ``--workers`` DataLoader workers, 28 px images resized to
``--image-size`` on the GPU; ``--resize-in-loader`` / ``--no-channels-last`` switch those two off for
comparison), and the row adds peak GPU memory and the mean GPU utilisation over the timed steps (NVML, else
``nvidia-smi``, every 0.2 s). Let ``--warmup`` exceed twice ``--workers`` batches: the loader prefetches that
many during start-up, and timing steps fed from that stock overstates a loader-bound rate.

    python benchmarks/training_throughput.py [--device auto] [--steps 5] [--batch-size 32] [--only clip …]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402

from models.train.clip_data import ClipSample, SetTheoryCaptionDataset  # noqa: E402
from models.train.clip_train import ClipTrainConfig, train_clip  # noqa: E402
from models.types import DiseaseSets  # noqa: E402

DISEASES = {
    0: DiseaseSets("CXR:no_finding", "No finding", (), (("HP:0002090", "Pneumonia"), ("HP:0002202", "Pleural "
                                                                                            "effusion"))),
    1: DiseaseSets("CXR:pneumonia", "Pneumonia", (("HP:0032177", "Parenchymal consolidation"),
                                                  ("HP:0033212", "Air bronchogram")),
                   (("HP:0100598", "Pulmonary edema"),)),
}


class TimedDataset(Dataset[ClipSample]):
    """Synthetic labelled 28 px images captioned from set-theory templates, like the real data: resized to
    ``image_size`` in the loader, or left at 28 px for the trainer to resize on the GPU (``image_size=None``)."""

    def __init__(self, n: int, image_size: int | None) -> None:
        rng = np.random.default_rng(0)
        labels = rng.integers(0, 2, size=n)
        images = (rng.random((n, 28, 28)) * 255).astype(np.uint8)
        self.inner = SetTheoryCaptionDataset(images, labels, DISEASES, image_size=image_size)

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int) -> ClipSample:
        return self.inner[i]

    def set_epoch(self, epoch: int) -> None:
        self.inner.set_epoch(epoch)


class GpuSampler:
    """GPU 0's utilisation every 0.2 s while running (NVML, else ``nvidia-smi``); samples are
    ``(perf_counter, %)``."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _reader() -> Any:
        """A function returning GPU 0's utilisation in %: NVML (nvidia-ml-py) if present, else nvidia-smi."""
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            return lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except Exception:  # no NVML binding or driver: fall back to the CLI
            if not shutil.which("nvidia-smi"):
                return None
            query = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "--id=0"]
            return lambda: float(subprocess.run(query, capture_output=True, text=True, timeout=5).stdout.split()[0])

    def _run(self) -> None:
        read = self._reader()
        while read is not None and not self._stop.is_set():
            # a slow or failed reading is skipped, not the rest of the run
            with contextlib.suppress(OSError, subprocess.SubprocessError, ValueError, IndexError):
                self.samples.append((time.perf_counter(), read()))
            self._stop.wait(0.2)

    def __enter__(self) -> GpuSampler:
        if torch.cuda.is_available():
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def mean_between(self, start: float, end: float) -> float | None:
        """Mean utilisation of the samples taken in ``[start, end]`` (perf_counter seconds)."""
        window = [u for t, u in self.samples if start <= t <= end]
        return round(sum(window) / len(window), 1) if window else None


class RssSampler:
    """Peak resident memory of this process while running (sampled every 50 ms)."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def peak_mb(self) -> int:
        return round(self.peak / 2**20)


def clip_rate(args: argparse.Namespace, image_size: int, text_layers: int | None) -> dict[str, Any]:
    """Samples/s of ``warmup + steps`` steps minus ``warmup`` steps, from the trainer's own step log."""
    dev = args.device
    n = args.batch_size * (args.warmup + args.steps)
    config = ClipTrainConfig(image_size=image_size, batch_size=args.batch_size, max_steps=args.warmup + args.steps,
                             text_trainable_layers=text_layers, num_workers=args.workers if dev != "cpu" else 0,
                             log_every=args.warmup, amp=True, channels_last=not args.no_channels_last)
    if dev.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as tmp, GpuSampler() as gpu, RssSampler() as rss:
        called = time.perf_counter()  # the trainer's own clock starts within milliseconds of this
        data = TimedDataset(n, image_size if args.resize_in_loader or not dev.startswith("cuda") else None)
        summary = train_clip(data, config, Path(tmp), device=dev, progress=False)
        rows = [json.loads(x) for x in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    times = {r["step"]: r["time_s"] for r in rows}
    timed = times[args.warmup + args.steps] - times[args.warmup]
    out: dict[str, Any] = {"image_size": image_size, "text_trainable_layers": text_layers,
                           "batch_size": args.batch_size, "timed_steps": args.steps,
                           "samples_per_s": round(args.batch_size * args.steps / timed, 1),
                           "s_per_step": round(timed / args.steps, 3), "precision": summary["precision"],
                           "peak_rss_mb": rss.peak_mb}
    if dev.startswith("cuda"):
        out["peak_gpu_mem_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
        out["gpu_util_mean_timed"] = gpu.mean_between(called + times[args.warmup],
                                                      called + times[args.warmup + args.steps])
        out["channels_last"] = config.channels_last
        out["workers"] = config.num_workers
        out["resize"] = "loader" if data.inner.image_size else "gpu"
    return out


def knowledge_rate(args: argparse.Namespace) -> dict[str, Any]:
    from models.train.knowledge import KnowledgeTrainConfig, train_knowledge_encoder
    from models.types import PhenotypeAttributes

    n = args.batch_size * (args.warmup + args.steps) * 2
    phenos = [PhenotypeAttributes(f"HP:{i:07d}", f"Abnormality number {i} of the organ system",
                                  f"A deviation from normal structure number {i}, observed on examination.",
                                  (f"synonym {i}",), ()) for i in range(n)]
    cfg = KnowledgeTrainConfig(batch_size=args.batch_size, max_steps=args.warmup + args.steps, log_every=1,
                               checkpoint_every=10_000)
    with tempfile.TemporaryDirectory() as tmp, RssSampler() as rss:
        t0 = time.perf_counter()
        summary = train_knowledge_encoder(phenos, cfg, Path(tmp), device=args.device, progress=False)
        total = time.perf_counter() - t0
    steps = int(summary["steps"])
    return {"batch_size": args.batch_size, "steps": steps,
            "pairs_per_s_incl_startup": round(args.batch_size * steps / total, 1), "peak_rss_mb": rss.peak_mb}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--no-channels-last", action="store_true", help="keep the image tower in NCHW on CUDA")
    ap.add_argument("--resize-in-loader", action="store_true",
                    help="on CUDA, resize to --image-size in the DataLoader workers instead of on the GPU")
    ap.add_argument("--only", nargs="*", default=None,
                    choices=["clip", "clip-frozen-text", "clip-frozen-text-64px", "knowledge-encoder"])
    args = ap.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    which = args.only or ["clip", "clip-frozen-text", "clip-frozen-text-64px", "knowledge-encoder"]
    result: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
                   f"{torch.__version__}, threads {torch.get_num_threads()}",
        "device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
        "rows": {},
    }
    for name in which:
        started = time.perf_counter()
        if name == "clip":
            row = clip_rate(args, args.image_size, None)
        elif name == "clip-frozen-text":
            row = clip_rate(args, args.image_size, 0)
        elif name == "clip-frozen-text-64px":
            row = clip_rate(args, 64, 0)
        else:
            row = knowledge_rate(args)
        row["wall_s"] = round(time.perf_counter() - started, 1)
        result["rows"][name] = row
        print(name, json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
