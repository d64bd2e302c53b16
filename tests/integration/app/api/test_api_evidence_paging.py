"""``GET /terms/{id}/evidence`` filtered by source and relation, paged by cursor, with the counts the explorer's
filter panel shows, on the real embedded graph (mini HPO plus evidence images of two sources)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.config import AppSettings
from app.main import create_app
from kg.config import GraphSettings
from kg.store.graph import Graph
from tests.helpers import assert_problem, clear_graph
from tests.integration.explore_data import PNEUMONIA, build_mini_with_evidence, import_grey_images

pytestmark = pytest.mark.integration

OTHER = "openi-demo"
URL = f"/terms/{PNEUMONIA}/evidence"


@pytest.fixture(scope="module")
def client(graph: Graph, graph_settings: GraphSettings,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """Pneumonia: shown by 2 explorer-test images and 3 openi-demo ones, ruled out by 2 openi-demo ones."""
    build_mini_with_evidence(graph, graph_settings.home, tmp_path_factory.mktemp("evidence"))
    import_grey_images(graph, graph_settings.home, tmp_path_factory.mktemp("more"),
                       ["Pneumonia."] * 3 + ["No pneumonia."] * 2, name="src", shade=lambda i: 60 + 7 * i,
                       source=OTHER)
    settings = AppSettings(**{"PHENOKG_HOME": str(graph_settings.home),  # type: ignore[arg-type]
                              **({"NEO4J_URI": graph_settings.neo4j_uri} if graph_settings.neo4j_uri else {})})
    with TestClient(create_app(settings)) as c:
        yield c
    clear_graph(graph)


def get(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get(URL, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_facets_count_each_filter_under_the_other(client: TestClient) -> None:
    body = get(client)
    assert body["total"] == 7
    assert body["facets"] == {"relations": {"shows": 5, "rules_out": 2},
                              "sources": [{"source": OTHER, "count": 5}, {"source": "explorer-test", "count": 2}]}
    ruled = get(client, relation="rules_out")
    assert ruled["facets"]["sources"] == [{"source": OTHER, "count": 2}]
    assert ruled["facets"]["relations"] == {"shows": 5, "rules_out": 2}  # its own filter does not narrow it


def test_source_filter_alone_and_with_relation(client: TestClient) -> None:
    other = get(client, source=OTHER)
    assert other["total"] == 5 and {i["source"] for i in other["items"]} == {OTHER}
    assert [i["relation"] for i in other["items"]] == ["shows"] * 3 + ["rules_out"] * 2
    assert other["facets"]["relations"] == {"shows": 3, "rules_out": 2}
    both = get(client, source="explorer-test", relation="shows")
    assert both["total"] == 2 and {(i["source"], i["relation"]) for i in both["items"]} == {("explorer-test", "shows")}
    assert both["facets"]["relations"] == {"shows": 2, "rules_out": 0}
    none = get(client, source="explorer-test", relation="rules_out")
    assert none["total"] == 0 and none["items"] == [] and "next" not in none
    unknown = get(client, source="no-such-source")
    assert unknown["total"] == 0 and unknown["items"] == []


def test_cursor_walks_every_item_once_in_order(client: TestClient) -> None:
    everything = get(client, limit=100)
    assert "next" not in everything
    order = [(i["relation"], i["id"]) for i in everything["items"]]
    assert order == sorted(order, key=lambda k: (k[0] != "shows", k[1]))  # shows first, each by id
    walked, offsets, after = [], [], None
    while True:
        page = get(client, limit=2, **({"after": after} if after else {}))
        offsets.append(page["offset"])
        walked += [(i["relation"], i["id"]) for i in page["items"]]
        after = page.get("next")
        if after is None:
            break
        assert after == f"{walked[-1][0]}:{walked[-1][1]}"
    assert walked == order and offsets == [0, 2, 4, 6]
    # offset counts on from the cursor; a filtered walk stays within its filter
    assert get(client, after=f"shows:{order[0][1]}", offset=1, limit=1)["items"][0]["id"] == order[2][1]
    filtered = get(client, source=OTHER, relation="rules_out", limit=1)
    second = get(client, source=OTHER, relation="rules_out", limit=1, after=filtered["next"])
    assert [filtered["items"][0]["id"], second["items"][0]["id"]] == [k[1] for k in order if k[0] == "rules_out"]
    assert second["offset"] == 1 and "next" not in second
    # a cursor that is no item (any more) still places the page: after every shows item come the rules_out ones
    assert get(client, after="shows:~~~", limit=10)["offset"] == 5


@pytest.mark.parametrize("params", [
    {"source": ""}, {"source": "x" * 201}, {"after": "bogus"}, {"after": "shows:"}, {"after": "maybe:ev-1"},
    {"offset": -1}, {"limit": 101}, {"relation": "maybe"},
])
def test_bad_parameters_are_422_problems(client: TestClient, params: dict[str, Any]) -> None:
    assert_problem(client.get(URL, params=params), 422)


def test_new_evidence_shows_at_once(client: TestClient, graph: Graph, graph_settings: GraphSettings,
                                    tmp_path: Path) -> None:
    """The per-process evidence list is read again when the graph holds other evidence (last: it adds some)."""
    assert get(client)["total"] == 7
    import_grey_images(graph, graph_settings.home, tmp_path, ["Lobar pneumonia."], name="late",
                       shade=lambda i: 230, source="late-source")
    body = get(client, source="late-source")
    assert body["total"] == 1 and body["items"][0]["source"] == "late-source"
    assert get(client)["total"] == 8
