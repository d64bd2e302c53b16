"""Term lookup and hierarchy endpoints, served by the real app on the real embedded server (mini fixtures)."""

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


# ---- lookup --------------------------------------------------------------------------------------------------
def test_lookup_current_term(client: TestClient) -> None:
    response = client.get("/terms/HP:0002202")
    assert response.status_code == 200
    assert "content-location" not in response.headers
    body = response.json()
    assert body["id"] == "HP:0002202"
    assert body["name"] == "Pleural effusion"
    assert body["definition"] == "The presence of an excessive amount of fluid in the pleural cavity."
    assert body["synonyms"] == [{"text": "Fluid around lungs", "scope": "EXACT"}]
    assert body["alt_ids"] == ["HP:0002203"]
    assert body["parents"] == [{"id": "HP:0002086", "name": "Abnormality of the respiratory system", "depth": 2}]
    assert body["depth"] == 3
    assert body["is_leaf"] is True and body["child_count"] == 0
    assert body["requested_id"] == "HP:0002202"
    assert body["resolved_from"] is None
    assert body["ic"] is not None and body["ic"] > 0


def test_lookup_alternative_id_answers_current_term(client: TestClient) -> None:
    response = client.get("/terms/HP:0002203")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "HP:0002202"
    assert body["name"] == "Pleural effusion"
    assert body["requested_id"] == "HP:0002203"
    assert body["resolved_from"] == "alt_id"
    assert response.headers["content-location"] == "/terms/HP:0002202"


def test_lookup_obsolete_id_with_replacement(client: TestClient) -> None:
    response = client.get("/terms/HP:0000057")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "HP:0001640"
    assert body["name"] == "Cardiomegaly"
    assert body["requested_id"] == "HP:0000057"
    assert body["resolved_from"] == "replaced_by"
    assert {"text": "Enlarged heart", "scope": "EXACT"} in body["synonyms"]
    assert body["comment"] == "Clinically, cardiomegaly is often judged on a chest radiograph."


def test_lookup_obsolete_consider_only_is_gone_with_consider_ids(client: TestClient) -> None:
    body = _problem(client.get("/terms/HP:0003295"), 410)
    assert body["obsolete_id"] == "HP:0003295"
    assert body["name"] == "obsolete Impaired FSH and LH secretion"
    assert body["consider"] == [{"id": "HP:0001250", "name": "Seizure", "depth": 3}]
    assert body["instance"] == "/terms/HP:0003295"


def test_lookup_unknown_id_is_404_problem(client: TestClient) -> None:
    body = _problem(client.get("/terms/HP:9999999"), 404)
    assert "HP:9999999" in str(body["detail"])


@pytest.mark.parametrize("bad", ["HP:12", "HP:00022020", "foo", "HP-0002202", "MONDO:0000001", "HP:000220x",
                                 "%20HP:0002202"])
def test_lookup_malformed_id_is_422_problem(client: TestClient, bad: str) -> None:
    body = _problem(client.get(f"/terms/{bad}"), 422)
    errors = body["errors"]
    assert isinstance(errors, list) and errors[0]["loc"] == ["path", "term_id"]


@pytest.mark.parametrize("spelling", ["hp:0002202", "HP_0002202"])
def test_lookup_accepts_lowercase_and_purl_spellings(client: TestClient, spelling: str) -> None:
    body = client.get(f"/terms/{spelling}").json()
    assert body["id"] == "HP:0002202"
    assert body["requested_id"] == spelling


# ---- hierarchy -----------------------------------------------------------------------------------------------
def test_parents_and_children(client: TestClient) -> None:
    body = client.get("/terms/HP:0002086/children").json()
    assert body["relation"] == "children"
    assert body["term"]["id"] == "HP:0002086"
    assert [t["id"] for t in body["items"]] == ["HP:0002088", "HP:0002107", "HP:0002202"]
    assert body["total"] == 3
    parents = client.get("/terms/HP:0002090/parents").json()
    assert parents["items"] == [{"id": "HP:0002088", "name": "Abnormal lung morphology", "depth": 3}]


def test_ancestors_are_shallow_first_and_exclude_self(client: TestClient) -> None:
    body = client.get("/terms/HP:0002090/ancestors").json()
    assert [t["id"] for t in body["items"]] == ["HP:0000001", "HP:0000118", "HP:0002086", "HP:0002088"]
    assert [t["depth"] for t in body["items"]] == [0, 1, 2, 3]


