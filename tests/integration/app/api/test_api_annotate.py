"""Annotation endpoint, served by the real app on the real embedded server (mini fixtures)."""

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

def _annotate(client: TestClient, *texts: str) -> list[dict[str, Any]]:
    response = client.post("/annotate", json={"documents": [{"id": f"d{i}", "text": t} for i, t in enumerate(texts)]})
    assert response.status_code == 200, response.text
    documents: list[dict[str, Any]] = response.json()["documents"]
    return documents


def test_annotate_spans_ids_negation_uncertainty(client: TestClient) -> None:
    text = "Chest X-ray: no pleural effusion. Possible cardiomegaly; seizures since birth."
    [doc] = _annotate(client, text)
    assert doc["id"] == "d0"
    mentions = doc["mentions"]
    assert [(m["id"], m["negated"], m["uncertain"]) for m in mentions] == [
        ("HP:0002202", True, False), ("HP:0001640", False, True), ("HP:0001250", False, False)]
    for m in mentions:
        assert text[m["start"]:m["end"]] == m["text"]
    assert mentions[0] == {"start": 16, "end": 32, "text": "pleural effusion", "id": "HP:0002202",
                           "name": "Pleural effusion", "matched": "Pleural effusion", "field": "name",
                           "negated": True, "uncertain": False}
    assert mentions[2]["name"] == "Seizure" and mentions[2]["field"] == "synonym"


def test_annotate_synonyms_and_batch_order(client: TestClient) -> None:
    docs = _annotate(client, "The patient has an enlarged heart.", "", "Collapsed lung on the left; pneumonias.")
    assert [d["id"] for d in docs] == ["d0", "d1", "d2"]
    assert [m["id"] for m in docs[0]["mentions"]] == ["HP:0001640"]
    assert docs[1]["mentions"] == []
    assert [m["id"] for m in docs[2]["mentions"]] == ["HP:0002107", "HP:0002090"]


def test_annotate_only_phenotypic_abnormality_terms(client: TestClient) -> None:
    [doc] = _annotate(client, "Autosomal dominant inheritance; mode of inheritance unclear.")
    assert doc["mentions"] == []  # HP:0000005 branch is not linked


def test_annotate_default_ids_and_empty_batch(client: TestClient) -> None:
    response = client.post("/annotate", json={"documents": [{"text": "pneumonia"}, {"text": "seizure", "id": "x"}]})
    assert [d["id"] for d in response.json()["documents"]] == ["0", "x"]
    assert client.post("/annotate", json={"documents": []}).json() == {"documents": []}


def test_annotate_unicode_offsets_are_code_points(client: TestClient) -> None:
    text = "😀 Fiebre, 肺炎 — café au lait; pneumonia\u00a0and PLEURAL EFFUSION"
    [doc] = _annotate(client, text)
    assert [m["id"] for m in doc["mentions"]] == ["HP:0002090", "HP:0002202"]
    for m in doc["mentions"]:
        assert text[m["start"]:m["end"]] == m["text"]


@pytest.mark.parametrize("text", ["'; DROP TABLE terms; --", "MATCH (n) DETACH DELETE n", "<script>alert(1)</script>",
                                  "{{7*7}} ${jndi:ldap://x}", "\u0000\u0001\u200b", " " * 1000, "\n\n\n"])
def test_annotate_hostile_text_gives_empty_result(client: TestClient, text: str) -> None:
    [doc] = _annotate(client, text)
    assert doc["mentions"] == []


def test_annotate_two_thousand_character_note(client: TestClient) -> None:
    sentence = "Follow-up chest film: no pneumothorax, possible pleural effusion, cardiomegaly is stable. "
    note = (sentence * 40)[:2000]
    [doc] = _annotate(client, note)
    assert len(doc["mentions"]) >= 60
    assert {m["id"] for m in doc["mentions"]} == {"HP:0002107", "HP:0002202", "HP:0001640"}
    assert all(m["negated"] for m in doc["mentions"] if m["id"] == "HP:0002107")


def test_annotate_limits(client: TestClient) -> None:
    too_many = {"documents": [{"text": "x"}] * 101}
    body = _problem(client.post("/annotate", json=too_many), 422)
    assert body["errors"][0]["loc"] == ["body", "documents"]
    too_long = {"documents": [{"text": "a" * 100_001}]}
    assert _problem(client.post("/annotate", json=too_long), 422)["errors"][0]["loc"] == [
        "body", "documents", 0, "text"]
    ok = client.post("/annotate", json={"documents": [{"text": "pneumonia " * 10_000}] * 2})
    assert ok.status_code == 200 and len(ok.json()["documents"][0]["mentions"]) == 10_000


def test_annotate_total_characters_cap_is_413(client: TestClient) -> None:
    batch = {"documents": [{"text": "pneumonia " * 10_000}] * 11}  # 11 × 100,000 characters
    problem = _problem(client.post("/annotate", json=batch), 413)
    assert "1,100,000 characters" in problem["detail"]


def test_annotate_oversized_body_is_413(client: TestClient) -> None:
    body = b'{"documents": [{"text": "' + b"a" * (9 * 1024 * 1024) + b'"}]}'
    problem = _problem(client.post("/annotate", content=body, headers={"content-type": "application/json"}), 413)
    assert "bytes" in problem["detail"]


@pytest.mark.parametrize("payload", [
    b"", b"not json", b"[]", b"{}", b'{"documents": "text"}', b'{"documents": [{"id": "a"}]}',
    b'{"documents": [{"text": 5}]}', b'{"documents": [{"text": "a", "lang": "en"}]}',
    b'{"documents": [{"text": "\\ud800 pneumonia"}]}', b'{"documents": [{"text": "ok", "id": "\\udfff"}]}',
    b'{"documents": [null]}', b'\xff\xfe',
])
def test_annotate_bad_bodies_are_422(client: TestClient, payload: bytes) -> None:
    _problem(client.post("/annotate", content=payload, headers={"content-type": "application/json"}), 422)
