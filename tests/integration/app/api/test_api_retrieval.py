"""POST /retrieval/image and GET /evidence/{id}/image on the real app and the real embedded graph.

The mini fixture HPO, fourteen evidence images (train and val splits, two findings: Lung disease A shows
pneumonia, Heart disease B shows cardiomegaly) imported through :func:`kg.ingest.evidence.import_evidence`, and two
tiny CLIP models (random 2-layer BERT, timm's test EfficientNet, 32 px) trained for two steps on the train split,
their grounding fitted on the val split, and registered. Covers: 503 before any model is active, upload errors
through HTTP, the grounded answer and its consistency with the graph (an evidence image finds itself; its
phenotypes are backed by the evidence that shows them; findings come from the ranker over the model's
findings), scope=all (503 with Retry-After while the ontology is embedded, then an answer that labels its
extrapolations), thumbnails, a model swap under concurrent requests without a failed request, and the
``PHENOKG_CLIP_MODEL`` fallback for a model without grounding.
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

from app.core.config import AppSettings
from app.main import create_app
from app.services.retrieval import NO_MODEL, RetrievalService
from app.services.training import load_clip_data
from kg.config import GraphSettings
from kg.ingest.build import build
from kg.ingest.evidence import BlobStore, import_evidence, linker_from_graph
from kg.repo.registry import ModelVersion, activate_model, register_model
from kg.repo.training_views import evidence_items
from kg.store.graph import Graph
from models.clip_files import run_dir_of
from models.train.clip_run import ClipData, run_clip_training
from models.train.clip_train import ClipTrainConfig
from tests.helpers import FIXTURES, assert_problem, clear_graph

pytestmark = pytest.mark.integration

MAX_BYTES = 100_000
PNEUMONIA, PNEUMOTHORAX, CARDIOMEGALY, EFFUSION = "HP:0002090", "HP:0002107", "HP:0001640", "HP:0002202"
LUNG, HEART = "OMIM:100001", "ORPHA:200002"
#: (caption, finding, split) of each evidence image; a lung image is bright on the left, a heart image on the right
EVIDENCE = [*[("Chest radiograph shows pneumonia. No cardiomegaly.", LUNG, "train")] * 4,
            *[("Cardiomegaly. No pneumothorax.", HEART, "train")] * 4,
            *[("Pneumonia, no cardiomegaly.", LUNG, "val")] * 3,
            *[("Cardiomegaly without pneumothorax.", HEART, "val")] * 3]


def _image(i: int, finding: str | None = None) -> bytes:
    rng = np.random.default_rng(i)
    arr = (rng.random((28, 28)) * 80).astype(np.uint8)
    if finding == LUNG:
        arr[:, :14] += 160
    elif finding == HEART:
        arr[:, 14:] += 160
    arr[0, : i + 1] = 255  # every image distinct
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def _settings(home: Path, graph_settings: GraphSettings, **extra: Any) -> AppSettings:
    env: dict[str, Any] = {"PHENOKG_HOME": str(home), "PHENOKG_RETRIEVAL_MAX_BYTES": MAX_BYTES, **extra}
    if graph_settings.neo4j_uri:
        env["NEO4J_URI"] = graph_settings.neo4j_uri
    return AppSettings(**env)


def _train(graph: Graph, home: Path, tiny_bert_dir: Path, out: Path, seed: int) -> str:
    train = load_clip_data(graph, "retrieval-test", "train", blob_root=home / "blobs")
    val = load_clip_data(graph, "retrieval-test", "val", blob_root=home / "blobs")
    config = ClipTrainConfig.from_dict(dict(
        image_model="test_efficientnet", image_pretrained=False, text_model=str(tiny_bert_dir), embed_dim=16,
        image_size=32, batch_size=4, lr=1e-3, text_lr=1e-3, max_steps=2, max_length=32, w_kd=0.0, log_every=1,
        seed=seed))
    result = run_clip_training(train, config, out, eval_data=val, device="cpu", progress=False)
    assert result.metrics["grounding"]["fitted"], result.metrics["grounding"]
    register_model(graph, ModelVersion(id=result.model_id, kind="clip", path=str(out), config=result.config,
                                       seed=seed))
    return result.model_id


def _ungrounded(graph: Graph, home: Path, tiny_bert_dir: Path, out: Path) -> Path:
    views = [dict(v) for v in evidence_items(graph, blob_root=home / "blobs")]
    config = ClipTrainConfig.from_dict(dict(
        image_model="test_efficientnet", image_pretrained=False, text_model=str(tiny_bert_dir), embed_dim=16,
        image_size=32, batch_size=4, lr=1e-3, text_lr=1e-3, max_steps=1, max_length=32, w_kd=0.0, seed=2))
    run_clip_training(ClipData(views), config, out, device="cpu", progress=False)
    return out


@pytest.fixture(scope="module")
def world(graph: Graph, graph_settings: GraphSettings, tiny_bert_dir: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Mini graph + evidence + two registered (not yet active) grounded tiny clip models + one without."""
    home = graph_settings.home
    clear_graph(graph)
    build(graph, obo=FIXTURES / "mini.obo", hpoa=FIXTURES / "mini.hpoa", include_pack=False, progress=False)
    data = tmp_path_factory.mktemp("retrieval-evidence")
    lines = []
    for i, (caption, finding, split) in enumerate(EVIDENCE):
        (data / f"{i}.png").write_bytes(_image(i, finding))
        lines.append(json.dumps({"image": f"{i}.png", "caption": caption, "source": "retrieval-test",
                                 "license": "CC0", "dataset": "retrieval-test", "split": split, "index": i,
                                 "label": int(finding == LUNG), "finding": finding}))
    (data / "evidence.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_evidence(graph, data / "evidence.jsonl", linker_from_graph(graph), BlobStore(home / "blobs"),
                             progress=False)
    assert report.created == len(EVIDENCE) and not report.errors
    by_index = {v["extra"]["index"]: v for v in evidence_items(graph)}
    models = tmp_path_factory.mktemp("retrieval-models")
    a = _train(graph, home, tiny_bert_dir, models / "a", seed=0)
    b = _train(graph, home, tiny_bert_dir, models / "b", seed=1)
    plain = _ungrounded(graph, home, tiny_bert_dir, models / "plain")
    yield {"home": home, "data": data, "evidence": [by_index[i]["id"] for i in range(len(EVIDENCE))],
           "links": {by_index[i]["id"]: by_index[i] for i in range(len(EVIDENCE))}, "a": a, "b": b,
           "plain_dir": plain}
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
    lung_id = world["evidence"][0]
    first = post(client, _image(0, LUNG), k=100, findings=10, evidence=3)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["model"]["id"] == world["a"] and body["model"]["active"] and body["model"]["calibrated"]
    assert body["device"] == "cpu" and body["elapsed_ms"] > 0 and body["scope"] == "model"
    # the vocabulary: what the training evidence shows or rules out and the findings' sets (mini HPO + HPOA)
    phenotypes = body["phenotypes"]
    ids = [p["id"] for p in phenotypes]
    learned = {PNEUMONIA, CARDIOMEGALY, PNEUMOTHORAX, EFFUSION}
    assert set(ids) == learned
    assert body["model"]["vocabulary_size"] == len(ids) and all(p["in_vocabulary"] for p in phenotypes)
    assert "HP:0000118" not in ids and "HP:0002086" not in ids  # no grouping terms answered
    probabilities = [p["probability"] for p in phenotypes]
    assert probabilities == sorted(probabilities, reverse=True) and all(0 <= x <= 1 for x in probabilities)
    # an evidence image retrieves itself first (same bytes, same preprocessing: cosine 1)
    assert body["evidence"][0]["id"] == lung_id and len(body["evidence"]) == 3
    top = body["evidence"][0]
    assert top["score"] == pytest.approx(1.0, abs=1e-4) and top["caption"] == EVIDENCE[0][0]
    assert top["image_url"] == f"/evidence/{lung_id}/image" and top["phenotypes"] == [PNEUMONIA]
    assert top["rules_out"] == [CARDIOMEGALY] and top["finding"] == LUNG
    assert body["nearest_similarity"] == pytest.approx(1.0, abs=1e-3)
    assert body["domain_threshold"] is not None and body["in_domain"] and body["warning"] is None
    # the evidence images' embeddings are saved beside the model (14 images: exact search, no HNSW graph)
    path = graph.read("MATCH (m:ModelVersion {id: $id}) RETURN m.path AS path", id=world["a"])[0]["path"]
    saved = run_dir_of(path) / "evidence_index"
    assert (saved / "index.json").is_file() and (saved / "vectors.npy").is_file()
    assert not (saved / "hnsw.bin").exists()
    # every phenotype names the evidence behind it, consistent with the graph: an image's links, and where they
    # are silent its finding's typical / excluded sets (mini HPOA: A shows pneumonia and effusion, by its alternative
    # id, and excludes cardiomegaly; B shows cardiomegaly and excludes pneumothorax and effusion)
    sets = {LUNG: ({PNEUMONIA, EFFUSION}, {CARDIOMEGALY}), HEART: ({CARDIOMEGALY}, {PNEUMOTHORAX, EFFUSION})}
    links = world["links"]

    def shows(e: str) -> set[str]:
        return set(links[e]["shows"]) | (sets[links[e]["extra"]["finding"]][0] - set(links[e]["rules_out"]))

    def rules_out(e: str) -> set[str]:
        return set(links[e]["rules_out"]) | (sets[links[e]["extra"]["finding"]][1] - shows(e))

    for p in phenotypes:
        assert all(p["id"] in shows(e) for e in p["supporting_evidence"])
        assert all(p["id"] in rules_out(e) for e in p["contradicting_evidence"])
    pneumonia = next(p for p in phenotypes if p["id"] == PNEUMONIA)
    assert lung_id in pneumonia["supporting_evidence"]
    for r in body["ruled_out"]:
        assert r["evidence"] and all(r["id"] in rules_out(e) for e in r["evidence"])
        assert r["probability"] < 0.5 <= r["neighbour_share"]
    # findings: the likelihood ranker over the model's own findings (the two diseases its data is labelled with)
    findings = body["findings"]
    assert findings and {f["id"] for f in findings} <= {LUNG, HEART}
    assert [f["rank"] for f in findings] == list(range(1, len(findings) + 1))
    # a finding of the model has the probability of its defining phenotype (Lung disease A: pneumonia, 0.75
    # of its stated frequency; heart disease B: cardiomegaly)
    by_id = {p["id"]: p["probability"] for p in phenotypes}
    expected = {LUNG: by_id[PNEUMONIA], HEART: by_id[CARDIOMEGALY]}
    assert all(f["probability"] == pytest.approx(expected[f["id"]], abs=1e-4) for f in findings)
    present = {p["id"] for p in phenotypes if p["probability"] >= 0.5}
    absent = {r["id"] for r in body["ruled_out"]}
    for f in findings:
        assert set(f["supported_by"]) | set(f["contradicted_by"]) <= present
        assert set(f["absent_consistent"]) | set(f["absent_conflicting"]) <= absent
    if PNEUMONIA in present:  # Lung disease A shows it; Heart disease B's set is silent about it
        assert findings[0]["id"] == LUNG and PNEUMONIA in findings[0]["supported_by"]
    # other sources on request: every disease of them is a candidate
    wider = post(client, _image(0, LUNG), findings=10, sources="OMIM,ORPHA,DECIPHER").json()
    if wider["findings"]:
        assert {f["source"] for f in wider["findings"]} <= {"OMIM", "ORPHA", "DECIPHER"}
    small = post(client, _image(0, LUNG), k=2, findings=1, evidence=0).json()
    assert len(small["phenotypes"]) == 2 and len(small["findings"]) <= 1 and small["evidence"] == []
    assert [p["id"] for p in small["phenotypes"]] == ids[:2]  # same model, same image: same order
    assert_problem(post(client, _image(0), scope="bogus"), 422)
    assert_problem(post(client, _image(0), sources="OMIM;DROP"), 422)

    # evidence images: the stored bytes, a PNG thumbnail, 404 for an unknown id
    raw = client.get(top["image_url"])
    assert raw.status_code == 200 and raw.headers["content-type"] == "image/png" and raw.content == _image(0, LUNG)
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
            answers.append(post(client, _image(i, EVIDENCE[i][1]), k=5, evidence=1))

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        _wait_for(lambda: len(answers) >= 8)  # model A is answering
        activate_model(graph, world["b"])
        _service(client).refresh()
        swapped = len(answers)
        _wait_for(lambda: len(answers) >= swapped + 8)  # and now model B
        after = post(client, _image(0, LUNG), k=100, findings=10, evidence=3)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert answers and all(r.status_code == 200 for r in answers), [r.text for r in answers if r.status_code != 200]
    served = [r.json()["model"]["id"] for r in answers]
    assert served[0] == world["a"] and served[-1] == world["b"] and set(served) == {world["a"], world["b"]}
    body_b = after.json()
    assert body_b["model"]["id"] == world["b"]
    assert body_b["evidence"][0]["id"] == lung_id  # B's job stored its own evidence embeddings
    assert {p["id"]: p["similarity"] for p in body_b["phenotypes"]} != \
        {p["id"]: p["similarity"] for p in phenotypes}


