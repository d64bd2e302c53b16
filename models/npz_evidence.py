"""Labelled image arrays (MedMNIST-style ``.npz``) → an evidence manifest with set-theory captions.

``phenokg evidence import-npz`` turns e.g. PneumoniaMNIST into graph evidence in two steps: this module
writes every image of the chosen splits as a PNG plus one JSONL record per image (``image``, ``caption``,
``source``, ``license`` and the extra fields ``dataset``, ``split``, ``index``, ``label``, ``finding``,
``granularity``); :func:`kg.ingest.evidence.import_evidence` then stores the images by content, links each caption
to phenotypes with the linker (``SHOWS``, and ``RULES_OUT`` for the negated "no evidence of …" part) and keeps
the extra fields on the ``Evidence`` node, so training can re-caption an image from its finding's sets.

The caption of image ``i`` of split ``s`` is drawn from the label's finding (a chest X-ray pack entry, or any
disease with typical / excluded sets) at ``granularity`` with an RNG seeded by ``(seed, s, i)``: the same
file and seed always give the same manifest.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from PIL import Image
from tqdm.auto import tqdm

from kg.errors import ValidationError
from models.captions import Granularity, build_caption
from models.images import load_npz_split
from models.types import DiseaseSets

__all__ = ["MANIFEST", "NpzManifest", "parse_label_map", "write_npz_manifest"]

MANIFEST: Final = "manifest.jsonl"


def parse_label_map(text: str) -> dict[int, str]:
    """``"0=CXR:no_finding,1=CXR:pneumonia"`` → ``{0: "CXR:no_finding", 1: "CXR:pneumonia"}``."""
    out: dict[int, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        label, sep, finding = part.partition("=")
        if not sep or not label.strip() or not finding.strip():
            raise ValidationError(f"label map entry {part!r}: expected LABEL=DISEASE_ID (e.g. 1=CXR:pneumonia)")
        try:
            key = int(label)
        except ValueError as exc:
            raise ValidationError(f"label map entry {part!r}: the label must be an integer") from exc
        if key in out:
            raise ValidationError(f"label map: label {key} given twice")
        out[key] = finding.strip()
    if not out:
        raise ValidationError("empty label map: expected LABEL=DISEASE_ID[,LABEL=DISEASE_ID…]")
    return out


def _subset(n: int, limit: int | None, key: str) -> list[int]:
    if limit is None or limit >= n:
        return list(range(n))
    return sorted(random.Random(key).sample(range(n), limit))


@dataclass(frozen=True)
class NpzManifest:
    """What :func:`write_npz_manifest` wrote."""

    path: Path
    records: int
    per_split: dict[str, int]


def write_npz_manifest(
    npz: str | Path,
    out_dir: str | Path,
    diseases: Mapping[int, DiseaseSets],
    *,
    dataset: str,
    license: str,
    splits: Sequence[str] = ("train", "val", "test"),
    granularity: Granularity = "fine",
    seed: int = 0,
    max_items: int | None = 8,
    limit: int | None = None,
    study: str = "chest radiograph",
    progress: bool = True,
) -> NpzManifest:
    """Write PNGs and ``manifest.jsonl`` into ``out_dir`` for ``splits`` of ``npz`` (labels → ``diseases``).

    ``limit``: at most this many images per split, a seeded random subset (files are often sorted by class),
    kept in file order. Raises ``ValueError`` for a label without a disease or a split the file lacks, before
    anything is written.
    """
    out = Path(out_dir)
    arrays = {s: load_npz_split(npz, s) for s in splits}
    for split, (images, labels) in arrays.items():
        unknown = sorted({int(x) for x in labels} - set(diseases))
        if unknown:
            raise ValidationError(f"{npz}: {split} labels {unknown} have no disease in the label map")
        if images.ndim not in (3, 4) or images.dtype.kind != "u":
            raise ValidationError(f"{npz}: {split}_images must be uint8 [N, H, W(, C)], got {images.dtype} "
                                  f"{images.shape}")
    out.mkdir(parents=True, exist_ok=True)
    per_split: dict[str, int] = {}
    chosen = {split: _subset(len(labels), limit, f"{seed}:{split}") for split, (_, labels) in arrays.items()}
    total = sum(len(c) for c in chosen.values())
    with (out / MANIFEST).open("w", encoding="utf-8") as manifest, \
            tqdm(total=total, desc="writing images", unit="image", disable=not progress, mininterval=0.5) as bar:
        for split, (images, labels) in arrays.items():
            (out / split).mkdir(exist_ok=True)
            for i in chosen[split]:
                label = int(labels[i])
                disease = diseases[label]
                rng = random.Random(f"{seed}:{split}:{i}")
                text = build_caption(disease, granularity, rng, max_items=max_items, study=study, warn=False).text
                name = f"{split}/{i:06d}.png"
                Image.fromarray(images[i]).save(out / name, format="PNG", optimize=False)
                record = {"image": name, "caption": text, "source": dataset, "license": license,
                          "dataset": dataset, "split": split, "index": i, "label": label, "finding": disease.id,
                          "granularity": granularity}
                manifest.write(json.dumps(record, ensure_ascii=False) + "\n")
                bar.update(1)
            per_split[split] = len(chosen[split])
    return NpzManifest(out / MANIFEST, sum(per_split.values()), per_split)
