"""Phenotype search state of one API process: the lexical index (per snapshot), the phenotype vectors (per
embedding stamp) and the query encoder (loaded once, on first use or at start-up; the one that made the stored
vectors: ``$PHENOKG_TEXT_ENCODER`` if set, else the directory the graph records, else the packaged MiniLM)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel

from kg.analysis.search import LexicalIndex, Searcher, SemanticIndex
from kg.repo.embeddings import EmbeddingCache, embedding_meta
from kg.repo.snapshots import SnapshotCache

if TYPE_CHECKING:
    from models.embeddings import TextEmbedder

log = logging.getLogger(__name__)

SEARCH_KEY = "search"


class SemanticState(BaseModel):
    available: bool
    encoder: str | None = None
    reason: str | None = None


class SearchService:
    """Per-app search state: lexical index (per snapshot), vectors (per embedding stamp), query encoder."""

    def __init__(self, cache: SnapshotCache, onnx_cache: Path | None = None) -> None:
        self.cache = cache
        self.onnx_cache = onnx_cache  # where ONNX exports of the query encoder are kept (None: PHENOKG_HOME's)
        self.vectors = EmbeddingCache(cache)
        self._lock = threading.Lock()
        self._encoder: TextEmbedder | None = None
        self._encoder_failure: tuple[str, str] | None = None  # (fingerprint wanted, reason)
        self._searchers: dict[tuple[int, int], Searcher] = {}

    def lexical(self) -> LexicalIndex:
        return self.cache.derived(SEARCH_KEY, LexicalIndex.from_snapshot)

    def semantic_index(self) -> tuple[SemanticIndex | None, str | None]:
        index = self.vectors.get()
        if index is None:
            return None, "no phenotype embeddings in the graph: run `phenokg kg embed`"
        if not index.term_ids:
            return None, "the phenotype embeddings are stale (the graph changed): run `phenokg kg embed`"
        return index, None

    def searcher(self, *, semantic: bool) -> tuple[Searcher, SemanticState]:
        lexical = self.lexical()
        index, reason = self.semantic_index() if semantic else (None, None)
        state = SemanticState(available=False, reason=reason)
        if index is not None:
            encoder, reason = self.encoder_for(index)
            if encoder is None:
                index = None
                state.reason = reason
            else:
                state = SemanticState(available=True, encoder=index.encoder)
                if index.missing:
                    state.reason = f"{index.missing} terms have no current vectors: run `phenokg kg embed`"
        key = (id(lexical), id(index))
        with self._lock:
            searcher = self._searchers.get(key)
            if searcher is None:
                # one lexical-only and one semantic searcher per index generation; drop older ones
                self._searchers = {k: v for k, v in self._searchers.items() if k[0] == key[0]}
                if len(self._searchers) >= 2:
                    self._searchers.clear()
                searcher = Searcher(lexical, index)
                self._searchers[key] = searcher
            return searcher, state

    def encoder_for(self, index: SemanticIndex) -> tuple[TextEmbedder | None, str | None]:
        """The query encoder matching ``index`` (loaded once); (None, reason) when it cannot be had."""
        encoder = self._encoder
        if encoder is not None and encoder.fingerprint == index.fingerprint:
            return encoder, None
        with self._lock:
            if self._encoder is not None and self._encoder.fingerprint == index.fingerprint:
                return self._encoder, None
            if self._encoder_failure is not None and self._encoder_failure[0] == index.fingerprint:
                return None, self._encoder_failure[1]
            try:
                previous, self._encoder = self._encoder, self._load_encoder(index)
                if previous is not None:  # re-embedded with another encoder: stop the old one's query worker
                    previous.close()
                self._encoder_failure = None
                return self._encoder, None
            except Exception as exc:  # a missing or different encoder must not break lexical search
                reason = f"semantic search unavailable: {exc}"
                log.warning(reason)
                self._encoder_failure = (index.fingerprint, reason)
                return None, reason

    def _load_encoder(self, index: SemanticIndex) -> TextEmbedder:
        from models.embeddings import ENCODER_ENV, TextEmbedder, encoder_info, resolve_encoder_path

        meta = embedding_meta(self.cache.graph) or {}
        quantized = bool(meta.get("quantized"))
        path = resolve_encoder_path(None)
        if path is None and meta.get("encoder_path") and Path(str(meta["encoder_path"])).is_dir():
            recorded = Path(str(meta["encoder_path"]))
            if encoder_info(recorded, quantized=quantized).fingerprint == index.fingerprint:
                path = recorded
        info = encoder_info(path, quantized=quantized)
        if info.fingerprint != index.fingerprint:
            raise RuntimeError(
                f"the phenotype vectors were made by {index.encoder or 'another encoder'} (fingerprint "
                f"{index.fingerprint}), this service's encoder is {info.name} ({info.fingerprint}); set "
                f"{ENCODER_ENV} to that encoder or re-embed with `phenokg kg embed`")
        log.info("loading text encoder %s for queries", info.name)
        return TextEmbedder.load(path, quantize=quantized, cache_dir=self.onnx_cache)

    def query_vectors(self, texts: list[str], index: SemanticIndex) -> np.ndarray:
        encoder, reason = self.encoder_for(index)
        if encoder is None:
            raise RuntimeError(reason or "no encoder")
        return encoder.encode_queries(texts)

    def warm(self) -> None:
        """Build the lexical index, load the phenotype vectors and the query encoder now (at start-up, in a
        background thread, so that the first search does not pay for them)."""
        self.lexical()
        index, _ = self.semantic_index()
        if index is not None:
            encoder, _ = self.encoder_for(index)
            if encoder is not None:
                encoder.encode_query("warm-up")