def test_scope_all_is_an_extrapolation_embedded_in_the_background(client: TestClient, graph: Graph,
                                                                  world: dict[str, Any]) -> None:
    activate_model(graph, world["a"])
    _service(client).refresh()
    deadline = time.monotonic() + 120
    while True:
        answer = post(client, _image(0, LUNG), k=100, scope="all")
        if answer.status_code == 200:
            break
        body = assert_problem(answer, 503)
        assert "retry later" in body["detail"] and answer.headers["retry-after"] == "30"
        assert time.monotonic() < deadline, "the ontology was never embedded"
        time.sleep(0.2)
    body = answer.json()
    assert body["scope"] == "all" and "extrapolation" in body["warning"]
    by_id = {p["id"]: p for p in body["phenotypes"]}
    assert "HP:0001250" in by_id and by_id["HP:0001250"]["probability"] is None  # Seizure: never learned
    assert not by_id["HP:0001250"]["in_vocabulary"] and by_id[PNEUMONIA]["in_vocabulary"]
    assert by_id[PNEUMONIA]["probability"] is not None
    sims = [p["similarity"] for p in body["phenotypes"]]
    assert sims == sorted(sims, reverse=True)


def test_clip_model_setting_serves_when_none_is_active(graph: Graph, graph_settings: GraphSettings,
                                                       world: dict[str, Any]) -> None:
    graph.write("MATCH (m:ModelVersion) SET m.active = false")
    settings = _settings(world["home"], graph_settings, PHENOKG_CLIP_MODEL=str(world["plain_dir"]))
    with TestClient(create_app(settings)) as other:
        answer = post(other, _image(3, LUNG), k=4, evidence=2)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"]["id"] == "plain" and not body["model"]["active"] and not body["model"]["calibrated"]
    assert "no calibration" in body["warning"] and body["domain_threshold"] is None and body["in_domain"]
    assert body["evidence"][0]["id"] == world["evidence"][3]
    # without grounding files the vocabulary is what the graph's evidence links
    assert {p["id"] for p in body["phenotypes"]} == {PNEUMONIA, CARDIOMEGALY, PNEUMOTHORAX}


