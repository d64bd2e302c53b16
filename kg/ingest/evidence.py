"""Image–caption evidence import: store images by content, link captions to phenotypes.

``phenokg evidence import FILE`` runs :func:`import_evidence`:

1. :func:`~kg.ingest.evidence_rows.read_evidence_rows` yields one :class:`~kg.ingest.evidence_rows.EvidenceRow` per
   record, or a :class:`~kg.ingest.evidence_rows.RowError` with the record's physical line number; problems with the
   whole file raise :class:`~kg.errors.SourceFormatError` before anything is written (see
   :mod:`kg.ingest.evidence_rows`).
2. Each row's image (local path relative to the input file, ``file://`` URI, or ``http(s)://`` URL) is read,
   checked with Pillow and put into the :class:`~kg.store.blobs.BlobStore` under its sha256 (see
   :mod:`kg.store.blobs`); the graph only holds the hash and the URI, never the bytes.
3. The evidence id is a hash of (image sha256, caption, source): the same image with another caption is
   another ``Evidence`` node.  Existing nodes are never modified (the first import wins).
4. The caption goes through the :class:`~kg.text.linker.Linker`: asserted mentions become
   ``(:Evidence)-[:SHOWS {matched, field, start, end, uncertain}]->(:Phenotype)`` (hedged ones with
   ``uncertain: true``), negated ones ``(:Evidence)-[:RULES_OUT {matched, field, start, end, uncertain}]->``.
   ``start``/``end`` are character offsets in the caption, ``field`` says whether the lexicon *name* or a
   *synonym* matched.  Only links the graph does not hold yet are written, so re-importing a file writes
   nothing at all, while an import interrupted between nodes and links is completed by running it again.

The row reader and the image/blob-store names are re-exported here, so ``from kg.ingest.evidence import X`` keeps
working for all of them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tqdm import tqdm

from kg.ids import PHENOTYPIC_ABNORMALITY
from kg.ingest.evidence_rows import ALIASES, FIELDS, FORMATS, EvidenceRow, RowError, read_evidence_rows
from kg.store import queries as Q
from kg.store.blobs import (
    HTTP_TIMEOUT_S,
    IMAGE_FORMATS,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_IMAGE_SIDE,
    BlobStore,
    ImageError,
    ImageInfo,
    StoredImage,
    fetch_url,
    inspect_image,
    load_image,
)
from kg.store.graph import Graph
from kg.text.linker import Linker, Mention, TermLabels

__all__ = [
    "ALIASES",
    "FIELDS",
    "FORMATS",
    "HTTP_TIMEOUT_S",
    "IMAGE_FORMATS",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_IMAGE_SIDE",
    "BlobStore",
    "EvidenceRow",
    "ImageError",
    "ImageInfo",
    "ImportReport",
    "RowError",
    "StoredImage",
    "evidence_id",
    "fetch_url",
    "import_evidence",
    "inspect_image",
    "linker_from_graph",
    "load_image",
    "read_evidence_rows",
]

_BATCH: Final = 1000
_ID_CHUNK: Final = 1000


# ---------------------------------------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import did. Every field but ``errors`` is a plain number or string (JSON-ready)."""

    file: str = ""
    rows: int = 0  # records read, good or bad
    created: int = 0  # new Evidence nodes
    unchanged: int = 0  # Evidence nodes that were already in the graph
    duplicates: int = 0  # records repeating an earlier record of the same file
    links_shows: int = 0  # new SHOWS edges
    links_rules_out: int = 0  # new RULES_OUT edges
    images_stored: int = 0  # blobs newly written to the store
    errors: list[RowError] = field(default_factory=list)


def evidence_id(sha256: str, caption: str, source: str) -> str:
    """Deterministic id of one image–caption pair: ``ev:`` + 32 hex of sha256 over the three parts."""
    canonical = json.dumps([sha256, caption, source], ensure_ascii=False, separators=(",", ":"))
    return "ev:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def linker_from_graph(graph: Graph, *, branch: str = PHENOTYPIC_ABNORMALITY) -> Linker:
    """A linker over the live phenotypes of ``branch`` (names and synonyms), as the graph holds them."""
    rows = graph.read(Q.TERM_LABELS, branch=branch)
    return Linker(TermLabels(r["id"], r["name"] or "", tuple(r["synonyms"] or ())) for r in rows)


def _link_row(evidence: str, m: Mention) -> dict[str, Any]:
    return {"evidence": evidence, "phenotype": m.id, "matched": m.matched, "field": m.field,
            "start": m.start, "end": m.end, "uncertain": m.uncertain}


