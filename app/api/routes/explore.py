"""The built-in graph explorer (``GET /explore``, static files in ``app/static``), the read endpoints it draws
from (a term's neighbourhood, the evidence that shows or rules out a phenotype), and the Neo4j Browser guide
(style sheet, saved queries, and a ``:play`` guide rendered from them) served with CORS so Neo4j Browser on
another port can load them."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from app.api.deps import GraphDep, ServicesDep, SnapshotDep
from app.api.term_refs import TERM_ERRORS, TermIdPath, resolve_or_raise, term_ref
from app.core.errors import ProblemError
from app.schemas.explore import (
    EdgeType,
    EvidenceFacets,
    EvidenceItem,
    EvidencePage,
    GraphEdge,
    GraphNode,
    Neighbourhood,
    SourceCount,
)
from kg.errors import NotFoundError
from kg.repo import evidence as evidence_repo
from kg.repo.evidence import Relation

router = APIRouter(tags=["explore"])

STATIC: Final = Path(__file__).resolve().parents[2] / "static"
NEO4J_DIR: Final = STATIC / "neo4j"
SAVED_QUERIES: Final = NEO4J_DIR / "queries.cypher"

@dataclass
class _Collector:
    nodes: dict[str, GraphNode]
    edges: list[GraphEdge]

    def add(self, node: GraphNode, edge: GraphEdge | None = None) -> None:
        self.nodes.setdefault(node.id, node)
        if edge is not None:
            self.edges.append(edge)


def _items(page: evidence_repo.EvidencePage) -> list[EvidenceItem]:
    return [EvidenceItem(id=link.id, caption=link.caption, matched=link.matched, uncertain=link.uncertain,
                         relation=link.relation, source=link.source, license=link.license,
                         image_url=f"/evidence/{link.id}/image") for link in page.items]


@router.get("/terms/{term_id}/neighbourhood", response_model=Neighbourhood, responses=TERM_ERRORS,
            response_model_exclude_none=True, summary="A term with its parents, children, diseases and evidence",
            description="Nodes and edges for drawing: the term, its IS_A parents and children, the diseases whose "
                        "typical set holds it (`HAS_PHENOTYPE`, most frequent first) or whose excluded set does "
                        "(`EXCLUDES`), and evidence images whose captions show it or rule it out. `totals` "
                        "counts all of them; the lists stop at the limits.")
def neighbourhood(
    term_id: TermIdPath, services: ServicesDep, graph: GraphDep,
    children: Annotated[int, Query(ge=0, le=200, description="Most children to include")] = 40,
    diseases: Annotated[int, Query(ge=0, le=200, description="Most diseases per relation")] = 25,
    evidence: Annotated[int, Query(ge=0, le=50, description="Most evidence items")] = 8,
) -> Neighbourhood:
    index = services.diseases()
    snapshot = index.snapshot
    found = resolve_or_raise(snapshot, term_id)
    current = found.current
    assert current is not None
    view = snapshot.view
    center = term_ref(snapshot, current)
    out = _Collector({}, [])
    out.add(GraphNode(id=current, label=center.name, kind="phenotype", role="center"))
    parents = view.parents(current)
    for p in parents:
        out.add(GraphNode(id=p, label=term_ref(snapshot, p).name, kind="phenotype", role="parent"),
                GraphEdge(source=current, target=p, type="IS_A"))
    kids = sorted(view.children(current), key=lambda c: (term_ref(snapshot, c).name.casefold(), c))
    for c in kids[:children]:
        out.add(GraphNode(id=c, label=term_ref(snapshot, c).name, kind="phenotype", role="child"),
                GraphEdge(source=c, target=current, type="IS_A"))
    typical = index.for_phenotype(current, "typical", False)
    for d in typical[:diseases]:
        out.add(GraphNode(id=d.id, label=d.name, kind="disease", role="typical", source=d.source,
                          frequency=d.frequency), GraphEdge(source=d.id, target=current, type="HAS_PHENOTYPE"))
    excluded = index.for_phenotype(current, "excluded", False)
    for d in excluded[:diseases]:
        out.add(GraphNode(id=d.id, label=d.name, kind="disease", role="excluded", source=d.source),
                GraphEdge(source=d.id, target=current, type="EXCLUDES"))
    shown = evidence_repo.evidence_of_phenotype(graph, current, limit=evidence, index=services.evidence())
    for e in _items(shown):
        relation: EdgeType = "SHOWS" if e.relation == "shows" else "RULES_OUT"
        out.add(GraphNode(id=e.id, label=_short(e.caption), kind="evidence", role=e.relation),
                GraphEdge(source=e.id, target=current, type=relation))
    return Neighbourhood(term=center, nodes=list(out.nodes.values()), edges=out.edges,
                         totals={"parents": len(parents), "children": len(kids), "typical": len(typical),
                                 "excluded": len(excluded), "evidence": shown.total})


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


@router.get("/terms/{term_id}/evidence", response_model=EvidencePage, responses=TERM_ERRORS,
            response_model_exclude_none=True, summary="Evidence images whose captions show or rule out a term",
            description="Read from the graph (`SHOWS` / `RULES_OUT` edges written by `phenokg evidence import`), "
                        "one item per image and relation: images that show the term first, each relation by "
                        "evidence id. Filter by `relation` and `source`; page by `offset`, or by `after` (the "
                        "`next` of the previous page: stays in place when evidence is added meanwhile). "
                        "`facets` counts the items per relation and per source for a filter panel. "
                        "`image_url` serves the image (`?size=128` for a thumbnail).")
def term_evidence(
    term_id: TermIdPath, snapshot: SnapshotDep, graph: GraphDep, services: ServicesDep,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip (after `after` when given)")] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    relation: Annotated[Relation | None, Query(description="Only images that show the term (`shows`) or only "
                                                           "those that rule it out (`rules_out`)")] = None,
    source: Annotated[str | None, Query(min_length=1, max_length=200, examples=["pneumoniamnist"],
                                        description="Only images of this evidence source (exact name, as "
                                                    "listed in `facets.sources`)")] = None,
    after: Annotated[str | None, Query(min_length=3, max_length=400, pattern=r"^(shows|rules_out):.+$",
                                       examples=["shows:ev-1"],
                                       description="Cursor: the page starts after this item (`next` of the "
                                                   "previous page)")] = None,
) -> EvidencePage:
    found = resolve_or_raise(snapshot, term_id)
    assert found.current is not None
    cursor = evidence_repo.parse_cursor(after) if after is not None else None
    if after is not None and cursor is None:  # the pattern admits only well-formed cursors; kept as a guard
        raise ProblemError(422, "Unprocessable Content", f"after: not a cursor: {after!r}")
    page = evidence_repo.evidence_of_phenotype(graph, found.current, skip=offset, limit=limit, relation=relation,
                                               source=source, after=cursor, index=services.evidence())
    return EvidencePage(term=term_ref(snapshot, found.current), total=page.total, offset=page.offset, limit=limit,
                        items=_items(page), next=page.next,
                        facets=EvidenceFacets(relations=page.facets.relations,
                                              sources=[SourceCount(source=s, count=n)
                                                       for s, n in page.facets.sources]))


# ---------------------------------------------------------------------------------------------- pages

@router.get("/explore", include_in_schema=False)
def explore_page() -> FileResponse:
    return FileResponse(STATIC / "explore.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})


# Neo4j Browser (another origin, e.g. :7474) fetches these; they are public, read-only files.
_CORS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-cache"}
_NEO4J_FILES: Final = {"style.grass": "text/plain; charset=utf-8", "queries.cypher": "text/plain; charset=utf-8"}


@router.get("/explore/neo4j/guide.html", include_in_schema=False)
def neo4j_guide() -> HTMLResponse:
    """A Neo4j Browser guide (``:play <this url>``): one slide per saved query, each runnable with a click."""
    return HTMLResponse(render_guide(parse_saved_queries(SAVED_QUERIES.read_text(encoding="utf-8"))),
                        headers=_CORS)


@router.get("/explore/neo4j/{name}", include_in_schema=False)
def neo4j_file(name: str) -> Response:
    media = _NEO4J_FILES.get(name)
    if media is None:
        raise NotFoundError(f"no Neo4j Browser file {name!r} (there are: guide.html, {', '.join(_NEO4J_FILES)})")
    return Response((NEO4J_DIR / name).read_bytes(), media_type=media, headers=_CORS)


@dataclass(frozen=True)
class SavedQuery:
    name: str
    description: str
    cypher: str


@dataclass(frozen=True)
class SavedQueries:
    params: dict[str, str]  # name -> Cypher literal as written after ``=>``
    queries: list[SavedQuery]


def parse_saved_queries(text: str) -> SavedQueries:
    """``:param name => literal;`` lines, then blocks that start with ``// name: ...`` (further ``//`` lines
    describe the query) and end with ``;``."""
    params: dict[str, str] = {}
    queries: list[SavedQuery] = []
    name: str | None = None
    description: list[str] = []
    body: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(":param "):
            key, _, value = stripped[len(":param "):].partition("=>")
            params[key.strip()] = value.strip().rstrip(";").strip()
        elif stripped.startswith("// name:"):
            name, description, body = stripped[len("// name:"):].strip(), [], []
        elif name is not None and stripped.startswith("//") and not body:
            description.append(stripped[2:].strip())
        elif name is not None and stripped:
            body.append(line.rstrip())
            if stripped.endswith(";"):
                queries.append(SavedQuery(name, " ".join(description), "\n".join(body).rstrip(";").strip()))
                name, description, body = None, [], []
    return SavedQueries(params, queries)


def render_guide(saved: SavedQueries) -> str:
    """The legacy Neo4j Browser guide format (``:play`` a URL): an article of slides, runnable ``<pre>``s."""
    esc = html.escape
    params = "\n".join(f":param {k} => {v}" for k, v in saved.params.items())
    slides = [
        "<slide class='row-fluid'><div class='col-sm-12'><h3>phenokg: browse the phenotype graph</h3>"
        "<p><b>Phenotype</b> (HPO terms, <code>IS_A</code> to their parents), <b>Disease</b> "
        "(<code>HAS_PHENOTYPE</code>: the typical set, <code>EXCLUDES</code>: the excluded set) and "
        "<b>Evidence</b> (images whose captions <code>SHOWS</code> or <code>RULES_OUT</code> a phenotype).</p>"
        "<p>Load the colours and captions with <code>:style http://localhost:8000/explore/neo4j/style.grass"
        "</code>, then set the parameters the queries use (click, then run; edit the ids freely):</p>"
        f"<pre class='runnable'>{esc(params)}</pre></div></slide>"
    ]
    for q in saved.queries:
        slides.append(f"<slide class='row-fluid'><div class='col-sm-12'><h3>{esc(q.name)}</h3>"
                      f"<p>{esc(q.description)}</p><pre class='runnable'>{esc(q.cypher)}</pre></div></slide>")
    return ("<article class='guide'><carousel class='deck container-fluid'>" + "".join(slides)
            + "</carousel></article>")


def install(app: FastAPI) -> None:
    """The explorer's routes and its static files (``/explore/static/...``, vendored libraries included)."""
    app.include_router(router)
    app.mount("/explore/static", StaticFiles(directory=STATIC), name="explore-static")
