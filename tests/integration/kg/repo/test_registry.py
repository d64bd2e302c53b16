"""Model registry (kg.repo.registry graph side + models.registry file side) on the real embedded server."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kg.errors import NotFoundError, ValidationError
from kg.repo.registry import (
    ModelVersion,
    activate_model,
    active_model,
    get_model,
    list_models,
    register_model,
    update_metrics,
)
from kg.store.graph import Graph
from kg.store.migrations import migrate
from models.registry import (
    code_version,
    data_hash,
    knowledge_encoder_dir,
    new_model_id,
    read_model_dir,
    write_model_card,
)
from models.types import PhenotypeAttributes

pytestmark = pytest.mark.integration


@pytest.fixture()
def reg(empty_graph: Graph) -> Graph:
    migrate(empty_graph)  # V0001: unique ModelVersion.id, index on kind
    return empty_graph


def _version(model_id: str, kind: str = "knowledge-encoder", created: str = "2099-01-01T00:00:00+00:00",
             **metrics: float) -> ModelVersion:
    return ModelVersion(id=model_id, kind=kind, path=f"/models/{model_id}",
                        config={"lr": 2e-5, "nested": {"a": [1]}}, metrics=dict(metrics), data_hash="sha256:abc",
                        seed=7, code_version="deadbeef",
                        created_at=created)


def test_register_get_list(reg: Graph) -> None:
    a = register_model(reg, _version("ke-a", created="2099-01-01T00:00:00+00:00", r1=0.5))
    assert a.active is False and a.config == {"lr": 2e-5, "nested": {"a": [1]}} and a.metrics == {"r1": 0.5}
    assert a.seed == 7 and a.data_hash == "sha256:abc" and a.code_version == "deadbeef"
    register_model(reg, _version("ke-b", created="2099-01-02T00:00:00+00:00"))
    register_model(reg, _version("clip-a", kind="clip", created="2099-01-01T12:00:00+00:00"))
    assert get_model(reg, "ke-a") == a
    assert [m.id for m in list_models(reg)] == ["ke-b", "clip-a", "ke-a"]  # newest first
    assert [m.id for m in list_models(reg, "knowledge-encoder")] == ["ke-b", "ke-a"]
    assert list_models(reg, "nothing") == []
    # config/metrics are stored as JSON strings
    raw = reg.read("MATCH (m:ModelVersion {id: 'ke-a'}) RETURN m.config AS c, m.metrics AS m")[0]
    assert json.loads(raw["c"]) == {"lr": 2e-5, "nested": {"a": [1]}} and json.loads(raw["m"]) == {"r1": 0.5}
    with pytest.raises(NotFoundError):
        get_model(reg, "missing")


def test_register_rejects_duplicates_and_bad_input(reg: Graph) -> None:
    register_model(reg, _version("ke-a"))
    with pytest.raises(ValidationError, match="already registered"):
        register_model(reg, _version("ke-a"))
    with pytest.raises(ValidationError, match="invalid model id"):
        register_model(reg, _version("bad id; MATCH"))
    with pytest.raises(ValidationError, match="invalid model kind"):
        register_model(reg, _version("ke-x", kind="Bad Kind"))
    assert reg.read("MATCH (m:ModelVersion) RETURN count(m) AS n") == [{"n": 1}]


def test_exactly_one_active_per_kind(reg: Graph) -> None:
    for mid in ("ke-a", "ke-b", "ke-c"):
        register_model(reg, _version(mid))
    register_model(reg, _version("clip-a", kind="clip"), activate=True)
    assert active_model(reg, "knowledge-encoder") is None
    assert activate_model(reg, "ke-a").active is True
    b = activate_model(reg, "ke-b")
    assert b.active and b.activated_at
    assert [m.id for m in list_models(reg, "knowledge-encoder") if m.active] == ["ke-b"]
    assert active_model(reg, "knowledge-encoder") == get_model(reg, "ke-b")
    assert active_model(reg, "clip") == get_model(reg, "clip-a")  # other kinds untouched
    activate_model(reg, "ke-b")  # idempotent
    assert sorted(m.id for m in list_models(reg) if m.active) == ["clip-a", "ke-b"]
    with pytest.raises(NotFoundError):
        activate_model(reg, "missing")
    assert active_model(reg, "knowledge-encoder").id == "ke-b"  # type: ignore[union-attr]


def test_concurrent_activations_leave_one_active(reg: Graph) -> None:
    ids = [f"ke-{i}" for i in range(4)]
    for mid in ids:
        register_model(reg, _version(mid))
    for _ in range(2):
        start = threading.Barrier(len(ids))

        def go(mid: str, start: threading.Barrier = start) -> None:
            start.wait()
            activate_model(reg, mid)

        with ThreadPoolExecutor(max_workers=len(ids)) as pool:
            list(pool.map(go, ids))
        active = [m.id for m in list_models(reg, "knowledge-encoder") if m.active]
        assert len(active) == 1


def test_update_metrics(reg: Graph) -> None:
    register_model(reg, _version("ke-a", r1=0.1))
    assert update_metrics(reg, "ke-a", {"r1": 0.9}).metrics == {"r1": 0.9}
    with pytest.raises(NotFoundError):
        update_metrics(reg, "missing", {})


def test_model_directory_round_trip(tmp_path: Path) -> None:
    model = tmp_path / "m"
    (model / "encoder").mkdir(parents=True)
    (model / "encoder" / "model.safetensors").write_bytes(b"\0")
    write_model_card(model, {"kind": "knowledge-encoder", "seed": 1, "path": tmp_path},
                     {"R@1": float("nan"), "split": ("a", "b")})
    read = read_model_dir(model)
    assert read.kind == "knowledge-encoder" and read.config["path"] == str(tmp_path)
    assert read.metrics == {"R@1": None, "split": ["a", "b"]}  # NaN → null, tuples → lists
    assert read.weights() == [model / "encoder" / "model.safetensors"]
    assert knowledge_encoder_dir(model) == model / "encoder"
    assert knowledge_encoder_dir(model / "encoder") == model / "encoder"
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        read_model_dir(model / "encoder")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="safetensors"):
        read_model_dir(tmp_path / "empty")


def test_data_hash_and_ids() -> None:
    a = [PhenotypeAttributes("HP:1", "A", synonyms=("x",)), PhenotypeAttributes("HP:2", "B")]
    h = data_hash({"attributes": a, "held_out": ["HP:2"]})
    assert h.startswith("sha256:") and len(h) == 7 + 64
    assert data_hash({"held_out": ["HP:2"], "attributes": list(a)}) == h  # key order does not matter
    assert data_hash({"attributes": a, "held_out": ["HP:1"]}) != h
    changed = [PhenotypeAttributes("HP:1", "A", synonyms=("y",)), a[1]]
    assert data_hash({"attributes": changed, "held_out": ["HP:2"]}) != h
    mid = new_model_id("knowledge-encoder")
    assert mid.startswith("knowledge-encoder-") and mid != new_model_id("knowledge-encoder")
    version = code_version()
    assert version and (len(version.split("+")[0]) == 40 or version.startswith("phenokg "))
