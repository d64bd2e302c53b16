"""POST /similarity and POST /rank, served by the real app against the real embedded server (mini fixtures).

Mini HPOA: OMIM:100001 has Pneumonia (3/4) and Pleural effusion (given by its alt id HP:0002203, frequent) and
excludes Cardiomegaly (0/5); ORPHA:200002 has Cardiomegaly (very frequent) and excludes Pneumothorax (NOT) and
Pleural effusion (frequency "Excluded"); DECIPHER:3 has Seizure (45%).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.config import AppSettings
from app.main import create_app
from kg.config import GraphSettings
from kg.ingest.build import build
from kg.store.graph import Graph
from tests.helpers import FIXTURES as FIXTURES_DIR
from tests.helpers import assert_problem

pytestmark = pytest.mark.integration
FIXTURES = FIXTURES_DIR
PNEUMONIA, EFFUSION, EFFUSION_ALT, PNEUMOTHORAX = "HP:0002090", "HP:0002202", "HP:0002203", "HP:0002107"
CARDIOMEGALY, SEIZURE, LUNG_MORPHOLOGY, RESPIRATORY = "HP:0001640", "HP:0001250", "HP:0002088", "HP:0002086"
OBSOLETE_REPLACED, OBSOLETE_CONSIDER = "HP:0000057", "HP:0003295"


@pytest.fixture(scope="module")
def client(graph: Graph, graph_settings: GraphSettings) -> Iterator[TestClient]:
    graph.write("MATCH (n) DETACH DELETE n")
    build(graph, obo=FIXTURES / "mini.obo", hpoa=FIXTURES / "mini.hpoa", include_pack=False, progress=False)
    settings = AppSettings(**{"PHENOKG_HOME": str(graph_settings.home),  # type: ignore[arg-type]
                              **({"NEO4J_URI": graph_settings.neo4j_uri} if graph_settings.neo4j_uri else {})})
    try:
        with TestClient(create_app(settings)) as test_client:
            yield test_client
    finally:
        graph.write("MATCH (n) DETACH DELETE n")




# ---- /similarity ----------------------------------------------------------------------------------------
def test_similarity_identical_sets(client: TestClient) -> None:
    for method, combine in (("lin", "bma"), ("jc", "funsimavg")):
        body = client.post("/similarity", json={"a": [PNEUMONIA, CARDIOMEGALY], "b": [CARDIOMEGALY, PNEUMONIA],
                                                "method": method, "combine": combine}).json()
        assert body["score"] == pytest.approx(1.0)
    body = client.post("/similarity", json={"a": [PNEUMONIA], "b": [PNEUMONIA]}).json()
    assert (body["method"], body["combine"]) == ("resnik", "funsimavg")
    assert body["score"] > 0
    assert body["a"][0] == {**body["a"][0], "term": PNEUMONIA, "name": "Pneumonia", "match": PNEUMONIA,
                            "mica": PNEUMONIA}
    assert body["a"][0]["mica_ic"] == pytest.approx(body["score"])


def test_similarity_best_matches_through_the_hierarchy(client: TestClient) -> None:
    response = client.post("/similarity", json={"a": [PNEUMONIA, SEIZURE], "b": [PNEUMOTHORAX], "combine": "bma"})
    assert response.status_code == 200, response.text
    body = response.json()
    pneumonia, seizure = body["a"]
    assert (pneumonia["match"], pneumonia["mica"]) == (PNEUMOTHORAX, RESPIRATORY)
    assert pneumonia["mica_name"] == "Abnormality of the respiratory system"
    assert seizure["score"] <= pneumonia["score"]
    [back] = body["b"]
    assert back["match"] == PNEUMONIA
    assert body["score"] == pytest.approx((pneumonia["score"] + seizure["score"] + back["score"]) / 3)


def test_similarity_resolves_and_reports_ids(client: TestClient) -> None:
    body = client.post("/similarity", json={"a": [EFFUSION_ALT, "HP:9999999"], "b": [EFFUSION]}).json()
    assert body["redirected"] == {EFFUSION_ALT: EFFUSION}
    assert body["unknown"] == ["HP:9999999"]
    assert [m["term"] for m in body["a"]] == [EFFUSION]


@pytest.mark.parametrize("payload", [
    {"a": ["HP:12"], "b": [PNEUMONIA]},                                  # malformed id
    {"a": ["pneumonia"], "b": [PNEUMONIA]},
    {"a": [], "b": [PNEUMONIA]},                                         # empty list
    {"a": [PNEUMONIA] * 201, "b": [PNEUMONIA]},                          # oversized
    {"a": [PNEUMONIA], "b": [PNEUMONIA], "method": "cosine"},
    {"a": [PNEUMONIA], "b": [PNEUMONIA], "combine": "max"},
    {"a": [PNEUMONIA], "b": [PNEUMONIA], "extra": 1},
    {"a": [PNEUMONIA]},
    {"a": ["HP:9999999"], "b": [PNEUMONIA]},                             # nothing known on a side
    {"a": [PNEUMONIA], "b": [OBSOLETE_CONSIDER]},                        # obsolete without replacement
])
def test_similarity_bad_input_is_422_problem(client: TestClient, payload: dict[str, Any]) -> None:
    assert_problem(client.post("/similarity", json=payload), 422)


def test_similarity_rejects_non_json(client: TestClient) -> None:
    assert_problem(client.post("/similarity", content=b"{not json", headers={"content-type": "application/json"}), 422)


# ---- /rank ---------------------------------------------------------------------------------------------
def test_rank_explains_matches(client: TestClient) -> None:
    response = client.post("/rank", json={"present": [PNEUMONIA, EFFUSION_ALT]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["query"] == {"present": [PNEUMONIA, EFFUSION], "absent": [], "redirected": {EFFUSION_ALT: EFFUSION},
                             "unknown": [], "obsolete": []}
    assert body["candidates"] == 3
    first = body["results"][0]
    assert (first["rank"], first["id"], first["name"], first["source"]) == (1, "OMIM:100001", "Lung disease A",
                                                                            "OMIM")
    matched = {m["observed"]: m for m in first["explanation"]["matched"]}
    assert matched[PNEUMONIA]["how"] == "exact" and matched[PNEUMONIA]["frequency"] == 0.75
    assert matched[EFFUSION]["typical_name"] == "Pleural effusion"
    assert first["explanation"]["parts"]["match"] == pytest.approx(first["score"], abs=1e-5)
    # ORPHA:200002 excludes pleural effusion: contradicted, and ranked below the unrelated DECIPHER:3
    ids = [r["id"] for r in body["results"]]
    assert ids == ["OMIM:100001", "DECIPHER:3", "ORPHA:200002"]
    last = body["results"][-1]
    [contra] = last["explanation"]["contradicted"]
    assert (contra["observed"], contra["excluded"], contra["how"]) == (EFFUSION, EFFUSION, "exact")
    assert last["score"] < 0


def test_rank_absent_phenotypes_count_both_ways(client: TestClient) -> None:
    body = client.post("/rank", json={"present": [LUNG_MORPHOLOGY], "absent": [CARDIOMEGALY],
                                      "method": "ic"}).json()
    assert body["method"] == "ic"
    by_id = {r["id"]: r for r in body["results"]}
    lung = by_id["OMIM:100001"]["explanation"]
    [consistent] = lung["absent_consistent"]                   # OMIM:100001 excludes cardiomegaly (0/5)
    assert (consistent["absent"], consistent["disease_term"]) == (CARDIOMEGALY, CARDIOMEGALY)
    assert consistent["contribution"] > 0
    heart = by_id["ORPHA:200002"]["explanation"]
    [conflicting] = heart["absent_conflicting"]                # ORPHA:200002 has cardiomegaly, very frequent
    assert conflicting["frequency"] == pytest.approx(0.895)
    assert conflicting["contribution"] < 0
    assert body["results"][0]["id"] == "OMIM:100001"
    assert by_id["ORPHA:200002"]["score"] < by_id["DECIPHER:3"]["score"]


def test_rank_likelihood_ratios_per_term(client: TestClient) -> None:
    body = client.post("/rank", json={"present": [LUNG_MORPHOLOGY], "absent": [CARDIOMEGALY]}).json()
    assert body["method"] == "likelihood"
    by_id = {r["id"]: r for r in body["results"]}
    lung = by_id["OMIM:100001"]["explanation"]
    [excluded] = lung["absent_consistent"]                     # OMIM:100001 excludes cardiomegaly (0/5)
    assert excluded["likelihood_ratio"] == pytest.approx(math.exp(excluded["contribution"]), rel=1e-3)
    assert excluded["likelihood_ratio"] > 1
    for result in body["results"]:
        e = result["explanation"]
        for m in e["matched"]:
            assert m["likelihood_ratio"] == pytest.approx(math.exp(m["contribution"]), rel=1e-3)
        assert sum(e["parts"].values()) == pytest.approx(result["score"], abs=1e-4)
    # ORPHA:200002 shows cardiomegaly in 89.5 %: its absence is looked for there, and not always present
    heart = by_id["ORPHA:200002"]["explanation"]
    [shown] = heart["absent_consistent"] + heart["absent_conflicting"]
    assert (shown["absent"], shown["frequency"]) == (CARDIOMEGALY, pytest.approx(0.895))
    ic = client.post("/rank", json={"present": [LUNG_MORPHOLOGY], "absent": [CARDIOMEGALY], "method": "ic"}).json()
    assert [r["score"] for r in ic["results"]] != [r["score"] for r in body["results"]]


def test_rank_unknown_method_is_422(client: TestClient) -> None:
    assert_problem(client.post("/rank", json={"present": [PNEUMONIA], "method": "cosine"}), 422)


def test_rank_source_filter_limit_and_no_explanations(client: TestClient) -> None:
    body = client.post("/rank", json={"present": [SEIZURE], "sources": ["ORPHA", "DECIPHER"], "limit": 1,
                                      "explain": False}).json()
    assert body["candidates"] == 2
    assert [(r["id"], r["rank"]) for r in body["results"]] == [("DECIPHER:3", 1)]
    assert "explanation" not in body["results"][0]


def test_rank_reports_unknown_and_obsolete_ids(client: TestClient) -> None:
    body = client.post("/rank", json={"present": [OBSOLETE_REPLACED, "HP:9999999"],
                                      "absent": [OBSOLETE_CONSIDER]}).json()
    assert body["query"]["present"] == [CARDIOMEGALY]
    assert body["query"]["redirected"] == {OBSOLETE_REPLACED: CARDIOMEGALY}
    assert body["query"]["unknown"] == ["HP:9999999"]
    assert body["query"]["obsolete"] == [OBSOLETE_CONSIDER]  # obsolete without replacement: not "unknown"
    assert body["results"][0]["id"] == "ORPHA:200002"


def test_rank_takes_every_id_spelling_terms_takes(client: TestClient) -> None:
    """One HPO id rule for every endpoint: what GET /terms/{id} accepts, POST /rank accepts (canonicalised)."""
    spellings = [PNEUMONIA.lower(), PNEUMONIA.replace(":", "_"), "hp_" + PNEUMONIA[3:]]
    for spelling in spellings:
        assert client.get(f"/terms/{spelling}").status_code == 200
        response = client.post("/rank", json={"present": [spelling]})
        assert response.status_code == 200, response.text
        assert response.json()["query"]["present"] == [PNEUMONIA]


@pytest.mark.parametrize("payload", [
    {"present": []},
    {"present": ["HP:0001"]},
    {"present": [PNEUMONIA] * 201},
    {"present": [PNEUMONIA], "absent": [PNEUMONIA] * 201},
    {"present": [PNEUMONIA], "sources": ["GENE"]},
    {"present": [PNEUMONIA], "sources": []},
    {"present": [PNEUMONIA], "limit": 0},
    {"present": [PNEUMONIA], "limit": 501},
    {"present": [PNEUMONIA], "absent": [EFFUSION_ALT, EFFUSION], "typo": True},
    {"absent": [PNEUMONIA]},
    {"present": ["HP:9999999"]},                                         # no known present id
    {"present": [PNEUMONIA, EFFUSION], "absent": [EFFUSION_ALT]},        # both present and absent
    {"present": "HP:0002090"},
])
def test_rank_bad_input_is_422_problem(client: TestClient, payload: dict[str, Any]) -> None:
    body = assert_problem(client.post("/rank", json=payload), 422)
    assert body.get("detail") or body.get("errors")


def test_rank_and_similarity_are_in_openapi_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/rank", "/similarity"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert schemas["RankRequest"]["examples"] and schemas["SimilarityRequest"]["examples"]
