"""models.evidence_set: nearest evidence items over an image index (shared images, stale images, HNSW), and
bringing a model's index up to date (embed only what is missing, save beside the model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.evidence_index import EvidenceVectorIndex
from models.evidence_set import EvidenceSet, embed_missing, image_key, open_vector_index, save_quietly


def _unit(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(rows, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_items_sharing_an_image_are_neighbours_together_and_stale_images_are_skipped() -> None:
    images = _unit(6, 8)
    vectors = EvidenceVectorIndex(8)
    vectors.add([f"h{i}" for i in range(6)], images)
    # items: two captions of image 0, one of image 1, one of image 2; images 3–5 are no longer evidence
    items = EvidenceSet(["a0", "b0", "c1", "d2"], [0, 0, 1, 2], vectors)
    query = images[0:1]
    positions, sims = items.nearest(query, 3)
    assert [items.ids[p] for p in positions[0][:2]] == ["a0", "b0"]
    assert sims[0][0] == pytest.approx(1.0, abs=1e-5) and sims[0][1] == sims[0][0]
    assert set(items.ids[p] for p in positions[0]) <= {"a0", "b0", "c1", "d2"}
    stale = images[4:5]  # nearest images are not evidence: the search goes further
    positions, _ = items.nearest(stale, 4)
    assert sorted(items.ids[p] for p in positions[0]) == ["a0", "b0", "c1", "d2"]
    assert items.nearest(query, 10)[0].shape == (1, 4)
    assert np.allclose(items.embeddings([2]), images[1:2])
    with pytest.raises(ValueError, match="image rows"):
        EvidenceSet(["a"], [0, 1], vectors)


def test_hnsw_and_exact_give_the_same_items_on_an_easy_set() -> None:
    images = _unit(3000, 16, seed=1)
    vectors = EvidenceVectorIndex(16, ann_threshold=1000)
    vectors.add([f"h{i}" for i in range(3000)], images)
    assert vectors.ensure_ann(threads=1)
    items = EvidenceSet([f"e{i}" for i in range(3000)], np.arange(3000), vectors)
    positions, _ = items.nearest(images[:20], 1)
    assert (positions[:, 0] == np.arange(20)).all()  # each image finds itself through the graph


def test_embed_missing_embeds_each_new_image_once_and_reports_unreadable_items(tmp_path: Path) -> None:
    vectors = EvidenceVectorIndex(4)
    vectors.add(["known"], _unit(1, 4))
    keys = ["known", "new", "new", "broken", image_key("", "ev:1")]
    loaded: list[int] = []

    def load(i: int) -> object | None:
        loaded.append(i)
        return None if keys[i] == "broken" else i

    added, unreadable = embed_missing(vectors, keys, load, lambda imgs: _unit(len(imgs), 4, seed=len(imgs)))
    assert added == 2 and unreadable == {3} and loaded == [1, 3, 4]
    assert vectors.row_of("evidence:ev:1") is not None and vectors.row_of("broken") is None
    folder = tmp_path / "model" / "evidence_index"
    assert save_quietly(vectors, folder)
    again = open_vector_index(folder, 4)
    assert list(again.hashes) == list(vectors.hashes)
    assert len(open_vector_index(folder, 8)) == 0  # another model's dimension: rebuilt, not used
    (folder / "index.json").write_text("{not json")
    assert len(open_vector_index(folder, 4)) == 0


def test_save_quietly_reports_a_folder_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    vectors = EvidenceVectorIndex(4)
    vectors.add(["a"], _unit(1, 4))
    assert not save_quietly(vectors, blocker / "evidence_index")
