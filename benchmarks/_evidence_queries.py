"""Latency of ``GET /terms/{id}/evidence`` on a running API: the cases the explorer's evidence panel asks for
(first page, a deep page by offset and by cursor, a relation filter, a source filter, both), p50/p95 each.

For the scale benchmark (``benchmarks/evidence_scale.py``)::

    from _evidence_queries import measure_evidence_queries
    figures = measure_evidence_queries("http://127.0.0.1:8000", "HP:0002090", repeats=50)

Standalone, on a throwaway home filled with generated evidence (performance only: nothing here is data)::

    .venv/bin/python benchmarks/_evidence_queries.py --home /tmp/evscale --fill 520000 --heavy 80000
    PHENOKG_HOME=/tmp/evscale .venv/bin/phenokg serve --no-build --port 8077 &
    .venv/bin/python benchmarks/_evidence_queries.py --url http://127.0.0.1:8077 --term HP:0002090

``--fill`` builds the full HPO first when the home holds no graph, then adds ``N`` Evidence nodes (ids
``gen-0000000`` …, six sources with skewed frequencies) with 1–2 links each to 3,000 phenotypes, and one
more link for the first ``--heavy`` of them to ``--term`` (70 % SHOWS, 30 % RULES_OUT).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from typing import Any, Final, LiteralString

import httpx
from _common import percentile, progress

WARMUP: Final = 3  # requests per case before timing (the first one reads the phenotype's evidence list)


def measure_evidence_queries(base_url: str, term_id: str, *, repeats: int = 50) -> dict[str, dict[str, float]]:
    """``{case: {"p50_ms", "p95_ms", "total", "offset"}}``: client-side wall time of ``repeats`` sequential
    requests per case (after a warm-up), one keep-alive connection. Deep pages are the middle of their list;
    the source filter takes the least common source (the most selective one)."""
    url = f"{base_url.rstrip('/')}/terms/{term_id}/evidence"
    with httpx.Client(timeout=60.0) as client:
        def get(**params: Any) -> dict[str, Any]:
            response = client.get(url, params=params)
            response.raise_for_status()
            body: dict[str, Any] = response.json()
            return body

        first = get(limit=20)
        total = int(first["total"])
        relations: dict[str, int] = first["facets"]["relations"]
        sources: list[dict[str, Any]] = first["facets"]["sources"]
        relation = max(relations, key=lambda r: relations[r])
        rare = sources[-1]["source"] if sources else None
        middle = max(0, total // 2 - 1)
        cursor = get(offset=middle, limit=1).get("next") if total > 1 else None
        cases: dict[str, dict[str, Any]] = {
            "first page": {"limit": 20},
            "deep page (offset)": {"limit": 20, "offset": middle},
            f"{relation} (middle page)": {"limit": 20, "relation": relation,
                                          "offset": max(0, relations[relation] // 2 - 1)},
        }
        if cursor:
            cases["deep page (cursor)"] = {"limit": 20, "after": cursor}
        if rare is not None:
            n = int(sources[-1]["count"])
            cases[f"source {rare} (middle page)"] = {"limit": 20, "source": rare, "offset": max(0, n // 2 - 1)}
            cases[f"{relation} + source {rare}"] = {"limit": 20, "source": rare, "relation": relation}
        out: dict[str, dict[str, float]] = {}
        for name, params in cases.items():
            for _ in range(WARMUP):
                get(**params)
            times: list[float] = []
            body: dict[str, Any] = {}
            for _ in range(repeats):
                began = time.perf_counter()
                body = get(**params)
                times.append((time.perf_counter() - began) * 1000)
            out[name] = {"p50_ms": round(percentile(times, 0.5), 2), "p95_ms": round(percentile(times, 0.95), 2),
                         "total": float(body["total"]), "offset": float(body["offset"])}
    return out


# ---- a throwaway graph of generated evidence (performance only) ---------------------------------------------

_NODES: Final[LiteralString] = "UNWIND $rows AS r CREATE (e:Evidence) SET e = r"
_LINK: Final[dict[str, LiteralString]] = {
    "SHOWS": "UNWIND $rows AS r MATCH (e:Evidence {id: r.e}) MATCH (p:Phenotype {id: r.p}) "
             "CREATE (e)-[:SHOWS {matched: r.m, field: 'name', start: 0, end: 9, uncertain: false}]->(p)",
    "RULES_OUT": "UNWIND $rows AS r MATCH (e:Evidence {id: r.e}) MATCH (p:Phenotype {id: r.p}) "
                 "CREATE (e)-[:RULES_OUT {matched: r.m, field: 'name', start: 20, end: 29, uncertain: false}]->(p)",
}
_TERMS: Final[LiteralString] = ("MATCH (p:Phenotype) WHERE p.obsolete = false RETURN p.id AS id "
                                "ORDER BY id LIMIT 3001")
SOURCES: Final = ("pneumoniamnist", "chexpert", "mimic-cxr", "openi", "padchest", "vindr-cxr")


def fill(graph: Any, n: int, heavy_term: str, heavy: int, *, seed: int = 4, chunk: int = 20_000) -> None:
    """Add ``n`` generated Evidence nodes and their links (see the module docstring) with ``write_batches``."""
    say = progress("evidence-fill")
    rng = random.Random(seed)
    others = [r["id"] for r in graph.read(_TERMS) if r["id"] != heavy_term][:3000]
    began = time.monotonic()
    for base in range(0, n, chunk):
        nodes: list[dict[str, Any]] = []
        links: dict[str, list[dict[str, str]]] = {"SHOWS": [], "RULES_OUT": []}
        for i in range(base, min(base + chunk, n)):
            eid = f"gen-{i:07d}"
            nodes.append({"id": eid, "caption": f"Chest radiograph {i}: pneumonia, no effusion (template {i % 97}).",
                          "source": SOURCES[min(int(rng.expovariate(0.9)), len(SOURCES) - 1)],
                          "license": "CC BY 4.0", "sha256": hashlib.sha256(eid.encode()).hexdigest(),
                          "image_uri": f"generated:{i}", "image_format": "png", "width": 224, "height": 224})
            for term in rng.sample(others, 1 if rng.random() < 0.5 else 2):
                links["SHOWS" if rng.random() < 0.75 else "RULES_OUT"].append({"e": eid, "p": term, "m": "pneumonia"})
            if i < heavy:
                links["SHOWS" if rng.random() < 0.7 else "RULES_OUT"].append({"e": eid, "p": heavy_term,
                                                                              "m": "pneumonia"})
        graph.write_batches(_NODES, nodes, batch_size=2000)
        for kind, rows in links.items():
            graph.write_batches(_LINK[kind], rows, batch_size=2000)
        say(f"{base + len(nodes):,} evidence nodes, {time.monotonic() - began:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running API to measure")
    parser.add_argument("--term", default="HP:0002090", help="the phenotype with many evidence items")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--home", help="PHENOKG_HOME to fill (with --fill)")
    parser.add_argument("--fill", type=int, default=0, help="generated Evidence nodes to add")
    parser.add_argument("--heavy", type=int, default=80_000, help="links of --term among them")
    args = parser.parse_args(argv)
    if args.fill:
        from kg.config import GraphSettings
        from kg.ingest.build import build
        from kg.store.graph import connect

        graph = connect(GraphSettings(**({"PHENOKG_HOME": args.home} if args.home else {})))
        try:
            if not graph.read("MATCH (p:Phenotype {id: $id}) RETURN count(p) AS n", id=args.term)[0]["n"]:
                build(graph, include_pack=False, progress=False)
            fill(graph, args.fill, args.term, args.heavy)
        finally:
            graph.close()
            if graph.server is not None:
                graph.server.stop()
    if args.url:
        json.dump(measure_evidence_queries(args.url, args.term, repeats=args.repeats), sys.stdout, indent=2)
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
