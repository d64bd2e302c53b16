"""Phenotype search without torch: a lexical index, a semantic (vector) index and their fusion.

Lexical (:class:`LexicalIndex`, built from a snapshot in ~1 s for the full HPO)
    Every live term contributes its **name** and **synonyms** ("surfaces"); its **id** and **alternative ids**
    are looked up exactly, obsolete ids redirect to their replacement (field ``replaced_id``). Text is reduced
    to word keys with :func:`kg.text.linker.normalise_token` (case, accents, British spelling, plurals), hyphens and
    other punctuation split words, and a small stop-word list is dropped. Then, best first:

    1. an exact id / alt id / replaced id (``HP:0001250``, ``hp_0001250``, ``0001250``);
    2. an exact name or synonym after normalisation ("Seizures", "oedema of the lungs" → ...);
    3. token overlap: an IDF-weighted Dice coefficient between the query's word keys and each surface's
       (1.0 for the same words in any order), with **prefix matching** of the last query word for type-ahead
       ("pneu" → pneumonia, pneumothorax; a completion counts 0.9). Definitions are searched too, with a
       lower ceiling (``0.5 × coverage``), so a name or synonym hit ranks above a definition hit.

    Short abbreviations ("ASD", "ALL") count fully only when the query has them in the same case.

Semantic (:class:`SemanticIndex`)
    Unit vectors of every name and synonym (computed at build time by ``phenokg embed``, see
    :mod:`kg.repo.embeddings`), one float32 matrix; a query vector (computed by the caller: kg never imports
    torch) is scored against all rows with one matrix product (~42.5k × 384: a few ms), and each term takes
    the best of its rows.

Fusion (:class:`Searcher`)
    ``hybrid`` = a linear fusion of the semantic cosine, the lexical score and an exact-match bonus (the same
    model the normaliser calibrates; :class:`FusionModel`), or reciprocal-rank fusion (``fusion="rrf"``).
    Exact id and exact name/synonym matches are pinned first in every mode that has them.

Every :class:`Hit` says which field matched (``id``, ``alt_id``, ``replaced_id``, ``name``, ``synonym``,
``definition``), the matched text, and whether the hit came from an exact, lexical or semantic match.
"""

from __future__ import annotations

from kg.analysis.search.fusion import FusionModel, Searcher, TermScores
from kg.analysis.search.keys import FIELDS, Hit, TermLike, content_tokens, parse_id, word_keys
from kg.analysis.search.lexical import LexicalIndex
from kg.analysis.search.semantic import SemanticIndex

__all__ = [
    "FIELDS",
    "FusionModel",
    "Hit",
    "LexicalIndex",
    "Searcher",
    "SemanticIndex",
    "TermLike",
    "TermScores",
    "content_tokens",
    "parse_id",
    "word_keys",
]
