"""Batch normalisation of free-text phenotype mentions to ranked HPO ids with calibrated scores (no torch).

For each mention (after :func:`prepare_mention`: whitespace collapsed, quotes and end punctuation stripped,
a trailing "(ABBR)" dropped), every live term gets

* ``exact``   — the mention equals its name or a synonym after normalisation (case, accents, hyphens,
  possessives, plurals and British spellings folded by :func:`kg.text.linker.normalise_token`; stop words such
  as "of the" ignored). Short abbreviations ("ASD", "ALL") must match in case;
* ``lexical`` — IDF-weighted Dice overlap of word keys with its best name/synonym (word order free);
* ``semantic`` — the best cosine between the mention's vector and its name/synonym vectors (computed at
  build time, see :mod:`kg.repo.embeddings`; the caller embeds the mentions, kg stays torch-free).

They are fused linearly (:class:`kg.analysis.search.FusionModel`) and turned into a probability with a logistic
calibration. Exact matches are ranked first. Without vectors the normaliser still works, lexically, with
its own calibration.

**Where the constants come from.** :data:`DEFAULT_MODEL` was fitted on *HPO synonym hold-out queries*
(``benchmarks/normalization_bench.py --tune``): EXACT synonyms of phenotypic-abnormality terms are used as
queries against an index from which that very synonym (its surface and its vector) is removed, so the
right answer has to be found through the name and the other synonyms. No evaluation corpus (GSC+) was used
to fit them; GSC+ dev is only reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Final

import numpy as np

from kg.analysis.search import FusionModel, Hit, Searcher
from kg.errors import ValidationError

__all__ = ["DEFAULT_MODEL", "MAX_MENTIONS", "MAX_TOP_K", "Candidate", "Normalizer", "prepare_mention"]

MAX_MENTIONS: Final = 1000
MAX_TOP_K: Final = 50
MAX_MENTION_CHARS: Final = 1000

#: Fitted on HPO synonym hold-out queries (see the module docstring), not on GSC+.
DEFAULT_MODEL: Final = FusionModel()

_SPACE_RE: Final = re.compile(r"\s+")
_TRAILING_ABBR_RE: Final = re.compile(r"\s*[(\[]\s*[A-Za-z0-9][\w\-/ ]{0,11}[)\]]\s*$")
_EDGE_PUNCT: Final = " \t\"'`´‘’“”«».,;:!?*·•-–—"
_CHUNK: Final = 256


def prepare_mention(text: str) -> str:
    """The text that is matched and embedded: whitespace collapsed, quotes/end punctuation and a trailing
    parenthesised abbreviation ("Atrial septal defect (ASD)") removed; at most MAX_MENTION_CHARS characters."""
    text = _SPACE_RE.sub(" ", text or "").strip()[:MAX_MENTION_CHARS]
    stripped = _TRAILING_ABBR_RE.sub("", text)
    if stripped.strip(_EDGE_PUNCT):
        text = stripped
    text = text.strip(_EDGE_PUNCT)
    # balanced surrounding brackets: "(seizures)" -> "seizures"
    while len(text) > 2 and text[0] in "([{" and text[-1] in ")]}":
        text = text[1:-1].strip(_EDGE_PUNCT)
    return text


@dataclass(frozen=True)
class Candidate:
    """One ranked candidate for a mention."""

    id: str
    name: str
    score: float  # calibrated probability that this is the right term
    field: str  # name | synonym (| id, alt_id, replaced_id for an id mention)
    matched: str  # the name or synonym that matched
    source: str  # exact | lexical | semantic
    lexical: float | None = None
    semantic: float | None = None

    @classmethod
    def from_hit(cls, hit: Hit) -> Candidate:
        return cls(hit.id, hit.name, hit.score, hit.field, hit.matched, hit.source, hit.lexical, hit.semantic)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class Normalizer:
    """Maps mentions to top-k terms using a :class:`kg.analysis.search.Searcher` (lexical + optional semantic)."""

    def __init__(self, searcher: Searcher) -> None:
        self.searcher = searcher

    @property
    def semantic(self) -> bool:
        return self.searcher.has_semantic

    def normalize(self, mentions: Sequence[str], vectors: np.ndarray | None = None, *, top_k: int = 5,
                  allowed: Iterable[str] | None = None) -> list[list[Candidate]]:
        """Top-``top_k`` candidates per mention, in input order; an empty mention gets ``[]``.

        ``vectors``: one row per mention (embeddings of :func:`prepare_mention` of each), or None for
        lexical-only normalisation. ``allowed``: restrict to these term ids (e.g. one branch).
        """
        if not 1 <= top_k <= MAX_TOP_K:
            raise ValidationError(f"top_k must be between 1 and {MAX_TOP_K}")
        if vectors is not None and len(vectors) != len(mentions):
            raise ValueError(f"{len(mentions)} mentions but {len(vectors)} vectors")
        prepared = [prepare_mention(m) for m in mentions]
        allowed_ids = set(allowed) if allowed is not None else None
        sem = self.searcher.semantic_index if vectors is not None else None
        out: list[list[Candidate]] = []
        for start in range(0, len(prepared), _CHUNK):
            chunk = prepared[start:start + _CHUNK]
            rows = None
            if sem is not None and vectors is not None:
                rows = sem.row_scores(np.asarray(vectors[start:start + _CHUNK], dtype=np.float32))
            for i, text in enumerate(chunk):
                if not text:
                    out.append([])
                    continue
                hits = self._one(text, None if rows is None else rows[i], top_k, allowed_ids)
                out.append([Candidate.from_hit(h) for h in hits])
        return out

    def _one(self, text: str, row_scores: np.ndarray | None, top_k: int, allowed: set[str] | None) -> list[Hit]:
        s = self.searcher
        lex = s.lexical_index
        mask = lex.mask_for(allowed, include_obsolete=False)
        ts = s.term_scores(text, None, row_scores=row_scores)
        fused = s.fused(ts)
        shown = s.model.probability(fused, semantic=ts.semantic is not None, exact=ts.exact)
        has_any = (ts.lexical > 0) | ts.exact
        if ts.semantic is not None:
            has_any |= ts.semantic > -1
        ranked = np.where(mask & has_any, fused, -np.inf)
        return s.rank_terms(ranked, shown, ts, s.id_hits(text, ts, mask), top_k, pin_exact=True)
