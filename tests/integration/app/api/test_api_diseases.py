"""Disease endpoints, served by the real app on the real embedded server (mini fixtures)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import FIXTURES as FIXTURES_DIR
from tests.helpers import assert_problem

pytestmark = pytest.mark.integration
FIXTURES = FIXTURES_DIR
PROBLEM = "application/problem+json"


_problem = assert_problem


def _ids(body: dict[str, Any]) -> list[str]:
    return [item["id"] for item in body["items"]]


# ---- /terms/{id}/diseases ------------------------------------------------------------------------------------
def test_typical_diseases_of_a_term_with_frequency(client: TestClient) -> None:
    body = client.get("/terms/HP:0001640/diseases").json()
    assert body["relation"] == "typical" and body["total"] == 1
    assert body["items"] == [{"id": "ORPHA:200002", "name": "Heart disease B", "source": "ORPHA",
                              "relation": "typical", "frequency": 0.895, "phenotypes": ["HP:0001640"]}]


def test_excluded_diseases_of_a_term(client: TestClient) -> None:
    body = client.get("/terms/HP:0001640/diseases", params={"relation": "excluded"}).json()
    assert _ids(body) == ["OMIM:100001"]  # 0/5 → excluded set
    assert body["items"][0]["frequency"] is None
    not_row = client.get("/terms/HP:0002107/diseases", params={"relation": "excluded"}).json()
    assert _ids(not_row) == ["ORPHA:200002"]  # NOT qualifier
    assert client.get("/terms/HP:0002107/diseases").json()["total"] == 0


def test_term_diseases_alt_id_and_folded_rows(client: TestClient) -> None:
    body = client.get("/terms/HP:0002279/diseases").json()  # alt id of Seizure
    assert body["term"]["id"] == "HP:0001250" and body["term"]["resolved_from"] == "alt_id"
    assert body["items"] == [{"id": "DECIPHER:3", "name": "Seizure syndrome C", "source": "DECIPHER",
                              "relation": "typical", "frequency": 0.45, "phenotypes": ["HP:0001250"]}]


def test_include_descendants_and_source_filter(client: TestClient) -> None:
    plain = client.get("/terms/HP:0002086/diseases").json()
    assert plain["total"] == 0
    below = client.get("/terms/HP:0002086/diseases", params={"include_descendants": "true"}).json()
    assert below["include_descendants"] is True
    assert below["items"] == [{"id": "OMIM:100001", "name": "Lung disease A", "source": "OMIM",
                               "relation": "typical", "frequency": 0.75,
                               "phenotypes": ["HP:0002090", "HP:0002202"]}]
    excluded = client.get("/terms/HP:0000118/diseases",
                          params={"include_descendants": "true", "relation": "excluded"}).json()
    assert _ids(excluded) == ["OMIM:100001", "ORPHA:200002"]
    assert excluded["items"][1]["phenotypes"] == ["HP:0002107", "HP:0002202"]
    everything = client.get("/terms/HP:0000001/diseases", params={"include_descendants": "true"}).json()
    assert everything["total"] == 3
    assert _ids(everything) == ["ORPHA:200002", "OMIM:100001", "DECIPHER:3"]  # highest frequency first
    assert [item["frequency"] for item in everything["items"]] == [0.895, 0.75, 0.45]
    omim = client.get("/terms/HP:0000001/diseases", params={"include_descendants": "true", "source": "omim"}).json()
    assert _ids(omim) == ["OMIM:100001"] and omim["source"] == "omim"
    paged = client.get("/terms/HP:0000001/diseases",
                       params={"include_descendants": "true", "offset": 1, "limit": 1}).json()
    assert paged["total"] == 3 and _ids(paged) == [_ids(everything)[1]]


@pytest.mark.parametrize("params", [{"relation": "both"}, {"limit": 0}, {"limit": 5000}, {"offset": -3},
                                    {"source": "OMIM;DROP"}, {"include_descendants": "maybe"}])
def test_term_diseases_bad_params_are_422(client: TestClient, params: dict[str, Any]) -> None:
    _problem(client.get("/terms/HP:0001640/diseases", params=params), 422)


def test_term_diseases_unknown_and_gone(client: TestClient) -> None:
    _problem(client.get("/terms/HP:9999999/diseases"), 404)
    assert _problem(client.get("/terms/HP:0003295/diseases"), 410)["consider"]


# ---- /diseases/{id} ------------------------------------------------------------------------------------------
def test_disease_detail_typical_and_excluded(client: TestClient) -> None:
    body = client.get("/diseases/OMIM:100001").json()
    assert (body["id"], body["name"], body["source"], body["aspect"]) == (
        "OMIM:100001", "Lung disease A", "OMIM", "P")
    typical = {t["id"]: t for t in body["typical"]}
    assert list(typical) == ["HP:0002090", "HP:0002202"]  # highest frequency first; aspect I filtered out
    pneumonia = typical["HP:0002090"]
    assert pneumonia["name"] == "Pneumonia"
    assert pneumonia["frequency"] == 0.75
    assert sorted(pneumonia["frequencies"]) == ["1/4", "3/4"]
    assert pneumonia["onsets"] == [{"id": "HP:0003577", "name": None}]  # not in the mini ontology
    assert pneumonia["evidence"] == ["PCS"]
    assert sorted(pneumonia["references"]) == ["PMID:1", "PMID:2"]
    assert pneumonia["source_rows"] == 2
    assert typical["HP:0002202"]["frequency"] == 0.545  # HP:0002203 (alt id) in the source
    assert [e["id"] for e in body["excluded"]] == ["HP:0001640"]
    assert body["excluded"][0]["frequencies"] == ["0/5"]


def test_disease_aspect_filter(client: TestClient) -> None:
    everything = client.get("/diseases/OMIM:100001", params={"aspect": "all"}).json()
    assert {t["id"] for t in everything["typical"]} == {"HP:0002090", "HP:0002202", "HP:0000006"}
    inheritance = client.get("/diseases/OMIM:100001", params={"aspect": "I"}).json()
    assert [t["id"] for t in inheritance["typical"]] == ["HP:0000006"]
    assert inheritance["typical"][0]["aspect"] == "I"
    assert inheritance["excluded"] == []
    _problem(client.get("/diseases/OMIM:100001", params={"aspect": "X"}), 422)


def test_disease_excluded_set_with_not_rows(client: TestClient) -> None:
    body = client.get("/diseases/ORPHA:200002").json()
    assert [t["id"] for t in body["typical"]] == ["HP:0001640"]
    assert [t["id"] for t in body["excluded"]] == ["HP:0002107", "HP:0002202"]


def test_disease_id_case_insensitive(client: TestClient) -> None:
    assert client.get("/diseases/omim:100001").json()["id"] == "OMIM:100001"


def test_disease_unknown_and_malformed(client: TestClient) -> None:
    assert "OMIM:999999" in _problem(client.get("/diseases/OMIM:999999"), 404)["detail"]
    _problem(client.get("/diseases/not-an-id"), 422)
    _problem(client.get("/diseases/OMIM:1 OR 1=1"), 422)


# ---- /diseases?q= --------------------------------------------------------------------------------------------
def test_search_by_name_tokens(client: TestClient) -> None:
    body = client.get("/diseases", params={"q": "lung"}).json()
    assert _ids(body) == ["OMIM:100001"] and body["total"] == 1
    assert _ids(client.get("/diseases", params={"q": "DISEASE"}).json()) == ["OMIM:100001", "ORPHA:200002"]
    assert _ids(client.get("/diseases", params={"q": "heart dis"}).json()) == ["ORPHA:200002"]  # prefix
    assert _ids(client.get("/diseases", params={"q": "seizures"}).json()) == ["DECIPHER:3"]  # plural folds
    assert _ids(client.get("/diseases", params={"q": "disease heart"}).json()) == ["ORPHA:200002"]
    assert client.get("/diseases", params={"q": "lung heart"}).json()["total"] == 0


def test_search_ranks_exact_name_and_id_first(client: TestClient) -> None:
    assert _ids(client.get("/diseases", params={"q": "heart disease b"}).json())[0] == "ORPHA:200002"
    assert _ids(client.get("/diseases", params={"q": "decipher:3"}).json()) == ["DECIPHER:3"]


def test_search_source_and_limit(client: TestClient) -> None:
    body = client.get("/diseases", params={"q": "disease", "source": "ORPHA"}).json()
    assert _ids(body) == ["ORPHA:200002"]
    limited = client.get("/diseases", params={"q": "disease", "limit": 1}).json()
    assert limited["total"] == 2 and len(limited["items"]) == 1
    listing = client.get("/diseases").json()
    assert _ids(listing) == ["DECIPHER:3", "OMIM:100001", "ORPHA:200002"]


def test_search_by_gene(client: TestClient) -> None:
    body = client.get("/diseases", params={"gene": "lunga"}).json()  # any case
    assert _ids(body) == ["OMIM:100001"] and body["gene"] == "lunga"
    assert _ids(client.get("/diseases", params={"gene": "HRTB", "q": "heart"}).json()) == ["ORPHA:200002"]
    assert client.get("/diseases", params={"gene": "HRTB", "q": "lung"}).json()["total"] == 0
    assert client.get("/diseases", params={"gene": "HRTB", "source": "OMIM"}).json()["total"] == 0
    assert client.get("/diseases", params={"gene": "NOSUCHGENE"}).json()["total"] == 0
    detail = client.get("/diseases/OMIM:100001").json()
    assert detail["properties"]["genes"] == ["LUNGA"]
    for bad in ("", "FBN1; MATCH (n) DETACH DELETE n", "-X", "x" * 41):
        _problem(client.get("/diseases", params={"gene": bad}), 422)


@pytest.mark.parametrize("q", ["", "   ", "!!!", "' OR 1=1 --", "MATCH (n) DETACH DELETE n", "肺炎", "\u0000",
                               "%", "*"])
def test_search_odd_queries_are_empty_not_errors(client: TestClient, q: str) -> None:
    response = client.get("/diseases", params={"q": q})
    assert response.status_code == 200
    assert response.json()["total"] == 0


def test_search_bad_params_are_422(client: TestClient) -> None:
    _problem(client.get("/diseases", params={"q": "x" * 201}), 422)
    _problem(client.get("/diseases", params={"limit": 101}), 422)
    _problem(client.get("/diseases", params={"source": "OM IM"}), 422)
