"""GET /search and POST /normalize on the mini fixtures, real embedded graph, real packaged MiniLM vectors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.core.config import AppSettings
from app.main import create_app
from app.services.embeddings import ensure_embeddings
from kg.config import GraphSettings
from kg.ingest.build import build
from kg.repo.embeddings import embedding_meta, stale_terms
from kg.store.graph import Graph
from tests.helpers import FIXTURES as FIXTURES_DIR

pytestmark = pytest.mark.integration
FIXTURES = FIXTURES_DIR


def _settings(graph_settings: GraphSettings) -> AppSettings:
    return AppSettings(**{"PHENOKG_HOME": str(graph_settings.home),  # type: ignore[arg-type]
                          **({"NEO4J_URI": graph_settings.neo4j_uri} if graph_settings.neo4j_uri else {})})


@pytest.fixture(scope="module")
def embedded_graph(graph: Graph) -> Iterator[Graph]:
    """The mini fixtures built and embedded once for the module (13 live terms, ~20 strings)."""
    from tests.helpers import clear_graph

    clear_graph(graph)
    build(graph, obo=FIXTURES / "mini.obo", hpoa=FIXTURES / "mini.hpoa", include_pack=False, progress=False)
    report = ensure_embeddings(graph, progress=False)
    assert report.embedded_terms == report.terms == 13
    yield graph
    clear_graph(graph)


@pytest.fixture(scope="module")
def client(embedded_graph: Graph, graph_settings: GraphSettings) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(graph_settings))) as test_client:
        yield test_client


def test_embeddings_recorded_in_graph_and_idempotent(embedded_graph: Graph) -> None:
    meta = embedding_meta(embedded_graph)
    assert meta is not None
    assert meta["dim"] == 384 and meta["dtype"] == "float16"
    assert "all-MiniLM-L6-v2" in meta["encoder"] and len(meta["encoder_sha256"]) == 64
    assert meta["terms"] == 13 and meta["strings"] >= 13
    assert stale_terms(embedded_graph, meta["fingerprint"]) == (13, 0)
    again = ensure_embeddings(embedded_graph, progress=False)
    assert again.up_to_date and again.embedded_terms == 0
    assert embedding_meta(embedded_graph)["stamp"] == meta["stamp"]  # type: ignore[index]


def test_vector_index_answers_over_bolt(embedded_graph: Graph) -> None:
    import numpy as np

    from kg.repo.embeddings import vector_index_query
    from models.embeddings import TextEmbedder

    vec = TextEmbedder.load(None).encode_query("Cardiomegaly")
    rows = vector_index_query(embedded_graph, np.asarray(vec).tolist(), k=3)
    assert rows and rows[0]["id"] == "HP:0001640"


def test_hybrid_exact_synonym_first(client: TestClient) -> None:
    body = client.get("/search", params={"q": "enlarged heart"}).json()
    assert body["mode"] == "hybrid" and body["semantic"] is True and "MiniLM" in body["encoder"]
    top = body["hits"][0]
    assert (top["id"], top["field"], top["matched"], top["source"]) == ("HP:0001640", "synonym", "Enlarged heart",
                                                                        "exact")
    assert 0.9 < top["score"] <= 1


def test_semantic_finds_meaning_without_shared_words(client: TestClient) -> None:
    body = client.get("/search", params={"q": "big heart", "mode": "semantic", "limit": 3}).json()
    assert body["semantic"] is True
    assert body["hits"][0]["id"] == "HP:0001640"
    assert body["hits"][0]["source"] == "semantic"
    assert body["hits"][0]["field"] in ("name", "synonym")


def test_lexical_type_ahead_and_ids(client: TestClient) -> None:
    ids = [h["id"] for h in client.get("/search", params={"q": "pneu", "mode": "lexical"}).json()["hits"][:2]]
    assert set(ids) == {"HP:0002090", "HP:0002107"}
    hit = client.get("/search", params={"q": "HP:0002203"}).json()["hits"][0]
    assert (hit["id"], hit["field"]) == ("HP:0002202", "alt_id")
    hit = client.get("/search", params={"q": "HP:0000057", "mode": "semantic"}).json()["hits"][0]
    assert (hit["id"], hit["field"]) == ("HP:0001640", "replaced_id")


def test_obsolete_only_when_asked(client: TestClient) -> None:
    plain = client.get("/search", params={"q": "Clitoromegaly", "mode": "lexical"}).json()["hits"]
    assert all(not h["obsolete"] for h in plain)
    hits = client.get("/search", params={"q": "Clitoromegaly", "mode": "lexical", "include_obsolete": True}).json()
    assert hits["hits"][0]["id"] == "HP:0000057" and hits["hits"][0]["obsolete"] is True


def test_bad_and_odd_queries(client: TestClient) -> None:
    empty = client.get("/search", params={"q": ""})
    assert empty.status_code == 422
    assert empty.headers["content-type"].startswith("application/problem+json")
    assert client.get("/search").status_code == 422
    assert client.get("/search", params={"q": "x", "limit": 0}).status_code == 422
    assert client.get("/search", params={"q": "x", "limit": 101}).status_code == 422
    assert client.get("/search", params={"q": "x", "mode": "fuzzy"}).status_code == 422
    assert client.get("/search", params={"q": "y" * 501}).status_code == 422
    assert client.get("/search", params={"q": "   "}).json()["hits"] == []
    for q in ["' OR 1=1 --", "MATCH (n) DETACH DELETE n", "Ödem 心脏 🫀", "\u202e\u0000", "{{7*7}}"]:
        response = client.get("/search", params={"q": q})
        assert response.status_code == 200, q
    assert client.get("/search", params={"q": "cardiomegaly"}).json()["hits"][0]["id"] == "HP:0001640"


def test_normalize_batch(client: TestClient) -> None:
    mentions = ["Seizures", "", "enlarged hearts", "fluid around the lungs", "HP:0002279", "lung collapse"]
    body = client.post("/normalize", json={"mentions": mentions, "top_k": 3}).json()
    assert body["semantic"] is True
    results = body["results"]
    assert [r["mention"] for r in results] == mentions
    tops = [r["candidates"][0]["id"] if r["candidates"] else None for r in results]
    assert tops == ["HP:0001250", None, "HP:0001640", "HP:0002202", "HP:0001250", "HP:0002107"]
    assert all(len(r["candidates"]) <= 3 for r in results)
    first = results[0]["candidates"][0]
    assert first["source"] == "exact" and first["score"] > 0.9
    assert all(0 <= c["score"] <= 1 for r in results for c in r["candidates"])


def test_normalize_branch_and_lexical_only(client: TestClient) -> None:
    body = client.post("/normalize", json={"mentions": ["heart"], "branch": "HP:0002086"}).json()
    assert all(c["id"] in {"HP:0002086", "HP:0002088", "HP:0002090", "HP:0002202", "HP:0002107"}
               for c in body["results"][0]["candidates"])
    lexical = client.post("/normalize", json={"mentions": ["Seizures"], "semantic": False}).json()
    assert lexical["semantic"] is False
    assert lexical["results"][0]["candidates"][0]["id"] == "HP:0001250"
    unknown = client.post("/normalize", json={"mentions": ["x"], "branch": "HP:9999999"})
    assert unknown.status_code == 404
    assert client.post("/normalize", json={"mentions": ["x"], "branch": "lung"}).status_code == 422


def test_normalize_limits(client: TestClient) -> None:
    assert client.post("/normalize", json={"mentions": []}).json()["results"] == []
    assert client.post("/normalize", json={"mentions": ["x"] * 1000, "semantic": False}).status_code == 200
    too_many = client.post("/normalize", json={"mentions": ["x"] * 1001})
    assert too_many.status_code == 422
    assert too_many.headers["content-type"].startswith("application/problem+json")
    assert client.post("/normalize", json={"mentions": ["x"], "top_k": 0}).status_code == 422
    assert client.post("/normalize", json={"mentions": ["x"], "top_k": 51}).status_code == 422
    assert client.post("/normalize", json={"mentions": ["x" * 1001]}).status_code == 422
    assert client.post("/normalize", json={"mentions": "seizure"}).status_code == 422
    assert client.post("/normalize", json={"mentions": ["x"], "semantic": 0}).status_code == 422
    assert client.post("/normalize", json={"mentions": ["x"], "top_k": "5"}).status_code == 422
    assert client.post("/normalize", json={"mentions": ["x"], "extra": 1}).status_code == 422
    surrogate = client.post("/normalize", content=b'{"mentions": ["\\ud800"]}',
                            headers={"content-type": "application/json"})
    assert surrogate.status_code == 422
    huge = client.post("/normalize", content=b'{"mentions": ["' + b"a" * (9 * 1024 * 1024) + b'"]}',
                       headers={"content-type": "application/json"})
    assert huge.status_code == 413
    odd = client.post("/normalize", json={"mentions": ["' OR 1=1 --", "Ödem 心脏 🫀", "\u0000"]})
    assert odd.status_code == 200 and len(odd.json()["results"]) == 3


def test_without_embeddings_semantic_falls_back(graph: Graph, graph_settings: GraphSettings,
                                                 embedded_graph: Graph) -> None:
    from kg.repo.embeddings import EMB_META_GET

    # a second app on a graph whose embedding record is gone: lexical answers, with a warning
    meta = embedded_graph.read(EMB_META_GET, key="phenotype")[0]["meta"]
    embedded_graph.write("MATCH (m:EmbeddingSet) DETACH DELETE m")
    try:
        with TestClient(create_app(_settings(graph_settings))) as fresh:
            body = fresh.get("/search", params={"q": "enlarged heart", "mode": "semantic"}).json()
            assert body["semantic"] is False and body["warnings"]
            assert body["hits"][0]["id"] == "HP:0001640"
            norm = fresh.post("/normalize", json={"mentions": ["Seizures"]}).json()
            assert norm["semantic"] is False and norm["warnings"]
            assert norm["results"][0]["candidates"][0]["id"] == "HP:0001250"
    finally:
        embedded_graph.write("MERGE (m:EmbeddingSet {key: $key}) SET m += $props", key="phenotype",
                             props={k: v for k, v in meta.items() if k != "key"})


def test_openapi_documents_search_and_normalize(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/search" in spec["paths"] and "/normalize" in spec["paths"]
    assert "413" in spec["paths"]["/normalize"]["post"]["responses"]


def test_activating_a_knowledge_encoder_switches_search(client: TestClient, embedded_graph: Graph,
                                                        tiny_bert_dir: Path, tmp_path: Path) -> None:
    """`models activate` → re-embedding with the active encoder → the running API answers with it."""
    import time

    from kg.repo.registry import ModelVersion, activate_model, register_model
    from models.encoders import TextEncoder

    model_dir = tmp_path / "ke-tiny"
    TextEncoder.from_pretrained(tiny_bert_dir).save(model_dir / "encoder")
    (model_dir / "config.json").write_text("{}", encoding="utf-8")
    register_model(embedded_graph, ModelVersion(id="ke-tiny-1", kind="knowledge-encoder", path=str(model_dir)))
    try:
        activate_model(embedded_graph, "ke-tiny-1")
        report = ensure_embeddings(embedded_graph, progress=False)  # default encoder: the active one
        assert report.embedded_terms == 13 and report.encoder == "phenokg text encoder ke-tiny"
        deadline = time.monotonic() + 15
        while True:
            body = client.get("/search", params={"q": "enlarged heart", "mode": "semantic"}).json()
            if body["encoder"] == report.encoder or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert body["semantic"] is True and body["encoder"] == "phenokg text encoder ke-tiny", body
        norm = client.post("/normalize", json={"mentions": ["enlarged heart"]}).json()
        assert norm["encoder"] == "phenokg text encoder ke-tiny"
    finally:
        embedded_graph.write("MATCH (m:ModelVersion {id: $id}) DETACH DELETE m", id="ke-tiny-1")
        restored = ensure_embeddings(embedded_graph, progress=False)  # back to the packaged MiniLM
        assert "MiniLM" in restored.encoder
