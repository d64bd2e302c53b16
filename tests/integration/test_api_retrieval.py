"""POST /retrieval/image and GET /evidence/{id}/image on the real app and the real embedded graph.

The mini fixture HPO, five evidence images imported through :func:`kg.ingest.evidence.import_evidence`, and two
tiny CLIP models (random 2-layer BERT, timm's test EfficientNet, 32 px) trained for two steps on them and
registered. Covers: 503 before any model is active, upload errors through HTTP, the answer's shape and its
consistency with the graph (an evidence image finds itself; disease support and contradiction follow the
typical / excluded sets), thumbnails, a model swap under concurrent requests without a failed request, and
the ``PHENOKG_CLIP_MODEL`` fallback.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from app.config import AppSettings
from app.main import create_app
from app.retrieval import NO_MODEL, RetrievalService
from kg.config import GraphSettings
from kg.ingest.build import build
from kg.ingest.evidence import BlobStore, import_evidence, linker_from_graph
from kg.repo.registry import ModelVersion, activate_model, register_model
from kg.repo.training_views import evidence_items
from kg.store.graph import Graph
from models.train.clip_run import ClipData, run_clip_training
from models.train.clip_train import ClipTrainConfig
from tests.helpers import FIXTURES, assert_problem, clear_graph

pytestmark = pytest.mark.integration

MAX_BYTES = 100_000
CAPTIONS = ["Chest radiograph shows pneumonia.", "Cardiomegaly.", "Pleural effusion. No pneumothorax.",
            "Pneumothorax.", "Pneumonia and cardiomegaly."]
PNEUMONIA, PNEUMOTHORAX, CARDIOMEGALY, EFFUSION = "HP:0002090", "HP:0002107", "HP:0001640", "HP:0002202"


def _image(i: int) -> bytes:
    rng = np.random.default_rng(i)
    arr = (rng.random((28, 28)) * 255).astype(np.uint8)
    arr[: 4 * (i + 1)] //= 3  # every image distinct
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def _settings(home: Path, graph_settings: GraphSettings, **extra: Any) -> AppSettings:
    env: dict[str, Any] = {"PHENOKG_HOME": str(home), "PHENOKG_RETRIEVAL_MAX_BYTES": MAX_BYTES, **extra}
    if graph_settings.neo4j_uri:
        env["NEO4J_URI"] = graph_settings.neo4j_uri
    return AppSettings(**env)


def _train(graph: Graph, home: Path, tiny_bert_dir: Path, out: Path, seed: int) -> str:
    views = [dict(v) for v in evidence_items(graph, blob_root=home / "blobs")]
    config = ClipTrainConfig.from_dict(dict(
        image_model="test_efficientnet", image_pretrained=False, text_model=str(tiny_bert_dir), embed_dim=16,
        image_size=32, batch_size=4, lr=1e-3, text_lr=1e-3, max_steps=2, max_length=32, w_kd=0.0, log_every=1,
        seed=seed))
    result = run_clip_training(ClipData(views), config, out, device="cpu", progress=False)
    register_model(graph, ModelVersion(id=result.model_id, kind="clip", path=str(out), config=result.config,
                                       seed=seed))
    return result.model_id


@pytest.fixture(scope="module")
def world(graph: Graph, graph_settings: GraphSettings, tiny_bert_dir: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Mini graph + evidence + two registered (not yet active) tiny clip models."""
    home = graph_settings.home
    clear_graph(graph)
    build(graph, obo=FIXTURES / "mini.obo", hpoa=FIXTURES / "mini.hpoa", include_pack=False, progress=False)
    data = tmp_path_factory.mktemp("retrieval-evidence")
    lines = []
    for i, caption in enumerate(CAPTIONS):
        (data / f"{i}.png").write_bytes(_image(i))
        lines.append(json.dumps({"image": f"{i}.png", "caption": caption, "source": "retrieval-test",
                                 "license": "CC0"}))
    (data / "evidence.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_evidence(graph, data / "evidence.jsonl", linker_from_graph(graph), BlobStore(home / "blobs"),
                             progress=False)
    assert report.created == len(CAPTIONS) and not report.errors
    items = {v["caption"]: v for v in evidence_items(graph)}
    models = tmp_path_factory.mktemp("retrieval-models")
    a = _train(graph, home, tiny_bert_dir, models / "a", seed=0)
    b = _train(graph, home, tiny_bert_dir, models / "b", seed=1)
    yield {"home": home, "data": data, "evidence": [items[c]["id"] for c in CAPTIONS], "a": a, "b": b,
           "b_dir": models / "b"}
    clear_graph(graph)


@pytest.fixture(scope="module")
def client(world: dict[str, Any], graph_settings: GraphSettings) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(world["home"], graph_settings))) as test_client:
        yield test_client


def _service(client: TestClient) -> RetrievalService:
    app = cast(FastAPI, client.app)
    service: RetrievalService = app.state.retrieval
    return service


def _wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def post(client: TestClient, data: bytes, content_type: str = "image/png", name: str = "x.png",
         **params: Any) -> Any:
    return client.post("/retrieval/image", params=params, files={"file": (name, data, content_type)})


