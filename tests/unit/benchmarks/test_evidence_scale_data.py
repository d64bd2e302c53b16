"""The evidence scale benchmark's generator (benchmarks/evidence_scale_data.py): its pure parts and a tiny folder."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import evidence_scale_data as gen
from kg.text.linker import Linker, TermLabels

LABELS = [
    {"id": "HP:0002202", "name": "Pleural effusion", "synonyms": ["Fluid around the lungs"]},
    {"id": "HP:0001640", "name": "Cardiomegaly", "synonyms": ["Enlarged heart", "Increased heart size"]},
    {"id": "HP:0100750", "name": "Atelectasis", "synonyms": ["Collapsed lung"]},
    {"id": "HP:0002107", "name": "Pneumothorax", "synonyms": []},
    {"id": "HP:0100598", "name": "Pulmonary edema", "synonyms": ["Pulmonary oedema"]},
    {"id": "HP:0033608", "name": "Pulmonary nodule", "synonyms": []},
    {"id": "HP:0002090", "name": "Pneumonia", "synonyms": []},
    {"id": "HP:0031944", "name": "Pleural thickening", "synonyms": []},
]


@pytest.fixture(scope="module")
def phenotypes() -> list[gen.Phenotype]:
    return gen.choose_phenotypes(LABELS, 6, seed=0, zipf=1.0)


@pytest.fixture(scope="module")
def linker() -> Linker:
    return Linker(TermLabels(r["id"], r["name"], tuple(r["synonyms"])) for r in LABELS)


@pytest.fixture(scope="module")
def pool() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(20, 28, 28), dtype=np.uint8)


def _cumulative(phenotypes: list[gen.Phenotype]) -> np.ndarray:
    return np.cumsum([p.weight for p in phenotypes])


def test_choose_phenotypes_is_deterministic_and_zipf_weighted(phenotypes: list[gen.Phenotype]) -> None:
    again = gen.choose_phenotypes(LABELS, 6, seed=0, zipf=1.0)
    assert again == phenotypes
    assert len({p.id for p in phenotypes}) == 6
    weights = [p.weight for p in phenotypes]
    assert weights == sorted(weights, reverse=True)
    assert sum(weights) == pytest.approx(1.0)
    assert weights[0] / weights[1] == pytest.approx(2.0)  # 1/rank
    assert gen.choose_phenotypes(LABELS, 6, seed=1, zipf=1.0) != phenotypes
    with pytest.raises(ValueError, match="only"):
        gen.choose_phenotypes(LABELS, 50, seed=0, zipf=1.0)


def test_surfaces_are_names_first_and_link_to_their_term(phenotypes: list[gen.Phenotype], linker: Linker) -> None:
    heart = gen.choose_phenotypes(LABELS, 8, seed=0, zipf=1.0)
    cardio = next(p for p in heart if p.id == "HP:0001640")
    assert cardio.surfaces == ("Cardiomegaly", "Enlarged heart", "Increased heart size")
    for p in phenotypes:
        for s in p.surfaces:
            assert gen.links_as_intended(linker, p.id, s)


def test_surface_in_sentence_keeps_abbreviations() -> None:
    assert gen.surface_in_sentence("Pleural effusion", first=False) == "pleural effusion"
    assert gen.surface_in_sentence("pleural effusion", first=True) == "Pleural effusion"
    assert gen.surface_in_sentence("CNS hypomyelination", first=False) == "CNS hypomyelination"
    assert gen.surface_in_sentence("pH abnormality", first=False) == "pH abnormality"
    assert gen.surface_in_sentence("C3 deficiency", first=False) == "C3 deficiency"


def test_templates_show_negate_and_hedge_as_intended(phenotypes: list[gen.Phenotype], linker: Linker) -> None:
    rng = np.random.default_rng(0)
    cumulative = _cumulative(phenotypes)
    roles: set[str] = set()
    for _ in range(300):
        caption = gen.make_caption(rng, phenotypes, cumulative)
        assert 1 <= len(caption.intended) <= 3
        assert len({pid for pid, _ in caption.intended}) == len(caption.intended)
        assert gen.linked_roles(linker, caption.text) == caption.intended, caption.text
        roles.update(r for _, r in caption.intended)
    assert roles == {"shows", "uncertain", "rules_out"}


@pytest.mark.parametrize(("template", "roles"), [(t, r) for group in gen.TEMPLATES.values() for t, r in group])
def test_every_template_links_each_slot_in_its_role(template: str, roles: str, linker: Linker) -> None:
    surfaces = ["Pleural effusion", "Cardiomegaly", "Atelectasis"][:len(roles)]
    ids = ["HP:0002202", "HP:0001640", "HP:0100750"]
    text = gen._fill(template, 3, [gen.surface_in_sentence(s, gen._starts_sentence(template, i))
                                   for i, s in enumerate(surfaces)])
    expected = tuple((ids[i], gen.ROLE_NAMES[r]) for i, r in enumerate(roles))
    assert gen.linked_roles(linker, text) == expected, text


def test_zipf_skew_gives_the_top_phenotype_most_mentions(phenotypes: list[gen.Phenotype]) -> None:
    rng = np.random.default_rng(1)
    cumulative = _cumulative(phenotypes)
    counts = gen.phenotype_counts(gen.make_caption(rng, phenotypes, cumulative) for _ in range(2000))
    assert max(counts, key=lambda k: counts[k]) == phenotypes[0].id
    assert counts[phenotypes[0].id] > 2 * counts[phenotypes[-1].id]


def test_images_are_deterministic_distinct_and_within_28_to_224(pool: np.ndarray) -> None:
    seen: set[str] = set()
    formats: set[str] = set()
    for pair in range(60):
        data, ext = gen.make_image(pool, 0, pair)
        assert gen.make_image(pool, 0, pair) == (data, ext)
        digest = hashlib.sha256(data).hexdigest()
        assert digest not in seen
        seen.add(digest)
        with Image.open(io.BytesIO(data)) as img:
            assert img.format == {"png": "PNG", "jpg": "JPEG"}[ext]
            w, h = img.size
        assert gen.MIN_SIDE <= w <= gen.MAX_SIDE and gen.MIN_SIDE <= h <= gen.MAX_SIDE
        formats.add(ext)
    assert formats == {"png", "jpg"}
    assert gen.make_image(pool, 1, 0)[0] != gen.make_image(pool, 0, 0)[0]


def test_identical_pixels_still_give_distinct_files() -> None:
    flat = np.full((1, 28, 28), 128, dtype=np.uint8)  # one source image: only the pair number differs
    digests = {hashlib.sha256(gen.make_image(flat, 0, p)[0]).hexdigest() for p in range(40)}
    assert len(digests) == 40


def test_image_sizes_span_the_range() -> None:
    rng = np.random.default_rng(0)
    sides = [gen.image_size(rng) for _ in range(5000)]
    flat = [s for pair in sides for s in pair]
    assert min(flat) >= 28 and max(flat) <= 224
    assert min(flat) < 35 and max(flat) > 200


def test_pairs_are_deterministic_with_known_sources(pool: np.ndarray, phenotypes: list[gen.Phenotype]) -> None:
    cumulative = _cumulative(phenotypes)
    a = [gen.make_pair(pool, phenotypes, cumulative, 0, i) for i in range(40)]
    b = [gen.make_pair(pool, phenotypes, cumulative, 0, i) for i in range(40)]
    assert a == b
    names = {s[0] for s in gen.SOURCES}
    assert {rec["source"] for rec, _, _ in a} <= names
    assert len({rec["source"] for rec, _, _ in a}) >= 3
    assert len({rec["image"] for rec, _, _ in a}) == 40
    assert all(set(rec) == {"image", "caption", "source", "license"} for rec, _, _ in a)


def test_chunks_cover_every_pair_once() -> None:
    assert gen.chunks(12, size=5) == [(0, 5), (5, 10), (10, 12)]
    assert gen.chunks(10, size=5) == [(0, 5), (5, 10)]


def _seed_folder(data: Path, phenotypes: list[gen.Phenotype]) -> None:
    data.mkdir(parents=True, exist_ok=True)
    (data / "labels.json").write_text(json.dumps(LABELS))
    (data / "terms.json").write_text(json.dumps({
        "params": {"phenotypes": len(phenotypes), "seed": 0, "zipf": 1.0},
        "phenotypes": [{"id": p.id, "name": p.name, "surfaces": list(p.surfaces), "weight": p.weight}
                       for p in phenotypes]}))


def test_folder_resumes_reuses_and_takes_first_n(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 pool: np.ndarray, phenotypes: list[gen.Phenotype]) -> None:
    monkeypatch.setattr(gen, "CHUNK", 4)
    monkeypatch.setattr(gen, "load_pool", lambda path=gen.NPZ: pool)
    data = tmp_path / "data"
    _seed_folder(data, phenotypes)
    say: list[str] = []
    manifest = gen.ensure_data(data, 10, home=None, phenotypes=6, workers=1, say=say.append)
    first = manifest.read_bytes()
    records = list(gen.manifest_records(manifest))
    assert len(records) == 10
    assert len({r["image"] for r in records}) == 10
    assert all((data / r["image"]).is_file() for r in records)
    meta = json.loads((data / "meta.json").read_text())
    assert meta["pairs"] == 10 and meta["generator_check"]["share"] == 1.0

    # a run killed after some chunks: the next one makes only the missing ones and the same manifest
    (data / "manifest.jsonl").unlink()
    (data / "meta.json").unlink()
    (data / "parts" / "part-0000004-0000008.jsonl").unlink()
    say.clear()
    assert gen.ensure_data(data, 10, home=None, phenotypes=6, workers=1, say=say.append).read_bytes() == first
    assert any("generating 4 of 10" in s for s in say)

    # reused as is when big enough; the first N lines for a smaller size
    say.clear()
    gen.ensure_data(data, 6, home=None, phenotypes=6, workers=1, say=say.append)
    assert not any("generating" in s for s in say)
    small = gen.manifest_for(data, 6)
    assert small.read_bytes() == b"".join(first.splitlines(keepends=True)[:6])
    with pytest.raises(ValueError, match="fewer"):
        gen.manifest_for(data, 11)

    # extending to more pairs keeps the first ones
    bigger = gen.ensure_data(data, 13, home=None, phenotypes=6, workers=1, say=say.append).read_bytes()
    assert bigger.startswith(b"".join(first.splitlines(keepends=True)[:8]))
    assert len(bigger.splitlines()) == 13


def test_other_parameters_need_another_folder(tmp_path: Path, phenotypes: list[gen.Phenotype]) -> None:
    _seed_folder(tmp_path, phenotypes)
    with pytest.raises(SystemExit, match="another --data"):
        gen.ensure_terms(tmp_path, None, phenotypes=6, seed=5, zipf=1.0)
