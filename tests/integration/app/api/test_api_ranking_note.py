"""POST /rank with a clinical note (``text``) and one row per disease (``group``), served by the real app against
the real embedded server.

The graph: the mini fixtures plus ORPHA:200009 "Lung disease A", the Orphanet twin of OMIM:100001 (same name:
its annotations are pooled into OMIM:100001 and the two are one row). ORPHA:200009 has Pneumothorax (frequent).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.config import AppSettings
from app.main import create_app
from app.schemas.ranking import MAX_RANK_TEXT_CHARS
from kg.config import GraphSettings
from kg.ingest.build import build
from kg.store.graph import Graph
from tests import helpers
from tests.helpers import FIXTURES, clear_graph

pytestmark = pytest.mark.integration
PNEUMONIA, EFFUSION, PNEUMOTHORAX, CARDIOMEGALY, SEIZURE = (
    "HP:0002090", "HP:0002202", "HP:0002107", "HP:0001640", "HP:0001250")
TWIN = "ORPHA:200009"
TWIN_LINES = ["\t".join([TWIN, "Lung disease A", "", term, TWIN, "TAS", "", frequency, "", "", "P",
                          "ORPHA:orphadata[2099-01-01]"])
              for term, frequency in ((PNEUMOTHORAX, "HP:0040281"), (PNEUMONIA, "HP:0040282"))]


@pytest.fixture(scope="module")
def client(graph: Graph, graph_settings: GraphSettings, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[TestClient]:
    hpoa = Path(tmp_path_factory.mktemp("twin")) / "twin.hpoa"
    hpoa.write_text((FIXTURES / "mini.hpoa").read_text(encoding="utf-8").rstrip("\n") + "\n"
                    + "\n".join(TWIN_LINES) + "\n", encoding="utf-8")
    clear_graph(graph)
    build(graph, obo=FIXTURES / "mini.obo", hpoa=hpoa, include_pack=False, progress=False)
    settings = AppSettings(**{"PHENOKG_HOME": str(graph_settings.home),  # type: ignore[arg-type]
                              **({"NEO4J_URI": graph_settings.neo4j_uri} if graph_settings.neo4j_uri else {})})
    try:
        with TestClient(create_app(settings)) as test_client:
            yield test_client
    finally:
        clear_graph(graph)


def rank(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/rank", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def assert_problem(response: Any, status: int = 422) -> dict[str, Any]:
    """tests.helpers.assert_problem, 422 by default, with a ``detail`` saying why."""
    body = helpers.assert_problem(response, status)
    assert body["detail"]
    return body


# ---- one row per disease ------------------------------------------------------------------------------
def test_twins_are_one_row_by_default_and_two_with_group_false(client: TestClient) -> None:
    raw = rank(client, present=[PNEUMOTHORAX], group=False, explain=False)
    raw_ids = [r["id"] for r in raw["results"]]
    assert TWIN in raw_ids and "OMIM:100001" in raw_ids
    assert all(r["equivalent_ids"] == [] for r in raw["results"])
    score = {r["id"]: r["score"] for r in raw["results"]}
    grouped = rank(client, present=[PNEUMOTHORAX])
    rows = grouped["results"]
    assert [r["id"] for r in rows].count("OMIM:100001") == 1 and TWIN not in [r["id"] for r in rows]
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert len(rows) == len(raw["results"]) - 1 and grouped["candidates"] == raw["candidates"] == 4
    lung = next(r for r in rows if r["id"] == "OMIM:100001")
    assert lung["score"] == max(score["OMIM:100001"], score[TWIN])
    assert lung["equivalent_ids"] == [{"id": TWIN, "name": "Lung disease A", "source": "ORPHA", "score": score[TWIN]}]
    assert lung["pooled_with"] == TWIN
    assert lung["explanation"]["matched"][0]["observed"] == PNEUMOTHORAX
    # limit counts rows: the top 2 rows are two diseases
    top2 = rank(client, present=[PNEUMOTHORAX], limit=2)["results"]
    assert [r["id"] for r in top2] == [r["id"] for r in rows[:2]]


def test_an_orphanet_only_filter_keeps_the_twin_alone(client: TestClient) -> None:
    rows = rank(client, present=[PNEUMOTHORAX], sources=["ORPHA"])["results"]
    twin = next(r for r in rows if r["id"] == TWIN)
    assert twin["equivalent_ids"] == [] and "score_from" not in twin


# ---- a clinical note ----------------------------------------------------------------------------------
NOTE = "Fever and pneumonia with a pleural effusion. No enlarged heart. Possible seizures."


def test_a_note_is_ranked_with_its_mentions_and_spans(client: TestClient) -> None:
    body = rank(client, text=NOTE)
    query = body["query"]
    assert (query["present"], query["absent"]) == ([PNEUMONIA, EFFUSION], [CARDIOMEGALY])
    mentions = [(m["id"], m["text"], m["negated"], m["uncertain"], m["used_as"]) for m in query["mentions"]]
    assert mentions == [(PNEUMONIA, "pneumonia", False, False, "present"),
                        (EFFUSION, "pleural effusion", False, False, "present"),
                        (CARDIOMEGALY, "enlarged heart", True, False, "absent"),
                        (SEIZURE, "seizures", False, True, "uncertain")]
    for m in query["mentions"]:
        assert NOTE[m["start"]:m["end"]] == m["text"]
    first = body["results"][0]
    assert first["id"] == "OMIM:100001"
    spans = {m["observed"]: m["spans"] for m in first["explanation"]["matched"]}
    assert spans[PNEUMONIA] == [{"start": 10, "end": 19, "text": "pneumonia"}]
    assert NOTE[spans[EFFUSION][0]["start"]:spans[EFFUSION][0]["end"]] == "pleural effusion"
    absent = first["explanation"]["absent_consistent"] + first["explanation"]["absent_conflicting"]
    assert [a["spans"] for a in absent if a["absent"] == CARDIOMEGALY] == [[{"start": 48, "end": 62,
                                                                           "text": "enlarged heart"}]]
    # the same terms as ids rank the same, without mentions or spans
    ids = rank(client, present=[PNEUMONIA, EFFUSION], absent=[CARDIOMEGALY])
    assert [(r["id"], r["score"]) for r in ids["results"]] == [(r["id"], r["score"]) for r in body["results"]]
    assert "mentions" not in ids["query"]
    assert "spans" not in ids["results"][0]["explanation"]["matched"][0]


def test_text_and_ids_together(client: TestClient) -> None:
    body = rank(client, present=[PNEUMOTHORAX], text="No pneumothorax. Seizures since birth.", group=False)
    query = body["query"]
    # the ids assert pneumothorax: the note's negation of it is overridden, not an absent term
    assert (query["present"], query["absent"]) == ([PNEUMOTHORAX, SEIZURE], [])
    assert [m["used_as"] for m in query["mentions"]] == ["overridden", "present"]
    seizure = next(r for r in body["results"] if r["id"] == "DECIPHER:3")
    [matched] = [m for m in seizure["explanation"]["matched"] if m["observed"] == SEIZURE]
    assert matched["spans"] == [{"start": 17, "end": 25, "text": "Seizures"}]


@pytest.mark.parametrize("payload", [
    {},
    {"present": []},
    {"text": "   "},
    {"absent": [CARDIOMEGALY]},
    {"text": "x" * (MAX_RANK_TEXT_CHARS + 1)},
    {"text": "pneumonia", "group": "sometimes"},
])
def test_bad_requests_are_422_problems(client: TestClient, payload: dict[str, Any]) -> None:
    assert_problem(client.post("/rank", json=payload))


def test_a_note_without_a_present_phenotype_is_422(client: TestClient) -> None:
    body = assert_problem(client.post("/rank", json={"text": "No pneumonia, no seizures."}))
    assert "no present phenotype" in body["detail"] and "2 absent" in body["detail"]
    body = assert_problem(client.post("/rank", json={"text": "Nothing of note."}))
    assert "no present phenotype" in body["detail"]


def test_the_openapi_shows_text_group_and_equivalents(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert {"text", "group"} <= set(schemas["RankRequest"]["properties"])
    assert schemas["RankRequest"]["properties"]["text"]["anyOf"][0]["maxLength"] == MAX_RANK_TEXT_CHARS
    assert "equivalent_ids" in schemas["RankedDiseaseOut"]["properties"]
    assert "mentions" in schemas["RankQuery"]["properties"]
