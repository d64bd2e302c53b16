"""Generated image–caption evidence for the evidence scale benchmark (``benchmarks/evidence_scale.py``, issue 23).

Performance data only: the images are crops of real chest X-rays but the captions are drawn at random, so no
quality figure may be computed on this data.

Run from the repository root::

    .venv/bin/python benchmarks/evidence_scale_data.py --data /tmp/evscale-data --home /tmp/bench-home
    .venv/bin/python benchmarks/evidence_scale_data.py --data D --home H --pairs 5000 --workers 2

What it writes into ``--data`` (everything is deterministic from ``--seed``; a rerun reuses what is there):

* ``labels.json``: every live term under HP:0000118 (id, name, synonyms) as the graph of ``--home`` holds them;
  ``terms.json``: the phenotypes captions name, drawn from the built graph of ``--home`` (live terms under
  HP:0000118, read with the query ``linker_from_graph`` uses). A term is taken only when its name, put into a
  positive and a negated template, links to that term and nothing else with the
  :class:`~kg.text.linker.Linker` over all labels of the branch; each of its synonyms that does the same is kept
  as an alternative surface. ``--phenotypes`` (3,000) terms are drawn at random (seeded) among those, and ranked
  at random for a Zipf-like skew (weight ∝ 1/rank^``--zipf``): with s = 1 over 3,000 terms the first takes 11.7 %
  of all mentions, about 105K of the 520K pairs.
* ``images/NNNN/PPPPPP.png|jpg``: one distinct image per pair (no two pairs share a file, nor bytes: each file
  carries its pair number in a PNG text chunk or a JPEG comment). Each is a random PneumoniaMNIST image (train,
  val and test pooled, ``../shared/data/pneumoniamnist.npz``) cropped to 18–28 px, mirrored with p = 0.5,
  resized to a side drawn log-uniformly from 28–224 px (aspect ratio 0.8–1.25, both sides in 28–224), with
  Gaussian noise (σ 2–10 grey levels), saved as PNG or JPEG (quality 75–95) with p = 0.5.
* ``parts/part-SSSSSSS-EEEEEEE.jsonl``: the manifest lines of pairs [S, E), written after the chunk's images (a
  chunk whose part file exists is done: an interrupted run resumes at the first missing chunk).
* ``manifest.jsonl``: every pair in order, one JSON object a line with ``image`` (relative to the file),
  ``caption``, ``source`` (4 sources, 40/30/20/10 %) and ``license``: the format ``phenokg evidence import``
  reads. :func:`manifest_for` writes ``manifest-N.jsonl``, its first N lines.
* ``meta.json``: the parameters, the number of pairs and the generator check (how many of a sample of captions
  the linker links exactly as the template intends).

Captions name 1 (45 %), 2 (40 %) or 3 (15 %) distinct phenotypes in a template that shows, negates or hedges each,
the way figure captions do ("Chest radiograph showing X and Y.", "No evidence of Z.", "Possible W.", "X; Y is
absent."), with a synonym instead of the name for 30 % of mentions where the term has one.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import multiprocessing as mp
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NPZ: Final = ROOT.parent / "shared" / "data" / "pneumoniamnist.npz"
BRANCH: Final = "HP:0000118"
CHUNK: Final = 5000
MIN_SIDE: Final = 28
MAX_SIDE: Final = 224
QUERY_OFFSET: Final = 1_000_000_000  # pair numbers of held-out query images: never in a manifest
SOURCES: Final = (  # (name, share of pairs, license)
    ("gen-figures-a", 0.4, "CC BY 4.0"),
    ("gen-figures-b", 0.3, "CC BY 4.0"),
    ("gen-case-reports", 0.2, "CC BY-NC 4.0"),
    ("gen-teaching-files", 0.1, "CC BY-SA 4.0"),
)
PHENOTYPES_PER_CAPTION: Final = ((1, 0.45), (2, 0.40), (3, 0.15))
SYNONYM_SHARE: Final = 0.3

# Templates by number of phenotypes: (text, role of each slot). S shows, U shows hedged, N rules out.
# "{n}" is a figure number; "{0}".. are the phenotype surfaces (capitalised at the start of a sentence).
TEMPLATES: Final[dict[int, tuple[tuple[str, str], ...]]] = {
    1: (
        ("Chest radiograph showing {0}.", "S"),
        ("Frontal chest X-ray demonstrating {0}.", "S"),
        ("Figure {n}. {0} (arrow).", "S"),
        ("No evidence of {0}.", "N"),
        ("There is no {0}.", "N"),
        ("Possible {0}.", "U"),
        ("Findings suggestive of {0}.", "U"),
        ("{0} cannot be excluded.", "U"),
    ),
    2: (
        ("Chest radiograph showing {0} and {1}.", "SS"),
        ("{0}; {1} is absent.", "SN"),
        ("{0} with possible {1}.", "SU"),
        ("Suspected {0}; no {1}.", "UN"),
        ("Figure {n}. {0} (arrowhead), without {1}.", "SN"),
        ("No evidence of {0} or {1}.", "NN"),
    ),
    3: (
        ("Frontal radiograph demonstrates {0}. No {1} or {2}.", "SNN"),
        ("{0} and {1}, likely {2}.", "SSU"),
        ("Axial view showing {0} and {1}; {2} has resolved.", "SSN"),
    ),
}
ROLE_NAMES: Final = {"S": "shows", "U": "uncertain", "N": "rules_out"}


# ---------------------------------------------------------------------------------------------------- phenotypes

@dataclass(frozen=True)
class Phenotype:
    """A phenotype captions name: its id, name and the surfaces that link to it (the name first)."""

    id: str
    name: str
    surfaces: tuple[str, ...]
    weight: float


def surface_in_sentence(surface: str, first: bool) -> str:
    """``surface`` as written in a caption: capitalised at the start of a sentence, else its first letter lowered
    unless the word looks like an abbreviation (``CNS``, ``pH``)."""
    if not surface:
        return surface
    if first:
        return surface[0].upper() + surface[1:]
    head = surface.split(" ", 1)[0]
    if len(head) > 1 and (any(c.isupper() for c in head[1:]) or any(c.isdigit() for c in head)):
        return surface
    return surface[0].lower() + surface[1:]


def links_as_intended(linker: Any, term_id: str, surface: str) -> bool:
    """Whether ``surface`` in a positive and in a negated template links to ``term_id`` alone, as intended."""
    for template, negated in (("Chest radiograph showing {0}.", False), ("No evidence of {0}.", True)):
        caption = template.format(surface_in_sentence(surface, template.startswith("{0}")))
        found = linker.annotate(caption)
        if len(found) != 1:
            return False
        m = found[0]
        if m.id != term_id or m.negated != negated or m.uncertain or m.end - m.start != len(surface):
            return False
    return True


def zipf_weights(n: int, s: float) -> np.ndarray:
    """Weights ∝ 1/rank^s for ranks 1..n, summing to 1."""
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    return w / w.sum()


def choose_phenotypes(labels: Sequence[dict[str, Any]], n: int, seed: int, zipf: float) -> list[Phenotype]:
    """``n`` phenotypes whose name links as intended, drawn at random (``seed``) among ``labels`` (dicts with
    ``id``, ``name``, ``synonyms``), in Zipf rank order with their weights."""
    from kg.text.linker import Linker, TermLabels

    linker = Linker(TermLabels(r["id"], r["name"] or "", tuple(r["synonyms"] or ())) for r in labels)
    order = sorted(labels, key=lambda r: r["id"])
    rng = np.random.default_rng([seed, 1])
    picked: list[tuple[str, str, tuple[str, ...]]] = []
    for index in rng.permutation(len(order)):
        row = order[int(index)]
        name = " ".join(str(row["name"] or "").split())
        if not name or not links_as_intended(linker, row["id"], name):
            continue
        synonyms = tuple(s for s in dict.fromkeys(" ".join(str(x).split()) for x in row["synonyms"] or ())
                         if s and s != name and links_as_intended(linker, row["id"], s))
        picked.append((row["id"], name, (name, *synonyms)))
        if len(picked) == n:
            break
    if len(picked) < n:
        raise ValueError(f"only {len(picked)} phenotypes link as intended; asked for {n}")
    weights = zipf_weights(n, zipf)
    return [Phenotype(i, name, surfaces, float(w)) for (i, name, surfaces), w in zip(picked, weights, strict=True)]


# ---------------------------------------------------------------------------------------------------- captions

@dataclass(frozen=True)
class Caption:
    text: str
    intended: tuple[tuple[str, str], ...]  # (phenotype id, shows | uncertain | rules_out)


def make_caption(rng: np.random.Generator, phenotypes: Sequence[Phenotype], cumulative: np.ndarray) -> Caption:
    """One caption naming 1–3 distinct phenotypes drawn by weight (``cumulative``: the weights' cumulative sum)."""
    counts = [c for c, _ in PHENOTYPES_PER_CAPTION]
    k = int(rng.choice(counts, p=[p for _, p in PHENOTYPES_PER_CAPTION]))
    chosen: list[int] = []
    while len(chosen) < k:
        index = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
        index = min(index, len(phenotypes) - 1)
        if index not in chosen:
            chosen.append(index)
    templates = TEMPLATES[k]
    template, roles = templates[int(rng.integers(len(templates)))]
    surfaces = []
    for index in chosen:
        p = phenotypes[index]
        if len(p.surfaces) > 1 and rng.random() < SYNONYM_SHARE:
            surfaces.append(p.surfaces[1 + int(rng.integers(len(p.surfaces) - 1))])
        else:
            surfaces.append(p.surfaces[0])
    written = [surface_in_sentence(s, _starts_sentence(template, i)) for i, s in enumerate(surfaces)]
    text = _fill(template, int(rng.integers(1, 10)), written)
    intended = tuple((phenotypes[index].id, ROLE_NAMES[r]) for index, r in zip(chosen, roles, strict=True))
    return Caption(text, intended)


def _starts_sentence(template: str, slot: int) -> bool:
    at = template.index("{" + str(slot) + "}")
    before = template[:at].rstrip()
    return not before or before.endswith(".")


def _fill(template: str, figure: int, surfaces: Sequence[str]) -> str:
    return template.replace("{n}", str(figure)).format(*surfaces)


def linked_roles(linker: Any, text: str) -> tuple[tuple[str, str], ...]:
    """What the linker makes of a caption, in the shape of :attr:`Caption.intended`."""
    out = []
    for m in linker.annotate(text):
        out.append((m.id, "rules_out" if m.negated else "uncertain" if m.uncertain else "shows"))
    return tuple(out)


# ---------------------------------------------------------------------------------------------------- images

def load_pool(path: Path = NPZ) -> np.ndarray:
    """Every PneumoniaMNIST image (train, val, test), ``[n, 28, 28]`` uint8."""
    with np.load(path) as data:
        return np.concatenate([data[f"{s}_images"] for s in ("train", "val", "test")])


def image_size(rng: np.random.Generator) -> tuple[int, int]:
    """(width, height): a side drawn log-uniformly from 28–224, the other at an aspect ratio of 0.8–1.25."""
    side = math.exp(rng.uniform(math.log(MIN_SIDE), math.log(MAX_SIDE)))
    aspect = rng.uniform(0.8, 1.25)
    w = round(min(max(side, MIN_SIDE), MAX_SIDE))
    h = round(min(max(side * aspect, MIN_SIDE), MAX_SIDE))
    return w, h


def make_image(pool: np.ndarray, seed: int, pair: int) -> tuple[bytes, str]:
    """The image of pair number ``pair``: (encoded bytes, ``png`` | ``jpg``). Deterministic from (seed, pair);
    the bytes carry the pair number, so two pairs never share an image."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    rng = np.random.default_rng([seed, 2, pair])
    src = pool[int(rng.integers(len(pool)))]
    crop = int(rng.integers(18, 29))
    y, x = int(rng.integers(0, 29 - crop)), int(rng.integers(0, 29 - crop))
    arr = src[y:y + crop, x:x + crop]
    if rng.random() < 0.5:
        arr = arr[:, ::-1]
    w, h = image_size(rng)
    resized = np.asarray(Image.fromarray(np.ascontiguousarray(arr)).resize((w, h), Image.Resampling.BILINEAR),
                         dtype=np.float32)
    noisy = resized + rng.normal(0.0, rng.uniform(2.0, 10.0), size=resized.shape)
    img = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    tag = f"phenokg evidence_scale pair {pair} seed {seed}"
    if rng.random() < 0.5:
        img.save(buf, "JPEG", quality=int(rng.integers(75, 96)), comment=tag.encode("ascii"))
        return buf.getvalue(), "jpg"
    info = PngInfo()
    info.add_text("Comment", tag)
    img.save(buf, "PNG", pnginfo=info)
    return buf.getvalue(), "png"


def image_path(pair: int, ext: str) -> str:
    return f"images/{pair // 1000:04d}/{pair:06d}.{ext}"


# ---------------------------------------------------------------------------------------------------- pairs

def make_pair(pool: np.ndarray, phenotypes: Sequence[Phenotype], cumulative: np.ndarray, seed: int,
              pair: int) -> tuple[dict[str, str], bytes, Caption]:
    """Pair number ``pair``: (manifest record, image bytes, caption)."""
    data, ext = make_image(pool, seed, pair)
    rng = np.random.default_rng([seed, 3, pair])
    caption = make_caption(rng, phenotypes, cumulative)
    u = rng.random()
    acc = 0.0
    source, license_ = SOURCES[-1][0], SOURCES[-1][2]
    for name, share, lic in SOURCES:
        acc += share
        if u < acc:
            source, license_ = name, lic
            break
    record = {"image": image_path(pair, ext), "caption": caption.text, "source": source, "license": license_}
    return record, data, caption


_WORKER: dict[str, Any] = {}


def _init_worker(data: str, seed: int, phenotypes: list[Phenotype]) -> None:
    _WORKER.update(data=Path(data), seed=seed, phenotypes=phenotypes, pool=load_pool(),
                   cumulative=np.cumsum([p.weight for p in phenotypes]))


def _chunk(bounds: tuple[int, int]) -> int:
    start, end = bounds
    data: Path = _WORKER["data"]
    lines = []
    for pair in range(start, end):
        record, image, _ = make_pair(_WORKER["pool"], _WORKER["phenotypes"], _WORKER["cumulative"],
                                     _WORKER["seed"], pair)
        target = data / record["image"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(image)
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    part = data / "parts" / _part_name(start, end)
    tmp = part.with_suffix(".tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    os.replace(tmp, part)
    return end - start


def _part_name(start: int, end: int) -> str:
    return f"part-{start:07d}-{end:07d}.jsonl"


def chunks(pairs: int, size: int | None = None) -> list[tuple[int, int]]:
    """[start, end) of each chunk of ``size`` (default :data:`CHUNK`) pairs."""
    step = size or CHUNK
    return [(s, min(s + step, pairs)) for s in range(0, pairs, step)]


# ---------------------------------------------------------------------------------------------------- data folder

def term_labels(home: Path) -> list[dict[str, Any]]:
    """Live terms under HP:0000118 with name and synonyms, from the graph of ``home`` (its embedded database is
    started if it is not running, and stopped again)."""
    from kg.config import GraphSettings
    from kg.store import queries as Q
    from kg.store.graph import open_graph

    with open_graph(GraphSettings(**_home_setting(home))) as graph:
        rows = graph.read(Q.TERM_LABELS, branch=BRANCH)
    return [{"id": r["id"], "name": r["name"] or "", "synonyms": list(r["synonyms"] or ())} for r in rows]


def load_phenotypes(data: Path) -> list[Phenotype]:
    rows = json.loads((data / "terms.json").read_text(encoding="utf-8"))["phenotypes"]
    return [Phenotype(r["id"], r["name"], tuple(r["surfaces"]), float(r["weight"])) for r in rows]


def ensure_terms(data: Path, home: Path | None, *, phenotypes: int, seed: int, zipf: float,
                 say: Any = print) -> list[Phenotype]:
    """``data/terms.json`` (made from the graph of ``home`` the first time), as :class:`Phenotype` s."""
    path = data / "terms.json"
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
        params = stored.get("params", {})
        if params != {"phenotypes": phenotypes, "seed": seed, "zipf": zipf}:
            raise SystemExit(f"{path} was made with {params}; use another --data folder for other parameters")
        return load_phenotypes(data)
    if home is None:
        raise SystemExit(f"{path} is missing: give --home (a built PHENOKG_HOME) to draw the phenotypes from")
    say(f"reading the phenotype labels of {home}")
    labels = term_labels(home)
    say(f"{len(labels)} live terms under {BRANCH}; choosing {phenotypes} that link as intended")
    chosen = choose_phenotypes(labels, phenotypes, seed, zipf)
    data.mkdir(parents=True, exist_ok=True)
    (data / "labels.json").write_text(json.dumps(labels, ensure_ascii=False) + "\n", encoding="utf-8")
    payload = {"params": {"phenotypes": phenotypes, "seed": seed, "zipf": zipf}, "branch": BRANCH,
               "labels": len(labels), "labels_sha256": hashlib.sha256(
                   json.dumps(labels, sort_keys=True).encode()).hexdigest(),
               "phenotypes": [{"id": p.id, "name": p.name, "surfaces": list(p.surfaces), "weight": p.weight}
                              for p in chosen]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return chosen


def generator_check(phenotypes: Sequence[Phenotype], labels: Sequence[dict[str, Any]], seed: int,
                    sample: int = 2000) -> dict[str, Any]:
    """How many of ``sample`` generated captions the linker over every label (as the import builds it) links
    exactly as intended: a check of the generator, not a quality figure."""
    from kg.text.linker import Linker, TermLabels

    linker = Linker(TermLabels(r["id"], r["name"] or "", tuple(r["synonyms"] or ())) for r in labels)
    cumulative = np.cumsum([p.weight for p in phenotypes])
    exact = 0
    for i in range(sample):
        caption = make_caption(np.random.default_rng([seed, 3, i]), phenotypes, cumulative)
        exact += linked_roles(linker, caption.text) == caption.intended
    return {"captions": sample, "linked_as_intended": exact, "share": round(exact / sample, 4)}


def generated_pairs(data: Path) -> int:
    meta = data / "meta.json"
    if not meta.exists() or not (data / "manifest.jsonl").exists():
        return 0
    return int(json.loads(meta.read_text(encoding="utf-8"))["pairs"])


def ensure_data(data: Path, pairs: int, *, home: Path | None, seed: int = 0, phenotypes: int = 3000,
                zipf: float = 1.0, workers: int = 2, say: Any = print) -> Path:
    """Generate (or reuse, or extend) ``pairs`` pairs in ``data``; returns ``data/manifest.jsonl``."""
    from tqdm import tqdm

    data = Path(data)
    data.mkdir(parents=True, exist_ok=True)
    chosen = ensure_terms(data, home, phenotypes=phenotypes, seed=seed, zipf=zipf, say=say)
    manifest = data / "manifest.jsonl"
    have = generated_pairs(data)
    if have >= pairs:
        return manifest
    (data / "parts").mkdir(exist_ok=True)
    todo = [c for c in chunks(pairs) if not (data / "parts" / _part_name(*c)).exists()]
    done = pairs - sum(e - s for s, e in todo)
    say(f"generating {pairs - done:,} of {pairs:,} pairs in {data} ({workers} processes)")
    with tqdm(total=pairs, initial=done, desc="generate", unit="pair", dynamic_ncols=True, mininterval=0.5) as bar:
        if workers <= 1:
            _init_worker(str(data), seed, chosen)
            for c in todo:
                bar.update(_chunk(c))
        else:
            ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
            with ctx.Pool(workers, initializer=_init_worker, initargs=(str(data), seed, chosen)) as pool:
                for n in pool.imap_unordered(_chunk, todo):
                    bar.update(n)
    tmp = manifest.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for start, end in chunks(pairs):
            out.write((data / "parts" / _part_name(start, end)).read_text(encoding="utf-8"))
    os.replace(tmp, manifest)
    labels = json.loads((data / "labels.json").read_text(encoding="utf-8"))
    check = generator_check(chosen, labels, seed)
    say(f"generator check: {check['linked_as_intended']} of {check['captions']} captions link exactly as "
        "their template intends")
    meta = {"pairs": pairs, "seed": seed, "phenotypes": phenotypes, "zipf": zipf, "chunk": CHUNK,
            "sources": [s[0] for s in SOURCES], "generator_check": check}
    (data / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    for stale in manifest.parent.glob("manifest-*.jsonl"):
        stale.unlink()  # first-N files of an earlier, smaller run are still right, but cheap to remake
    return manifest


def manifest_for(data: Path, n: int) -> Path:
    """``data/manifest-N.jsonl``: the first ``n`` lines of ``data/manifest.jsonl`` (made once)."""
    out = Path(data) / f"manifest-{n}.jsonl"
    if out.exists():
        return out
    tmp = out.with_suffix(".tmp")
    written = 0
    with (Path(data) / "manifest.jsonl").open(encoding="utf-8") as src, tmp.open("w", encoding="utf-8") as dst:
        for line in src:
            if written == n:
                break
            dst.write(line)
            written += 1
    if written < n:
        tmp.unlink()
        raise ValueError(f"{data}/manifest.jsonl has {written} pairs, fewer than {n}")
    os.replace(tmp, out)
    return out


def manifest_records(path: Path) -> Iterator[dict[str, Any]]:
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def query_images(seed: int, n: int) -> list[tuple[bytes, str]]:
    """``n`` held-out images made like the pairs' ones (pair numbers from 10⁹ on: in no manifest)."""
    pool = load_pool()
    return [make_image(pool, seed, QUERY_OFFSET + i) for i in range(n)]


def phenotype_counts(records: Iterable[Caption]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for caption in records:
        for pid, _ in caption.intended:
            counts[pid] = counts.get(pid, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder to write (reused if present)")
    parser.add_argument("--home", type=Path, help="a built PHENOKG_HOME to draw phenotypes from (first run only)")
    parser.add_argument("--pairs", type=int, default=520_000)
    parser.add_argument("--phenotypes", type=int, default=3000)
    parser.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent of the phenotypes' weights")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    manifest = ensure_data(args.data, args.pairs, home=args.home, seed=args.seed, phenotypes=args.phenotypes,
                           zipf=args.zipf, workers=args.workers,
                           say=lambda m: print(f"[evidence_scale_data] {m}", file=sys.stderr, flush=True))
    print(manifest)
    return 0


def _home_setting(home: Path) -> dict[str, Any]:
    """``GraphSettings`` keyword arguments naming ``home`` (settings are read by their aliases only)."""
    return {"PHENOKG_HOME": str(home)}


if __name__ == "__main__":
    raise SystemExit(main())