def test_descendants_paging(client: TestClient) -> None:
    full = client.get("/terms/HP:0000118/descendants", params={"limit": 1000}).json()
    ids = [t["id"] for t in full["items"]]
    assert full["total"] == len(ids) == 9
    assert "HP:0000118" not in ids and "HP:0000006" not in ids  # not self, not another branch
    assert ids[:3] == ["HP:0000707", "HP:0001626", "HP:0002086"]  # depth 2 first, by id
    pages = [client.get("/terms/HP:0000118/descendants", params={"offset": o, "limit": 4}).json()
             for o in (0, 4, 8, 12)]
    assert [t["id"] for p in pages for t in p["items"]] == ids
    assert all(p["total"] == 9 and p["limit"] == 4 for p in pages)
    assert pages[-1]["items"] == []


def test_hierarchy_resolves_alternative_ids(client: TestClient) -> None:
    body = client.get("/terms/HP:0002279/ancestors").json()
    assert body["term"] == {"id": "HP:0001250", "name": "Seizure", "depth": 3, "requested_id": "HP:0002279",
                            "resolved_from": "alt_id"}
    assert body["items"][-1]["id"] == "HP:0000707"


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "ten"}])
def test_paging_bounds_are_422(client: TestClient, params: dict[str, Any]) -> None:
    _problem(client.get("/terms/HP:0000118/descendants", params=params), 422)


def test_hierarchy_unknown_and_gone(client: TestClient) -> None:
    _problem(client.get("/terms/HP:9999999/children"), 404)
    _problem(client.get("/terms/HP:0003295/parents"), 410)


def test_path_goes_up_to_common_ancestor_and_down(client: TestClient) -> None:
    body = client.get("/hierarchy/path", params={"a": "HP:0002090", "b": "HP:0002203"}).json()
    assert [t["id"] for t in body["path"]] == ["HP:0002090", "HP:0002088", "HP:0002086", "HP:0002202"]
    assert body["via"]["id"] == "HP:0002086"
    assert (body["length"], body["up"], body["down"]) == (3, 2, 1)
    assert body["b"]["resolved_from"] == "alt_id"
    across = client.get("/hierarchy/path", params={"a": "HP:0001640", "b": "HP:0001250"}).json()
    assert across["via"]["id"] == "HP:0000118"
    assert [t["id"] for t in across["path"]] == ["HP:0001640", "HP:0001626", "HP:0000118", "HP:0000707",
                                                 "HP:0001250"]
    same = client.get("/hierarchy/path", params={"a": "HP:0001640", "b": "HP:0000057"}).json()
    assert same["length"] == 0 and [t["id"] for t in same["path"]] == ["HP:0001640"]


def test_path_to_an_ancestor_only_climbs(client: TestClient) -> None:
    body = client.get("/hierarchy/path", params={"a": "HP:0002090", "b": "HP:0000118"}).json()
    assert (body["up"], body["down"]) == (3, 0)
    assert body["via"]["id"] == "HP:0000118"


def test_lca(client: TestClient) -> None:
    body = client.get("/hierarchy/lca", params={"a": "HP:0002090", "b": "HP:0002202"}).json()
    assert [t["id"] for t in body["lowest"]] == ["HP:0002086"]
    assert body["most_informative"]["id"] == "HP:0002086"
    assert body["deepest"]["id"] == "HP:0002086"
    assert body["common_count"] == 3  # All, Phenotypic abnormality, respiratory
    assert body["most_informative"]["ic"] > 0
    cross = client.get("/hierarchy/lca", params={"a": "HP:0000006", "b": "HP:0001250"}).json()
    assert [t["id"] for t in cross["lowest"]] == ["HP:0000001"]
    itself = client.get("/hierarchy/lca", params={"a": "HP:0002202", "b": "HP:0002203"}).json()
    assert itself["deepest"]["id"] == "HP:0002202"


def test_hierarchy_query_errors(client: TestClient) -> None:
    _problem(client.get("/hierarchy/lca", params={"a": "HP:0002090"}), 422)
    _problem(client.get("/hierarchy/path", params={"a": "HP:0002090", "b": "nope"}), 422)
    _problem(client.get("/hierarchy/path", params={"a": "HP:0002090", "b": "HP:9999999"}), 404)
    gone = _problem(client.get("/hierarchy/lca", params={"a": "HP:0003295", "b": "HP:0002090"}), 410)
    assert gone["consider"]


def test_openapi_documents_problem_responses(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    term = spec["paths"]["/terms/{term_id}"]["get"]
    assert set(term["responses"]) >= {"200", "404", "410", "422"}
    assert "application/problem+json" in term["responses"]["410"]["content"]
    assert term["responses"]["422"]["content"]["application/problem+json"]["schema"]["$ref"].endswith(
        "/ValidationProblem")
    assert "HTTPValidationError" not in str(spec)
    assert spec["components"]["schemas"]["Term"]["examples"]
