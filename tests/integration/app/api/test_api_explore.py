"""The explorer's read endpoints, its page and static files, and the Neo4j Browser guide, on the real
embedded graph (mini fixture HPO plus three evidence images)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api.routes.explore import SAVED_QUERIES, parse_saved_queries
from app.core.config import AppSettings
from app.main import create_app
from kg.config import GraphSettings
from kg.store.graph import Graph
from tests.helpers import assert_problem, clear_graph
from tests.integration.explore_data import CARDIOMEGALY, EFFUSION, PNEUMONIA, build_mini_with_evidence

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def explore_client(graph: Graph, graph_settings: GraphSettings,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    build_mini_with_evidence(graph, graph_settings.home, tmp_path_factory.mktemp("evidence"))
    settings = AppSettings(**{"PHENOKG_HOME": str(graph_settings.home),  # type: ignore[arg-type]
                              **({"NEO4J_URI": graph_settings.neo4j_uri} if graph_settings.neo4j_uri else {})})
    with TestClient(create_app(settings)) as client:
        yield client
    clear_graph(graph)


def test_neighbourhood_has_hierarchy_diseases_and_evidence(explore_client: TestClient) -> None:
    body = explore_client.get(f"/terms/{PNEUMONIA}/neighbourhood").json()
    assert body["term"]["id"] == PNEUMONIA and body["term"]["name"] == "Pneumonia"
    nodes = {n["id"]: n for n in body["nodes"]}
    assert nodes[PNEUMONIA]["role"] == "center"
    assert {n["role"] for n in nodes.values()} >= {"center", "parent", "typical", "shows"}
    typical = [n for n in nodes.values() if n["role"] == "typical"]
    assert [(n["id"], n["kind"], n["source"], n["frequency"]) for n in typical] == [
        ("OMIM:100001", "disease", "OMIM", 0.75)]
    assert body["totals"]["evidence"] == 2
    ids = set(nodes)
    edges = body["edges"]
    assert all(e["source"] in ids and e["target"] in ids for e in edges)
    assert {"source": "OMIM:100001", "target": PNEUMONIA, "type": "HAS_PHENOTYPE"} in edges
    assert sum(e["type"] == "SHOWS" for e in edges) == 2
    assert any(e["type"] == "IS_A" and e["source"] == PNEUMONIA for e in edges)


def test_neighbourhood_excluded_diseases_and_limits(explore_client: TestClient) -> None:
    body = explore_client.get(f"/terms/{CARDIOMEGALY}/neighbourhood", params={"evidence": 0}).json()
    roles = {n["id"]: n["role"] for n in body["nodes"]}
    # OMIM:100001 states 0/5 (excluded), ORPHA:200002 "very frequent" (typical)
    assert roles["OMIM:100001"] == "excluded" and roles["ORPHA:200002"] == "typical"
    assert {"source": "OMIM:100001", "target": CARDIOMEGALY, "type": "EXCLUDES"} in body["edges"]
    assert not any(n["kind"] == "evidence" for n in body["nodes"])
    assert body["totals"]["evidence"] == 1  # counted, not drawn


def test_neighbourhood_resolves_and_rejects_ids(explore_client: TestClient) -> None:
    assert_problem(explore_client.get("/terms/HP:9999999/neighbourhood"), 404)
    assert_problem(explore_client.get("/terms/not-an-id/neighbourhood"), 422)
    assert_problem(explore_client.get(f"/terms/{PNEUMONIA}/neighbourhood", params={"children": -1}), 422)


def test_term_evidence_pages_and_images(explore_client: TestClient) -> None:
    page = explore_client.get(f"/terms/{EFFUSION}/evidence").json()
    assert page["total"] == 1
    (item,) = page["items"]
    assert item["relation"] == "rules_out" and item["caption"].startswith("Chest radiograph shows pneumonia")
    assert item["matched"].lower() == "pleural effusion"
    image = explore_client.get(item["image_url"], params={"size": 64})
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    shows = explore_client.get(f"/terms/{PNEUMONIA}/evidence", params={"limit": 1}).json()
    assert shows["total"] == 2 and len(shows["items"]) == 1 and shows["items"][0]["relation"] == "shows"
    assert_problem(explore_client.get(f"/terms/{PNEUMONIA}/evidence", params={"limit": 0}), 422)


def test_term_evidence_relation_filter(explore_client: TestClient) -> None:
    """What the explorer's evidence panel asks: one relation at a time, each with its own total and paging."""
    def page(term: str, **params: object) -> dict[str, object]:
        response = explore_client.get(f"/terms/{term}/evidence", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    shows = page(PNEUMONIA, relation="shows", limit=1)
    assert shows["total"] == 2 and [i["relation"] for i in shows["items"]] == ["shows"]  # type: ignore[attr-defined]
    second = page(PNEUMONIA, relation="shows", limit=1, offset=1)
    assert second["items"] != shows["items"] and second["total"] == 2
    assert page(PNEUMONIA, relation="rules_out")["total"] == 0
    ruled = page(EFFUSION, relation="rules_out")
    assert ruled["total"] == 1 and {i["relation"] for i in ruled["items"]} == {"rules_out"}  # type: ignore[attr-defined]
    empty = page(EFFUSION, relation="shows")
    assert empty["total"] == 0 and empty["items"] == []
    assert_problem(explore_client.get(f"/terms/{PNEUMONIA}/evidence", params={"relation": "maybe"}), 422)


def test_explore_page_and_vendored_library(explore_client: TestClient) -> None:
    page = explore_client.get("/explore")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/explore/static/vendor/cytoscape.min.js" in page.text
    lib = explore_client.get("/explore/static/vendor/cytoscape.min.js")
    assert lib.status_code == 200 and "Cytoscape Consortium" in lib.text[:400]
    assert explore_client.get("/explore/static/explore.js").status_code == 200
    # the page's ES modules, each served as JavaScript from the package (no CDN)
    assert '<script type="module" src="/explore/static/explore.js">' in page.text
    for module in ("core", "graph", "browse", "evidence", "diagnosis", "retrieval", "jobs"):
        served = explore_client.get(f"/explore/static/explore-{module}.js")
        assert served.status_code == 200 and "javascript" in served.headers["content-type"], module
        assert "export " in served.text
    assert "http://" not in page.text.split("<footer")[0] and "https://" not in page.text.split("<footer")[0]
    assert_problem(explore_client.get("/explore/static/nope.js"), 404)


def test_neo4j_browser_files_allow_cross_origin(explore_client: TestClient) -> None:
    style = explore_client.get("/explore/neo4j/style.grass")
    assert style.status_code == 200 and style.headers["access-control-allow-origin"] == "*"
    assert "node.Phenotype" in style.text and "relationship.EXCLUDES" in style.text
    guide = explore_client.get("/explore/neo4j/guide.html")
    assert guide.status_code == 200 and guide.headers["access-control-allow-origin"] == "*"
    saved = parse_saved_queries(SAVED_QUERIES.read_text(encoding="utf-8"))
    assert guide.text.count("class='runnable'") == len(saved.queries) + 1
    assert "Term neighbourhood" in guide.text and ":param term =&gt; &#x27;HP:0002090&#x27;" in guide.text
    assert_problem(explore_client.get("/explore/neo4j/secrets.txt"), 404)


def test_every_saved_query_runs_and_returns_rows(explore_client: TestClient, graph: Graph) -> None:
    """The curator's saved queries, with the :param values the file sets, on the real graph server."""
    import ast

    saved = parse_saved_queries(SAVED_QUERIES.read_text(encoding="utf-8"))
    assert [q.name for q in saved.queries] == [
        "Term neighbourhood", "Disease: typical vs excluded phenotypes", "Evidence for a phenotype",
        "Diseases sharing phenotypes with a disease", "Diseases showing a phenotype set", "Diseases of a gene"]
    params = {k: ast.literal_eval(v) for k, v in saved.params.items()}
    results = {q.name: graph.read(q.cypher, **params) for q in saved.queries}
    assert all(results.values()), {k: len(v) for k, v in results.items()}
    disease = results["Disease: typical vs excluded phenotypes"]
    assert {(r["phenotype_id"], r["relation"]) for r in disease} >= {
        (PNEUMONIA, "HAS_PHENOTYPE"), (CARDIOMEGALY, "EXCLUDES")}
    assert disease[0]["relation"] == "HAS_PHENOTYPE" and disease[-1]["relation"] == "EXCLUDES"
    assert {r["relation"] for r in results["Evidence for a phenotype"]} == {"SHOWS"}
    assert results["Term neighbourhood"][0]["t"] is not None
    (sharing,) = results["Diseases sharing phenotypes with a disease"]
    # OMIM:100001 has cardiomegaly 0/5 (excluded) and pleural effusion (typical); ORPHA:200002 the reverse
    assert (sharing["disease"], sharing["agree"], sharing["conflict"]) == ("ORPHA:200002", 0, 2)
    showing = results["Diseases showing a phenotype set"]
    assert showing[0]["matched"] >= 1
    (of_gene,) = results["Diseases of a gene"]
    assert (of_gene["disease"], of_gene["genes"], of_gene["typical"], of_gene["excluded"]) == (
        "OMIM:100001", ["LUNGA"], 2, 1)


def test_saved_query_parser_reads_params_and_blocks(tmp_path: Path) -> None:
    text = (":param a => 'x';\n// name: One\n// does one\nMATCH (n)\nRETURN n;\n\n"
            "// name: Two\nRETURN 1 AS one;\n")
    saved = parse_saved_queries(text)
    assert saved.params == {"a": "'x'"}
    assert [(q.name, q.description, q.cypher) for q in saved.queries] == [
        ("One", "does one", "MATCH (n)\nRETURN n"), ("Two", "", "RETURN 1 AS one")]