def test_no_active_model_is_503_and_bad_uploads_are_refused_first(client: TestClient, world: dict[str, Any]) -> None:
    body = assert_problem(post(client, _image(0)), 503)
    assert body["detail"] == NO_MODEL
    assert "not an image" in assert_problem(post(client, b"plain text\n" * 20), 415)["detail"]
    noise = (np.random.default_rng(9).random((256, 256, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "PNG")
    assert len(buf.getvalue()) > MAX_BYTES
    assert_problem(post(client, buf.getvalue()), 413)
    assert "truncated" in assert_problem(post(client, _image(0)[:120]), 422)["detail"]
    jpeg = io.BytesIO()
    Image.open(io.BytesIO(_image(0))).save(jpeg, "JPEG")
    assert "declared as image/png" in assert_problem(post(client, jpeg.getvalue()), 422)["detail"]
    missing = client.post("/retrieval/image", files={"other": ("x.png", _image(0), "image/png")})
    assert assert_problem(missing, 422)["errors"][0]["loc"] == ["body", "file"]
    extra = client.post("/retrieval/image", files={"file": ("x.png", _image(0), "image/png")}, data={"k": "3"})
    assert assert_problem(extra, 422)["errors"][0]["loc"] == ["body", "k"]  # the one field is 'file'
    assert_problem(client.post("/retrieval/image", content=_image(0), headers={"content-type": "image/png"}), 415)
    assert_problem(post(client, _image(0), k=0), 422)


def test_retrieval_answer_evidence_images_and_model_swap(client: TestClient, graph: Graph,
                                                         world: dict[str, Any]) -> None:
    activate_model(graph, world["a"])
    _service(client).refresh()  # what POST /models/{id}/activate does
    first = post(client, _image(0), k=100, diseases=10, evidence=3)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["model"] == {"id": world["a"], "kind": "clip", "active": True}
    assert body["device"] == "cpu" and body["elapsed_ms"] > 0
    phenotypes = body["phenotypes"]
    ids = [p["id"] for p in phenotypes]
    assert len(ids) == len(set(ids)) >= 8 and "HP:0000118" not in ids and "HP:0000006" not in ids
    assert all(p["id"].startswith("HP:") and p["name"] for p in phenotypes)
    scores = [p["score"] for p in phenotypes]
    assert scores == sorted(scores, reverse=True) and all(-1.0001 <= s <= 1.0001 for s in scores)
    # an evidence image retrieves itself first (same bytes, same preprocessing: cosine 1)
    assert body["evidence"][0]["id"] == world["evidence"][0] and len(body["evidence"]) == 3
    top = body["evidence"][0]
    assert top["score"] == pytest.approx(1.0, abs=1e-4) and top["caption"] == CAPTIONS[0]
    assert top["image_url"] == f"/evidence/{top['id']}/image" and top["phenotypes"] == [PNEUMONIA]
    # with every phenotype in the top k, support and contradiction follow the mini fixture's sets
    diseases = {d["id"]: d for d in body["diseases"]}
    heart = diseases["ORPHA:200002"]
    assert set(heart["contradicted_by"]) == {PNEUMOTHORAX, EFFUSION}  # NOT and 0 % rows: its excluded set
    assert heart["supported_by"] == [CARDIOMEGALY]
    lung = diseases["OMIM:100001"]
    assert set(lung["supported_by"]) == {PNEUMONIA, EFFUSION} and lung["contradicted_by"] == [CARDIOMEGALY]
    assert heart["name"] == "Heart disease B" and heart["source"] == "ORPHA"
    assert all(set(d["supported_by"]) | set(d["contradicted_by"]) <= set(ids) for d in body["diseases"])
    d_scores = [d["score"] for d in body["diseases"]]
    assert d_scores == sorted(d_scores, reverse=True)
    small = post(client, _image(0), k=3, diseases=1, evidence=0).json()
    assert len(small["phenotypes"]) == 3 and len(small["diseases"]) <= 1 and small["evidence"] == []
    assert [p["id"] for p in small["phenotypes"]] == ids[:3]  # same model, same image: same order

    # evidence images: the stored bytes, a PNG thumbnail, 404 for an unknown id
    raw = client.get(top["image_url"])
    assert raw.status_code == 200 and raw.headers["content-type"] == "image/png" and raw.content == _image(0)
    thumb = client.get(top["image_url"], params={"size": 16})
    assert thumb.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(thumb.content)).size == (16, 16)
    assert_problem(client.get("/evidence/ev:nope/image"), 404)
    assert_problem(client.get(top["image_url"], params={"size": 4}), 422)

    # swap to model B while requests are running: none fails, later ones are answered by B
    answers: list[Any] = []
    stop = threading.Event()

    def hammer(i: int) -> None:
        while not stop.is_set():
            answers.append(post(client, _image(i % len(CAPTIONS)), k=5, evidence=1))

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        _wait_for(lambda: len(answers) >= 8)  # model A is answering
        activate_model(graph, world["b"])
        _service(client).refresh()
        swapped = len(answers)
        _wait_for(lambda: len(answers) >= swapped + 8)  # and now model B
        after = post(client, _image(0), k=100, diseases=10, evidence=3)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert answers and all(r.status_code == 200 for r in answers), [r.text for r in answers if r.status_code != 200]
    served = [r.json()["model"]["id"] for r in answers]
    assert served[0] == world["a"] and served[-1] == world["b"] and set(served) == {world["a"], world["b"]}
    body_b = after.json()
    assert body_b["model"]["id"] == world["b"]
    assert body_b["evidence"][0]["id"] == world["evidence"][0]  # B embedded the evidence itself
    assert {p["id"]: p["score"] for p in body_b["phenotypes"]} != {p["id"]: p["score"] for p in phenotypes}


def test_clip_model_setting_serves_when_none_is_active(graph: Graph, graph_settings: GraphSettings,
                                                       world: dict[str, Any]) -> None:
    graph.write("MATCH (m:ModelVersion) SET m.active = false")
    settings = _settings(world["home"], graph_settings, PHENOKG_CLIP_MODEL=str(world["b_dir"]))
    with TestClient(create_app(settings)) as other:
        answer = post(other, _image(3), k=4, evidence=2)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == {"id": "b", "kind": "clip", "active": False}
    assert body["evidence"][0]["id"] == world["evidence"][3] and len(body["phenotypes"]) == 4