def _chunks(items: list[str], size: int = _ID_CHUNK) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def import_evidence(graph: Graph, path: Path, linker: Linker, store: BlobStore, *,
                    progress: bool = True) -> ImportReport:
    """Import an evidence file; bad records are reported in ``errors`` and skipped.

    Raises :class:`SourceFormatError` (before writing anything) when the file as a whole cannot be read.
    """
    path = Path(path)
    report = ImportReport(file=str(path))
    base_dir = path.resolve().parent
    nodes: dict[str, dict[str, Any]] = {}  # evidence id -> properties
    first_line: dict[str, int] = {}
    links: dict[str, list[dict[str, Any]]] = {"SHOWS": [], "RULES_OUT": []}
    images: dict[str, tuple[StoredImage, str]] = {}  # image reference -> (stored image, canonical URI)
    with tqdm(desc="evidence", unit="row", disable=not progress, dynamic_ncols=True, mininterval=0.5) as bar:
        for item in read_evidence_rows(path):
            report.rows += 1
            bar.update(1)
            if isinstance(item, RowError):
                report.errors.append(item)
                continue
            cached = images.get(item.image)
            if cached is None:
                try:
                    data, uri = load_image(item.image, base_dir)
                    stored = store.put_image(data)
                except ImageError as exc:
                    report.errors.append(RowError(str(path), item.line, str(exc)))
                    continue
                report.images_stored += stored.written
                cached = images[item.image] = (stored, uri)
            stored, uri = cached
            ident = evidence_id(stored.sha256, item.caption, item.source)
            if ident in nodes:
                if nodes[ident]["license"] != item.license:
                    report.errors.append(RowError(
                        str(path), item.line, f"same image, caption and source as line {first_line[ident]} "
                                              f"but another license ({item.license!r})"))
                else:
                    report.duplicates += 1
                continue
            info = stored.info
            props: dict[str, Any] = {
                "id": ident, "image_uri": uri, "caption": item.caption, "source": item.source,
                "license": item.license, "sha256": stored.sha256, "width": info.width, "height": info.height,
                "image_format": info.format, "image_mode": info.mode, "image_bytes": info.size,
            }
            if item.extra:
                props["extra"] = json.dumps(item.extra, sort_keys=True, ensure_ascii=False, default=str)
            nodes[ident] = props
            first_line[ident] = item.line
            for mention in linker.annotate(item.caption):
                links["RULES_OUT" if mention.negated else "SHOWS"].append(_link_row(ident, mention))
    _write(graph, report, nodes, links)
    return report


def _write(graph: Graph, report: ImportReport, nodes: dict[str, dict[str, Any]],
           links: dict[str, list[dict[str, Any]]]) -> None:
    ids = list(nodes)
    present: set[str] = set()
    for chunk in _chunks(ids):
        present.update(graph.read(Q.EVIDENCE_IDS_PRESENT, ids=chunk)[0]["ids"])
    new: list[Mapping[str, Any]] = [{"id": i, "props": nodes[i]} for i in ids if i not in present]
    report.created = len(new)
    report.unchanged = len(ids) - len(new)
    if new:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        graph.write_batches(Q.UPSERT_EVIDENCE, new, _BATCH, now=now)
    # Links of new and existing evidence alike, minus those the graph holds: a re-import writes nothing,
    # and an import interrupted after its nodes is completed by the next run.
    written = write_missing_links(graph, links.items(), _BATCH)
    report.links_shows, report.links_rules_out = written.get("SHOWS", 0), written.get("RULES_OUT", 0)


def write_missing_links(graph: Graph, links: Iterable[tuple[str, Sequence[Mapping[str, Any]]]], batch: int
                        ) -> dict[str, int]:
    """Write the ``SHOWS`` / ``RULES_OUT`` rows (``(relation, rows)`` pairs) the graph does not hold yet, keyed
    by evidence, phenotype and span; returns how many were written per relation."""
    written: dict[str, int] = {}
    for relation, rows in links:
        have: set[tuple[str, str, int, int]] = set()
        for chunk in _chunks(sorted({r["evidence"] for r in rows})):
            have.update(tuple(k) for k in graph.read(Q.EVIDENCE_LINK_KEYS[relation], ids=chunk)[0]["rows"])
        wanted: list[Mapping[str, Any]] = [
            r for r in rows if (r["evidence"], r["phenotype"], r["start"], r["end"]) not in have]
        if wanted:
            graph.write_batches(Q.LINK_SHOWS if relation == "SHOWS" else Q.LINK_RULES_OUT, wanted, batch)
        written[relation] = len(wanted)
    return written