def test_evidence_imported_while_a_model_serves_is_embedded_and_searched(client: TestClient, graph: Graph,
                                                                        world: dict[str, Any],
                                                                        tmp_path: Path) -> None:
    """An import changes the evidence count: the service reloads, embedding only the new image (the others are
    in the model's saved vector index), and the new image answers queries."""
    activate_model(graph, world["a"])
    service = _service(client)
    service.refresh()
    state = service.current()
    assert not service._stale(state)
    (tmp_path / "new.png").write_bytes(_image(40, LUNG))
    (tmp_path / "new.jsonl").write_text(json.dumps({
        "image": "new.png", "caption": "Chest radiograph shows pneumonia.", "source": "retrieval-test-late",
        "license": "CC0"}) + "\n", encoding="utf-8")
    report = import_evidence(graph, tmp_path / "new.jsonl", linker_from_graph(graph), BlobStore(world["home"] /
                                                                                                "blobs"),
                             progress=False)
    try:
        assert report.created == 1 and service._stale(state)
        service.refresh()
        fresh = service.current()
        assert len(fresh.index.evidence_ids) == len(state.index.evidence_ids) + 1
        assert fresh.index.info["evidence_embedded_at_load"] == 1
        answer = post(client, _image(40, LUNG), k=4, evidence=1)
        assert answer.status_code == 200, answer.text
        assert answer.json()["evidence"][0]["caption"] == "Chest radiograph shows pneumonia."
        assert answer.json()["evidence"][0]["score"] == pytest.approx(1.0, abs=1e-4)
    finally:
        graph.write("MATCH (e:Evidence {source: $source}) DETACH DELETE e", source="retrieval-test-late")
        service.refresh()
