"""models.evidence_index: exact and HNSW search agree, rows are append-only, files round-trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.evidence_index import EvidenceVectorIndex


def _unit(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors (as image embeddings are): 40 centres plus noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dim))
    x = centres[rng.integers(0, 40, rows)] + 0.6 * rng.normal(size=(rows, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _hashes(n: int, start: int = 0) -> list[str]:
    return [f"{i:064x}" for i in range(start, start + n)]


def test_exact_search_returns_the_true_neighbours_best_first() -> None:
    vectors = _unit(500, 16)
    index = EvidenceVectorIndex(16)
    assert index.add(_hashes(500), vectors) == 500
    queries = _unit(5, 16, seed=1)
    rows, sims = index.search(queries, 7, exact=True)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :7]
    assert rows.shape == (5, 7) and rows.dtype == np.int64
    assert (rows == truth).all()
    assert np.allclose(sims, np.take_along_axis(queries @ vectors.T, truth, axis=1), atol=1e-5)
    assert (np.diff(sims, axis=1) <= 1e-6).all()


def test_k_larger_than_the_index_and_an_empty_index() -> None:
    index = EvidenceVectorIndex(8)
    rows, sims = index.search(_unit(2, 8), 5)
    assert rows.shape == (2, 0) and sims.shape == (2, 0)
    index.add(_hashes(3), _unit(3, 8))
    rows, _ = index.search(_unit(2, 8), 5)
    assert rows.shape == (2, 3) and sorted(rows[0].tolist()) == [0, 1, 2]


def test_rows_are_append_only_and_repeated_hashes_are_added_once() -> None:
    index = EvidenceVectorIndex(8)
    first = _unit(4, 8)
    index.add(["a", "b", "a", "c"], first)
    assert len(index) == 3 and list(index.hashes) == ["a", "b", "c"]
    assert np.allclose(index.vectors[2], first[3])  # "c" is the fourth vector given
    assert index.add(["b", "d"], _unit(2, 8, seed=3)) == 1
    assert index.row_of("d") == 3 and index.row_of("a") == 0 and index.row_of("zz") is None
    assert index.missing(["a", "e", "e", "f"]) == ["e", "f"]
    with pytest.raises(ValueError, match="dimension 8"):
        index.add(["x"], np.zeros((1, 9), np.float32))


def test_hnsw_search_has_high_recall_and_takes_rows_added_later() -> None:
    vectors = _unit(6000, 32)
    index = EvidenceVectorIndex(32, ann_threshold=5000)
    index.add(_hashes(5000), vectors[:5000])
    assert index.ensure_ann(threads=1) and index.has_ann
    index.add(_hashes(1000, 5000), vectors[5000:])  # added to the graph without a rebuild
    queries = _unit(100, 32, seed=2)
    approx, sims = index.search(queries, 10)
    exact, exact_sims = index.search(queries, 10, exact=True)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx.tolist(), exact.tolist(), strict=True)])
    assert recall >= 0.95
    assert np.abs(sims[:, 0] - exact_sims[:, 0]).max() < 1e-4  # cosine, as exact search gives it
    assert (approx >= 5000).any()  # the later rows are found


def test_save_and_load_round_trip_with_and_without_the_graph(tmp_path: Path) -> None:
    vectors = _unit(300, 16)
    small = EvidenceVectorIndex(16)
    small.add(_hashes(300), vectors)
    small.save(tmp_path / "small")
    assert not (tmp_path / "small" / "hnsw.bin").exists()
    loaded = EvidenceVectorIndex.load(tmp_path / "small", dim=16)
    assert list(loaded.hashes) == list(small.hashes) and not loaded.has_ann
    q = _unit(3, 16, seed=4)
    assert (loaded.search(q, 5)[0] == small.search(q, 5)[0]).all()
    loaded.add(["new"], _unit(1, 16, seed=5))  # a loaded (memory-mapped) index still grows
    assert len(loaded) == 301

    big = EvidenceVectorIndex(16, ann_threshold=100)
    big.add(_hashes(300), vectors)
    big.ensure_ann(threads=1)
    big.save(tmp_path / "big")
    again = EvidenceVectorIndex.load(tmp_path / "big", ann_threshold=100)
    assert again.has_ann
    assert (again.search(q, 5)[0] == big.search(q, 5)[0]).all()


def test_inconsistent_or_foreign_files_are_refused(tmp_path: Path) -> None:
    index = EvidenceVectorIndex(8)
    index.add(_hashes(10), _unit(10, 8))
    index.save(tmp_path)
    with pytest.raises(ValueError, match="dimension 8"):
        EvidenceVectorIndex.load(tmp_path, dim=16)
    meta = json.loads((tmp_path / "index.json").read_text())
    (tmp_path / "index.json").write_text(json.dumps({**meta, "rows": 11}))
    with pytest.raises(ValueError, match="11 rows"):
        EvidenceVectorIndex.load(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({**meta, "format": "other"}))
    with pytest.raises(ValueError, match="not a"):
        EvidenceVectorIndex.load(tmp_path)


def test_a_graph_that_does_not_cover_every_row_is_not_used(tmp_path: Path) -> None:
    index = EvidenceVectorIndex(8, ann_threshold=50)
    index.add(_hashes(60), _unit(60, 8))
    index.ensure_ann(threads=1)
    index.save(tmp_path)
    meta = json.loads((tmp_path / "index.json").read_text())
    (tmp_path / "index.json").write_text(json.dumps({**meta, "ann_rows": 30}))
    loaded = EvidenceVectorIndex.load(tmp_path, ann_threshold=50)
    assert not loaded.has_ann and loaded.ensure_ann(threads=1) and loaded.has_ann
