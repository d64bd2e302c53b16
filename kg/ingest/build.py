"""Build (or update) the graph from HPO sources: parse everything first, then write in UNWIND batches.

Updates are mark-and-sweep: every node and edge written by a build carries its ``build`` stamp, and
what a new build did not touch is deleted afterwards (terms that evidence points at are kept and
marked retired). Re-running a build therefore yields identical counts, and a newer release renames,
adds and obsoletes terms in place instead of duplicating them.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kg.analysis.ontology import OntologyView
from kg.errors import SourceFormatError
from kg.ingest.genes import parse_disease_genes
from kg.ingest.hpoa import AnnotationRow, FoldedEdge, HpoaHeader, diseases, fold, parse_hpoa
from kg.ingest.obo import ReleaseInfo, parse_obo, sha256_file, shipped_file
from kg.ingest.sync import BATCH, apply, clean, diff_items
from kg.ingest.xray_pack import XrayPack, load_pack, pack_rows, validate_pack
from kg.store import queries as Q
from kg.store.graph import Graph
from kg.store.migrations import migrate
from kg.terms import TermRow
from kg.timing import StageTimer

log = logging.getLogger(__name__)

HPOA_SOURCES = ["OMIM", "ORPHA", "DECIPHER"]
PACK_SOURCE = "CXR_PACK"


@dataclass
class SourceData:
    """Everything a build writes, parsed and validated before the first write."""

    release: ReleaseInfo
    terms: list[TermRow]
    header: HpoaHeader
    annotations: list[AnnotationRow]
    view: OntologyView
    edges: list[FoldedEdge]
    diseases: list[dict[str, str]]
    pack: XrayPack | None
    hpoa_path: str
    hpoa_sha256: str
    disease_genes: dict[str, list[str]] = field(default_factory=dict)
    genes_path: str | None = None
    genes_sha256: str | None = None


@dataclass
class BuildReport:
    stamp: str
    release: str
    counts: dict[str, int] = field(default_factory=dict)
    changes: dict[str, dict[str, int]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def unresolved_annotation_ids(annotations: Iterable[AnnotationRow], view: OntologyView) -> list[AnnotationRow]:
    return [row for row in annotations if view.resolve(row.hpo_id) is None]


def load_sources(obo: Path | None = None, hpoa: Path | None = None, pack: Path | None = None,
                 include_pack: bool = True, genes: Path | None = None) -> SourceData:
    """Parse and cross-check the sources. Raises before anything is written to the graph.

    ``genes`` (HPO's ``genes_to_phenotype.txt``) defaults to the shipped file when the annotations are the
    shipped ones too (the two come from one release); with the user's own ``hpoa`` and no ``genes``, diseases
    get no genes."""
    release, terms = parse_obo(obo)
    hpoa_path = Path(hpoa) if hpoa else shipped_file("phenotype.hpoa")
    header, annotations = parse_hpoa(hpoa_path)
    view = OntologyView.from_rows(terms)
    missing = unresolved_annotation_ids(annotations, view)
    if missing:
        first = missing[0]
        raise SourceFormatError(
            hpoa_path, first.line,
            f"{first.hpo_id} is not a current, alternative or replaced id in HPO {release.version} "
            f"({len(missing)} such rows; are the OBO and HPOA files from the same release?)",
        )
    view.compute_ic((r.disease_id, r.hpo_id) for r in annotations if not r.excluded)
    curated = None
    if include_pack:
        curated = load_pack(pack)
        known: dict[str, str | None] = {t: None for t in view.names}
        known.update({old: new for old, new in view.redirects.items()})
        known.update({t: "" for t in view.obsolete_without_replacement})
        validate_pack(curated, known)
    genes_path = Path(genes) if genes else (shipped_file("genes_to_phenotype.txt") if hpoa is None else None)
    return SourceData(
        release=release, terms=terms, header=header, annotations=annotations, view=view,
        edges=fold(annotations, view.redirects), diseases=diseases(annotations), pack=curated,
        hpoa_path=str(hpoa_path), hpoa_sha256=sha256_file(hpoa_path),
        disease_genes=parse_disease_genes(genes_path) if genes_path else {},
        genes_path=str(genes_path) if genes_path else None,
        genes_sha256=sha256_file(genes_path) if genes_path else None,
    )


def phenotype_props(data: SourceData) -> dict[str, dict[str, Any]]:
    view = data.view
    out: dict[str, dict[str, Any]] = {}
    for t in data.terms:
        live = not t.obsolete
        out[t.id] = clean({
            "id": t.id, "name": t.name, "definition": t.definition, "synonyms": list(t.synonyms),
            "synonym_scopes": list(t.synonym_scopes), "xrefs": list(t.xrefs), "comment": t.comment,
            "obsolete": t.obsolete, "alt_ids": list(t.alt_ids), "replaced_by": t.replaced_by,
            "consider": list(t.consider), "retired": False,
            "depth": view.depth.get(t.id) if live else None,
            "ic": round(view.ic[t.id], 6) if live else None,
            "annotation_count": view.annotation_count.get(t.id) if live else None,
            "branches": view.branches(t.id) if live else [],
            "is_leaf": view.is_leaf(t.id) if live else None,
            "release": data.release.version,
        })
    return out


def disease_props(data: SourceData) -> dict[str, dict[str, Any]]:
    out = {d["id"]: clean({"id": d["id"], "name": d["name"], "source": d["source"],
                           "genes": data.disease_genes.get(d["id"])}) for d in data.diseases}
    if data.pack is not None:
        findings, _ = pack_rows(data.pack)
        for f in findings:
            out[f["id"]] = clean({k: f.get(k) for k in Q.DISEASE_KEYS})
    return out


def _annotation_props(edge: FoldedEdge) -> dict[str, Any]:
    """Empty lists and false flags are left off annotation edges: 271k edges, and every property costs."""
    return clean({k: v for k, v in edge.props().items() if v not in (None, [], False)})


def annotation_props(data: SourceData, relation: str) -> dict[tuple[str, str], dict[str, Any]]:
    out = {(e.disease, e.phenotype): _annotation_props(e) for e in data.edges if e.relation == relation}
    if data.pack is not None:
        _, links = pack_rows(data.pack)
        for x in links:
            if x["relation"] == relation:
                out[(x["disease"], x["phenotype"])] = clean({
                    "aspect": "P", "source_rows": 1, "evidence": [x["evidence"]], "rationale": x["rationale"],
                    "frequency": x["frequency"]})
    return out


def structural_pairs(data: SourceData, relation: str) -> dict[tuple[str, str], dict[str, Any]]:
    if relation == "IS_A":
        pairs = [(t.id, p) for t in data.terms for p in t.parents]
    elif relation == "REPLACED_BY":
        pairs = [(t.id, t.replaced_by) for t in data.terms if t.replaced_by]
    else:
        pairs = [(t.id, c) for t in data.terms for c in t.consider]
    return {pair: {"content_hash": None} for pair in pairs}


def write_graph(graph: Graph, data: SourceData, *, progress: bool = True) -> BuildReport:
    """Bring the graph in line with the parsed sources, writing only what differs."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
    report = BuildReport(stamp=stamp, release=data.release.version)
    sources = list(HPOA_SOURCES) + ([PACK_SOURCE] if data.pack is not None else [])
    lap = StageTimer(report.timings).lap

    migrate(graph)
    lap("migrate")
    # Phenotypes: terms gone from the release are deleted, or retired when evidence points at them.
    existing = {i: props for i, props in graph.read(Q.READ_PHENOTYPES)[0]["rows"]}
    diff = diff_items(existing, phenotype_props(data), ("id",), Q.PHENOTYPE_KEYS)
    gone, diff.delete = diff.delete, []
    apply(graph, "phenotypes", diff, Q.CREATE_PHENOTYPES, Q.UPDATE_PHENOTYPES, None, progress=progress)
    if gone:
        graph.write_batches(Q.DELETE_PHENOTYPES, gone, BATCH)
        graph.write_batches(Q.RETIRE_PHENOTYPES, gone, BATCH)  # those that survived the delete
    report.changes["phenotypes"] = {**diff.summary(), "deleted": len(gone)}
    lap("phenotypes")
    for relation in Q.STRUCTURAL_EDGES:
        existing = {(a, b): None for a, b in graph.read(Q.READ_STRUCTURAL[relation])[0]["rows"]}
        diff = diff_items(existing, structural_pairs(data, relation), ("source", "target"), ())
        apply(graph, relation.lower(), diff, Q.CREATE_STRUCTURAL[relation], None, Q.DELETE_STRUCTURAL[relation],
              progress=progress)
        report.changes[relation] = diff.summary()
    lap("structure")
    existing = {i: props for i, props in graph.read(Q.READ_DISEASES, sources=sources)[0]["rows"]}
    diff = diff_items(existing, disease_props(data), ("id",), Q.DISEASE_KEYS)
    apply(graph, "diseases", diff, Q.CREATE_DISEASES, Q.UPDATE_DISEASES, Q.DELETE_DISEASES, progress=progress)
    report.changes["diseases"] = diff.summary()
    lap("diseases")
    for relation in Q.ANNOTATION_EDGES:
        existing = {(a, b): props for a, b, props in graph.read(Q.READ_ANNOTATIONS[relation],
                                                                  sources=sources)[0]["rows"]}
        diff = diff_items(existing, annotation_props(data, relation), ("source", "target"), Q.ANNOTATION_KEYS)
        apply(graph, relation.lower(), diff, Q.CREATE_ANNOTATIONS[relation], Q.UPDATE_ANNOTATIONS[relation],
              Q.DELETE_ANNOTATIONS[relation], progress=progress)
        report.changes[relation] = diff.summary()
        lap(relation.lower())
    ensure_search_indexes(graph)
    lap("indexes")
    report.counts = counts(graph)
    write_provenance(graph, data, report)
    return report


def ensure_search_indexes(graph: Graph) -> None:
    graph.dialect.ensure_fulltext_index(graph.driver, graph.database, "Phenotype", "name")
    graph.dialect.ensure_fulltext_index(graph.driver, graph.database, "Disease", "name")


def counts(graph: Graph) -> dict[str, int]:
    out = {k: int(graph.read(q)[0]["n"]) for k, q in Q.COUNT_NODES.items()}
    out.update({k: int(graph.read(q)[0]["n"]) for k, q in Q.COUNT_EDGES.items()})
    return out


def write_provenance(graph: Graph, data: SourceData, report: BuildReport) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    key = f"HPO@{data.release.version}"
    graph.write(Q.UPSERT_RELEASE, key=key, props={
        "name": data.release.name, "version": data.release.version, "data_version": data.release.data_version,
        "license": data.release.license, "source_path": data.release.source_path,
        "source_sha256": data.release.source_sha256, "annotations_version": data.header.version,
        "annotations_path": data.hpoa_path, "annotations_sha256": data.hpoa_sha256,
        "genes_path": data.genes_path, "genes_sha256": data.genes_sha256, "loaded_at": now,
        "pack_version": data.pack.version if data.pack else None,
    })
    graph.write(Q.SET_BUILD_META, props={
        "stamp": report.stamp, "release_key": key, "built_at": now, **{f"count_{k}": v for k, v in
                                                                      report.counts.items()},
    })


def build(graph: Graph, obo: Path | None = None, hpoa: Path | None = None, pack: Path | None = None,
          *, progress: bool = True, include_pack: bool = True, genes: Path | None = None) -> BuildReport:
    started = time.perf_counter()
    data = load_sources(obo, hpoa, pack, include_pack, genes)
    parsed = time.perf_counter()
    report = write_graph(graph, data, progress=progress)
    report.timings = {"parse": round(parsed - started, 3), **report.timings,
                      "total": round(time.perf_counter() - started, 3)}
    return report


def build_meta(graph: Graph) -> dict[str, Any] | None:
    rows = graph.read(Q.GET_BUILD_META)
    return rows[0]["meta"] if rows else None


def current_release(graph: Graph) -> dict[str, Any] | None:
    rows = graph.read(Q.CURRENT_RELEASE)
    return rows[0]["release"] if rows else None


def is_empty(graph: Graph) -> bool:
    return int(graph.read(Q.COUNT_PHENOTYPES_ANY)[0]["n"]) == 0
