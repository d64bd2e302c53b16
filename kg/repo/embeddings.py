"""Phenotype embeddings in the graph: written by ``phenokg kg embed`` after a build, read by search (no torch).

Graph model (every live ``Phenotype``; obsolete terms carry none)::

    (:Phenotype {…, emb: [float × dim],          name vector (list property): the DB vector index is on it
                     emb_labels: "base64…",      name + every synonym, float16 little-endian rows, in the
                                                 order [name, *synonyms]; what search loads (a list property
                                                 of 42.5k × 384 doubles takes ~20× longer over Bolt)
                     emb_key: "16 hex"})         sha1(encoder fingerprint, name, synonyms): stale when either
                                                 changes, so only changed terms are re-embedded
    (:EmbeddingSet {key: 'phenotype', encoder, encoder_path, encoder_sha256, fingerprint, quantized, dim,
                    dtype: 'float16', terms, strings, stamp, computed_at, seconds, strings_per_s, vector_index})

A build that changes a term replaces its property map (``SET n = r.props``), which drops these properties;
a new term has none. ``embed_graph`` then embeds exactly the terms whose ``emb_key`` is missing or differs
(all of them when the encoder changed) and writes a new ``stamp``; :class:`EmbeddingCache` reloads the
in-memory :class:`kg.analysis.search.SemanticIndex` when the stamp or the build changes.

The text encoder itself lives in ``models`` (torch): callers pass an ``encode`` function and the encoder's
identity (:class:`EncoderMeta`). Every statement below is parameterised; the only DDL (the vector index)
goes through :mod:`kg.store.dialect`.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, LiteralString, Protocol

import numpy as np

from kg.analysis.search import SemanticIndex, TermLike
from kg.store.graph import Graph
from kg.timing import StageTimer

log = logging.getLogger(__name__)

__all__ = [
    "EMBEDDING_SET_KEY",
    "EmbedReport",
    "EmbeddingCache",
    "EncodeFn",
    "EncoderMeta",
    "embed_graph",
    "embedding_meta",
    "load_semantic_index",
    "stale_terms",
    "text_key",
]

EMBEDDING_SET_KEY: Final = "phenotype"
LABEL: Final = "Phenotype"
VECTOR_PROPERTY: Final = "emb"
STORE_DTYPE: Final = "<f2"  # float16 little-endian
WRITE_BATCH: Final = 250

# ---- Cypher (parameterised; phenotype embeddings only) -------------------------------------------------
EMB_READ_TERMS: Final[LiteralString] = """
MATCH (p:Phenotype) WHERE p.obsolete = false
RETURN collect([p.id, p.name, p.synonyms, p.emb_key]) AS rows
"""
EMB_WRITE: Final[LiteralString] = """
UNWIND $rows AS r
MATCH (p:Phenotype {id: r.id})
SET p.emb = r.emb, p.emb_labels = r.labels, p.emb_key = r.key
"""
EMB_WRITE_NO_VECTOR: Final[LiteralString] = """
UNWIND $rows AS r
MATCH (p:Phenotype {id: r.id})
SET p.emb_labels = r.labels, p.emb_key = r.key
"""
EMB_CLEAR_OBSOLETE: Final[LiteralString] = """
MATCH (p:Phenotype) WHERE p.obsolete = true AND p.emb_key IS NOT NULL
REMOVE p.emb, p.emb_labels, p.emb_key
"""
EMB_LOAD: Final[LiteralString] = """
MATCH (p:Phenotype) WHERE p.obsolete = false AND p.emb_labels IS NOT NULL
RETURN collect([p.id, p.emb_key, p.emb_labels]) AS rows
"""
EMB_META_GET: Final[LiteralString] = "MATCH (m:EmbeddingSet {key: $key}) RETURN m {.*} AS meta"
EMB_META_SET: Final[LiteralString] = "MERGE (m:EmbeddingSet {key: $key}) SET m += $props"
EMB_STAMP: Final[LiteralString] = "MATCH (m:EmbeddingSet {key: $key}) RETURN m.stamp AS stamp"
EMB_VECTOR_QUERY: Final[LiteralString] = """
CALL db.index.vector.queryNodes($index, $k, $vector) YIELD node, score
RETURN node.id AS id, score
"""


class EncodeFn(Protocol):
    """Texts → unit vectors ``[len(texts), dim]`` (float32); ``progress`` shows a bar on stderr."""

    def __call__(self, texts: Sequence[str], progress: bool) -> np.ndarray: ...


@dataclass(frozen=True)
class EncoderMeta:
    """Identity of the encoder that made the vectors (see :func:`models.embeddings.encoder_info`)."""

    name: str
    path: str
    sha256: str
    fingerprint: str
    quantized: bool = False


@dataclass
class EmbedReport:
    encoder: str
    fingerprint: str
    terms: int = 0  # live terms
    embedded_terms: int = 0  # (re-)embedded this run
    embedded_strings: int = 0
    up_to_date: bool = False
    dim: int = 0
    stamp: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    backend: str | None = None  # what computed the vectors this run (onnx-fp32, onnx-int8, torch); None: nothing

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def text_key(fingerprint: str, name: str, synonyms: Sequence[str]) -> str:
    """The ``emb_key`` of a term: changes with the encoder, the name or any synonym."""
    payload = "\x1f".join([fingerprint, name, *synonyms])
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()[:16]


def encode_labels(vectors: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(vectors, dtype=STORE_DTYPE).tobytes()).decode("ascii")


def decode_labels(blob: str, dim: int) -> np.ndarray:
    data = np.frombuffer(base64.b64decode(blob), dtype=STORE_DTYPE)
    return data.reshape(-1, dim).astype(np.float32)


def embedding_meta(graph: Graph) -> dict[str, Any] | None:
    rows = graph.read(EMB_META_GET, key=EMBEDDING_SET_KEY)
    return dict(rows[0]["meta"]) if rows else None


def stale_terms(graph: Graph, fingerprint: str) -> tuple[int, int]:
    """(live terms, terms whose vectors are missing or were made from other texts or another encoder)."""
    rows = graph.read(EMB_READ_TERMS)[0]["rows"]
    stale = sum(1 for tid, name, syns, key in rows if key != text_key(fingerprint, name, syns or ()))
    return len(rows), stale


def _drop_vector_index(graph: Graph) -> None:
    """Drop the phenotype vector index (its dimension is fixed at creation). Belongs in kg.store.dialect."""
    name = graph.dialect.vector_index_name(LABEL, VECTOR_PROPERTY)
    try:
        if graph.dialect.name == "arcadedb" and graph.server is not None:
            graph.server.sql(f"DROP INDEX `{name}` IF EXISTS")
        else:
            graph.driver.execute_query(f"DROP INDEX {name} IF EXISTS", database_=graph.database)
    except Exception as exc:  # an index that is not there, or a server that words it differently
        log.warning("could not drop vector index %s: %s", name, exc)


def embed_graph(graph: Graph, encode: EncodeFn, encoder: EncoderMeta, *, force: bool = False,
                progress: bool = True, vector_index: bool = True, write_batch: int = WRITE_BATCH) -> EmbedReport:
    """Embed the names and synonyms of every live phenotype whose vectors are missing or stale.

    ``force`` re-embeds everything. ``vector_index`` writes the name vector as a list property and keeps the
    database's vector index on it (Cypher users: ``db.index.vector.queryNodes``); phenokg's own search reads
    ``emb_labels`` into memory instead (faster: see docs/benchmarks-search.md).
    """
    report = EmbedReport(encoder=encoder.name, fingerprint=encoder.fingerprint)
    lap = StageTimer(report.timings).lap

    before = embedding_meta(graph)
    rows = graph.read(EMB_READ_TERMS)[0]["rows"]
    report.terms = len(rows)
    todo: list[tuple[str, str, list[str], str]] = []
    for tid, name, syns, key in rows:
        labels = [name, *(syns or ())]
        expected = text_key(encoder.fingerprint, name, syns or ())
        if force or key != expected:
            todo.append((tid, name, labels, expected))
    lap("read")
    same_encoder = before is not None and before.get("fingerprint") == encoder.fingerprint
    if not todo and same_encoder:
        report.up_to_date = True
        report.dim = int(before.get("dim") or 0) if before else 0
        report.stamp = before.get("stamp") if before else None
        if vector_index and report.dim:
            graph.dialect.ensure_vector_index(graph.driver, graph.database, LABEL, VECTOR_PROPERTY, report.dim)
        return report
    texts = [s for _, _, labels, _ in todo for s in labels]
    started = time.perf_counter()
    vectors = encode(texts, progress) if texts else np.zeros((0, int((before or {}).get("dim") or 0)), np.float32)
    encode_seconds = time.perf_counter() - started
    lap("encode")
    dim = int(vectors.shape[1]) if len(texts) else int((before or {}).get("dim") or 0)
    if len(vectors) != len(texts):
        raise ValueError(f"the encoder returned {len(vectors)} vectors for {len(texts)} texts")
    report.dim = dim
    report.embedded_terms = len(todo)
    report.embedded_strings = len(texts)
    if vector_index and before is not None and int(before.get("dim") or 0) not in (0, dim):
        _drop_vector_index(graph)
    out_rows: list[dict[str, Any]] = []
    pos = 0
    for tid, _, labels, key in todo:
        block = vectors[pos:pos + len(labels)]
        pos += len(labels)
        row: dict[str, Any] = {"id": tid, "labels": encode_labels(block), "key": key}
        if vector_index:
            row["emb"] = [float(x) for x in block[0]]
        out_rows.append(row)
    bar: Any = None
    if progress and out_rows:
        from tqdm import tqdm

        bar = tqdm(total=len(out_rows), desc="writing vectors", unit="term", dynamic_ncols=True, mininterval=0.5)
    try:
        graph.write_batches(EMB_WRITE if vector_index else EMB_WRITE_NO_VECTOR, out_rows, write_batch, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    graph.write(EMB_CLEAR_OBSOLETE)
    lap("write")
    if vector_index and dim:
        graph.dialect.ensure_vector_index(graph.driver, graph.database, LABEL, VECTOR_PROPERTY, dim)
        lap("vector_index")
    report.stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
    n_strings = sum(1 for _ in texts)
    graph.write(EMB_META_SET, key=EMBEDDING_SET_KEY, props={
        "encoder": encoder.name, "encoder_path": encoder.path, "encoder_sha256": encoder.sha256,
        "fingerprint": encoder.fingerprint, "quantized": encoder.quantized, "dim": dim, "dtype": "float16",
        "terms": report.terms, "strings": _count_strings(rows), "stamp": report.stamp,
        "computed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "last_embedded_strings": n_strings, "seconds": round(encode_seconds, 2),
        "strings_per_s": round(n_strings / encode_seconds, 1) if encode_seconds > 0 and n_strings else None,
        "vector_index": graph.dialect.vector_index_name(LABEL, VECTOR_PROPERTY) if vector_index else None,
    })
    return report


def _count_strings(rows: Sequence[Sequence[Any]]) -> int:
    return sum(1 + len(r[2] or ()) for r in rows)


def load_semantic_index(graph: Graph, terms: Mapping[str, TermLike]) -> SemanticIndex | None:
    """The in-memory vectors of every live term whose stored vectors match its current texts.

    None when no embeddings were ever computed. Terms without current vectors are left out (counted in
    ``missing``): run ``phenokg kg embed``.
    """
    meta = embedding_meta(graph)
    if not meta or not meta.get("fingerprint") or not meta.get("dim"):
        return None
    fingerprint, dim = str(meta["fingerprint"]), int(meta["dim"])
    rows = graph.read(EMB_LOAD)[0]["rows"]
    loaded: list[tuple[str, list[str], np.ndarray]] = []
    for tid, key, blob in rows:
        term = terms.get(tid)
        if term is None or term.obsolete or not blob:
            continue
        labels = [term.name, *term.synonyms]
        if key != text_key(fingerprint, term.name, term.synonyms):
            continue
        vecs = decode_labels(blob, dim)
        if len(vecs) != len(labels):
            continue
        loaded.append((tid, labels, vecs))
    live = sum(1 for t in terms.values() if not t.obsolete)
    return SemanticIndex.from_rows(loaded, encoder=str(meta.get("encoder") or ""), fingerprint=fingerprint,
                                   stamp=meta.get("stamp"), missing=live - len(loaded))


class _SnapshotSource(Protocol):
    graph: Graph

    def get(self) -> Any: ...


class EmbeddingCache:
    """The :class:`SemanticIndex` for the current snapshot and embedding stamp (checked every few seconds).

    ``cache`` is a :class:`kg.repo.snapshots.SnapshotCache`; the index is reloaded when its snapshot changes
    (a build) or the ``EmbeddingSet`` stamp changes (``phenokg kg embed``).
    """

    def __init__(self, cache: _SnapshotSource, check_every: float = 2.0) -> None:
        self.cache = cache
        self.check_every = check_every
        self._lock = threading.Lock()
        self._key: tuple[int, str | None] | None = None
        self._index: SemanticIndex | None = None
        self._snapshot: Any = None  # kept alive: the cache key uses its id
        self._checked = 0.0

    def get(self) -> SemanticIndex | None:
        snapshot = self.cache.get()
        if self._key is not None and self._key[0] == id(snapshot) and \
                time.monotonic() - self._checked < self.check_every:
            return self._index
        with self._lock:
            if self._key is not None and self._key[0] == id(snapshot) and \
                    time.monotonic() - self._checked < self.check_every:
                return self._index
            rows = self.cache.graph.read(EMB_STAMP, key=EMBEDDING_SET_KEY)
            stamp = rows[0]["stamp"] if rows else None
            key = (id(snapshot), stamp)
            if key != self._key:
                started = time.perf_counter()
                self._index = load_semantic_index(self.cache.graph, snapshot.terms) if stamp else None
                self._snapshot = snapshot
                self._key = key
                if self._index is not None:
                    log.info("loaded %d phenotype vectors (%d terms) in %.2f s", len(self._index.row_text),
                             len(self._index.term_ids), time.perf_counter() - started)
            self._checked = time.monotonic()
            return self._index

    def invalidate(self) -> None:
        self._checked = 0.0


def vector_index_query(graph: Graph, vector: Sequence[float], k: int = 10) -> list[dict[str, Any]]:
    """Nearest phenotype names through the database's own vector index (for comparison and Cypher users)."""
    name = graph.dialect.vector_index_name(LABEL, VECTOR_PROPERTY)
    return graph.read(EMB_VECTOR_QUERY, index=name, k=int(k), vector=[float(x) for x in vector])
