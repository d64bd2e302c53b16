"""The evidence scale benchmark's retrieval stage (``benchmarks/evidence_scale.py``): every image embedded with the
image tower of phenokg's CLIP architecture (cached), ``models.evidence_index.EvidenceVectorIndex`` built, saved and
loaded, per-image query timing with the HNSW graph and with exact search, recall@10 of one against the other.

Imported by ``benchmarks/evidence_scale.py``, which puts ``benchmarks/`` on ``sys.path``."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import evidence_scale_data as gen
import numpy as np
from _common import percentile
from _evidence_scale_home import disk_bytes, say
from threadpoolctl import threadpool_limits

K = 10
EMBED_SEGMENT = 50_000


def _prepare(image_bytes: bytes, size: int, channels: int) -> Any:
    """Image bytes → the model's input tensor at ``size`` px with ``channels`` channels."""
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
    """Embedding, index and per-image query figures for the first ``n`` pairs, under the thread limits asked for."""
    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    # as in the server (app.core.threads): numpy's BLAS on one thread, so the exact search's threads do not spin
    # against torch's between queries (on 2 cores that made the next encode 3-5x slower)
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        return _retrieval(data, n, folder, args)


def _retrieval(data: Path, n: int, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """:func:`stage_retrieval` without the thread limits."""
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
