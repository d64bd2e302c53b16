"""Phenotype search without torch: a lexical index, a semantic (vector) index and their fusion.

Lexical (:class:`LexicalIndex`, built from a snapshot in ~1 s for the full HPO)
    Every live term contributes its **name** and **synonyms** ("surfaces"); its **id** and **alternative ids**
    are looked up exactly, obsolete ids redirect to their replacement (field ``replaced_id``). Text is reduced
    to word keys with :func:`kg.linker.normalise_token` (case, accents, British spelling, plurals), hyphens and
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
    :mod:`kg.embedding_store`), one float32 matrix; a query vector (computed by the caller: kg never imports
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

import bisect
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

import numpy as np

from kg.linker import normalise_token

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

Field = Literal["id", "alt_id", "replaced_id", "name", "synonym", "definition"]
FIELDS: Final[tuple[str, ...]] = ("id", "alt_id", "replaced_id", "name", "synonym", "definition")
Source = Literal["exact", "lexical", "semantic"]

#: Function words dropped before matching ("abnormality of the heart" == "heart abnormality"). Negations
#: ("no", "not", "without", "absent") are content and stay.
STOPWORDS: Final[frozenset[str]] = frozenset(
    normalise_token(w) for w in ("a", "an", "the", "of", "in", "on", "at", "to", "for", "by", "from", "and",
                                 "or", "with", "is", "are", "was", "were", "be", "as", "into", "its", "their",
                                 # HPO's "Abnormal X morphology": the word adds nothing to "abnormal X"
                                 "morphology")
)
#: Lexical variants folded to one key (derivational variants in the spirit of the UMLS SPECIALIST lexicon):
#: organ adjectives to their noun ("renal" = "kidney", "patellar" = "patella"), pathology adjectives to their
#: noun ("hypoplastic" = "hypoplasia", "enlarged" = "enlargement"), and the literature's words for an
#: abnormality to the one HPO uses ("anomalies", "malformations", "manifestations" = "abnormal"). Ambiguous
#: adjectives ("cranial", "cervical", "ventricular", "neural", "plantar") are deliberately left out.
_VARIANT_WORDS: Final[dict[str, str]] = {
    # organs and body parts
    "renal": "kidney", "hepatic": "liver", "cardiac": "heart", "pulmonary": "lung", "cutaneous": "skin",
    "dermal": "skin", "ocular": "eye", "ophthalmic": "eye", "otic": "ear", "aural": "ear", "nasal": "nose",
    "oral": "mouth", "dental": "tooth", "labial": "lip", "lingual": "tongue", "gingival": "gingiva",
    "palatal": "palate", "facial": "face", "cerebral": "brain", "gastric": "stomach", "intestinal": "intestine",
    "colonic": "colon", "rectal": "rectum", "anal": "anus", "splenic": "spleen", "pancreatic": "pancreas",
    "ovarian": "ovary", "uterine": "uterus", "testicular": "testis", "penile": "penis", "vaginal": "vagina",
    "vulvar": "vulva", "mammary": "breast", "thoracic": "thorax", "abdominal": "abdomen", "pelvic": "pelvis",
    "spinal": "spine", "vertebral": "vertebra", "costal": "rib", "clavicular": "clavicle", "scapular": "scapula",
    "sternal": "sternum", "femoral": "femur", "tibial": "tibia", "fibular": "fibula", "humeral": "humerus",
    "ulnar": "ulna", "patellar": "patella", "phalangeal": "phalanx", "palmar": "palm", "mandibular": "mandible",
    "maxillary": "maxilla", "orbital": "orbit", "corneal": "cornea", "retinal": "retina", "scleral": "sclera",
    "conjunctival": "conjunctiva", "tracheal": "trachea", "bronchial": "bronchus", "laryngeal": "larynx",
    "pharyngeal": "pharynx", "esophageal": "esophagus", "duodenal": "duodenum", "arterial": "artery",
    "venous": "vein", "muscular": "muscle", "skeletal": "skeleton", "osseous": "bone", "articular": "joint",
    "axonal": "axon", "neuronal": "neuron", "cerebellar": "cerebellum", "hippocampal": "hippocampus",
    "atrial": "atrium", "aortic": "aorta", "septal": "septum", "umbilical": "umbilicus", "axillary": "axilla",
    "urethral": "urethra", "ureteral": "ureter", "auditory": "hearing", "digital": "digit",
    # pathology adjectives and participles
    "dysplastic": "dysplasia", "hypoplastic": "hypoplasia", "aplastic": "aplasia", "hyperplastic": "hyperplasia",
    "atrophic": "atrophy", "hypertrophic": "hypertrophy", "sclerotic": "sclerosis", "fibrotic": "fibrosis",
    "stenotic": "stenosis", "necrotic": "necrosis", "cystic": "cyst", "edematous": "edema",
    "hemorrhagic": "hemorrhage", "inflammatory": "inflammation", "inflamed": "inflammation",
    "ischemic": "ischemia", "neoplastic": "neoplasm", "calcified": "calcification", "dilated": "dilatation",
    "dilation": "dilatation", "enlarged": "enlargement", "thickened": "thickening", "absent": "absence",
    "deformed": "deformity", "dislocated": "dislocation", "fused": "fusion", "duplicated": "duplication",
    "elongated": "elongation", "shortened": "shortening", "widened": "widening", "narrowed": "narrowing",
    "delayed": "delay", "impaired": "impairment",
    # the literature's words for "abnormal"
    "abnormality": "abnormal", "abnormally": "abnormal", "anomaly": "abnormal", "anomalous": "abnormal",
    "malformation": "abnormal", "malformed": "abnormal", "manifestation": "abnormal",
}
VARIANTS: Final[dict[str, str]] = {normalise_token(k): normalise_token(v) for k, v in _VARIANT_WORDS.items()}
_WORD_RE: Final = re.compile(r"[^\W_]+")
_POSSESSIVE_RE: Final = re.compile(r"(?<=\w)['’]s\b")
_ID_RE: Final = re.compile(r"^\s*(?:hp)?\s*[:_ ]?\s*(\d{7})\s*$", re.IGNORECASE)
_OBSOLETE_PREFIX: Final = re.compile(r"^obsolete[\s:]+", re.IGNORECASE)

# surface kinds (field ranks): name, EXACT synonym, other synonym (RELATED / BROAD / NARROW / none)
_NAME, _SYN_EXACT, _SYN_OTHER = 0, 1, 2
PREFIX_WEIGHT: Final = 0.9
DEFINITION_CEILING: Final = 0.5
MAX_EXPANSIONS: Final = 100


class TermLike(Protocol):
    """What the indexes need of a term (``kg.snapshot.TermInfo`` and ``kg.obo.TermRow`` both fit)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def definition(self) -> str | None: ...
    @property
    def synonyms(self) -> tuple[str, ...]: ...
    @property
    def synonym_scopes(self) -> tuple[str, ...]: ...
    @property
    def obsolete(self) -> bool: ...
    @property
    def alt_ids(self) -> tuple[str, ...]: ...
    @property
    def replaced_by(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: the term, a score in [0, 1], and what matched."""

    id: str
    name: str
    score: float
    field: str
    matched: str
    source: str  # exact | lexical | semantic
    obsolete: bool = False
    lexical: float | None = None
    semantic: float | None = None


# ---------------------------------------------------------------------------------------------- tokens


def word_keys(text: str) -> list[str]:
    """Normalised word keys of ``text`` (stop words kept, lexical variants folded: "renal" -> "kidney")."""
    keys = [normalise_token(w) for w in _WORD_RE.findall(_POSSESSIVE_RE.sub("", text))]
    return [VARIANTS.get(k, k) for k in keys]


def content_tokens(text: str) -> list[str]:
    """Word keys without stop words (all keys if the text has nothing else), in order."""
    keys = word_keys(text)
    content = [k for k in keys if k not in STOPWORDS]
    return content or keys


def exact_key(text: str) -> str:
    return " ".join(content_tokens(text))


def fold(text: str) -> str:
    """Case-folded words joined by single spaces: "Non-Small  cell" -> "non small cell"."""
    return " ".join(_WORD_RE.findall(text.casefold()))


def parse_id(text: str) -> str | None:
    """``HP:0001250`` from "HP:0001250", "hp_0001250", "HP 0001250" or "0001250"; else None."""
    m = _ID_RE.match(text)
    return f"HP:{m.group(1)}" if m else None


def _is_abbreviation(surface: str) -> bool:
    """Short strings with two or more capitals ("ASD", "ALL", "PACs") are case-sensitive abbreviations."""
    compact = "".join(surface.split())
    if len(compact) > 7:
        return False
    upper = sum(c.isupper() for c in compact)
    return upper >= 2 and upper >= sum(c.islower() for c in compact)


def _idf(df: int, n: int) -> float:
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


# ---------------------------------------------------------------------------------------------- lexical


@dataclass
class LexicalScores:
    """Per-surface lexical scores of one query (arrays over the surfaces of a :class:`LexicalIndex`)."""

    surface: np.ndarray  # float32 [n_surfaces]: IDF-weighted Dice (abbreviation penalty applied)
    exact_surfaces: list[int]  # surfaces equal to the query after normalisation
    id_hits: list[tuple[int, str]]  # (term index, field) for an id query
    literal_surfaces: list[int] = field(default_factory=list)  # ... and equal up to case and separators
    definition: np.ndarray | None = None  # float32 [n_terms]: DEFINITION_CEILING x coverage


class LexicalIndex:
    """Names, synonyms, ids and definitions of a set of terms, indexed for exact and token matching."""

    def __init__(self, terms: Iterable[TermLike], *, definitions: bool = True) -> None:
        items = sorted(terms, key=lambda t: t.id)
        self.term_ids: list[str] = [t.id for t in items]
        self.term_index: dict[str, int] = {t: i for i, t in enumerate(self.term_ids)}
        self.names: list[str] = [t.name for t in items]
        self.obsolete = np.array([bool(t.obsolete) for t in items], dtype=bool)
        self.replaced_by: list[str | None] = [t.replaced_by for t in items]
        self.definitions: list[str | None] = [t.definition for t in items]
        # ---- ids
        self.ids: dict[str, list[tuple[int, str]]] = {}
        for i, t in enumerate(items):
            self.ids.setdefault(t.id.upper(), []).append((i, "id"))
            for alt in t.alt_ids:
                self.ids.setdefault(alt.upper(), []).append((i, "alt_id"))
        for t in items:
            target = t.replaced_by
            if t.obsolete and target and target in self.term_index:
                self.ids.setdefault(t.id.upper(), []).append((self.term_index[target], "replaced_id"))
        # ---- surfaces (grouped by term: term i owns surfaces offsets[i]:offsets[i+1])
        s_term: list[int] = []
        s_kind: list[int] = []
        self.surface_text: list[str] = []
        s_tokens: list[tuple[str, ...]] = []
        s_keys: list[str] = []
        offsets = [0]
        for i, t in enumerate(items):
            seen: set[str] = set()
            name = _OBSOLETE_PREFIX.sub("", t.name) if t.obsolete else t.name
            scopes = tuple(t.synonym_scopes) + ("",) * (len(t.synonyms) - len(t.synonym_scopes))
            kinds = [(name, _NAME)] + [(s, _SYN_EXACT if sc.upper() in ("EXACT", "") else _SYN_OTHER)
                                       for s, sc in zip(t.synonyms, scopes, strict=False)]
            for text, kind in kinds:
                text = " ".join(text.split())
                if not text or text in seen:
                    continue
                toks = content_tokens(text)
                if not toks:
                    continue
                seen.add(text)
                s_term.append(i)
                s_kind.append(kind)
                self.surface_text.append(text)
                s_tokens.append(tuple(dict.fromkeys(toks)))
                s_keys.append(" ".join(toks))
            offsets.append(len(s_term))
        self.surface_term = np.asarray(s_term, dtype=np.int32)
        self.surface_kind = np.asarray(s_kind, dtype=np.int8)
        self.term_offsets = np.asarray(offsets, dtype=np.int64)
        self.surface_abbrev = np.array([_is_abbreviation(s) for s in self.surface_text], dtype=bool)
        self.surface_length = np.array([len(s) for s in self.surface_text], dtype=np.int32)
        n = len(self.surface_text)
        # ---- exact maps
        self.exact: dict[str, list[int]] = {}
        for j, key in enumerate(s_keys):
            self.exact.setdefault(key, []).append(j)
        # ---- token postings and idf
        post: dict[str, list[int]] = {}
        for j, surface_toks in enumerate(s_tokens):
            for tok in surface_toks:
                post.setdefault(tok, []).append(j)
        self.postings: dict[str, np.ndarray] = {k: np.asarray(v, dtype=np.int32) for k, v in post.items()}
        self.idf: dict[str, float] = {k: _idf(len(v), n) for k, v in post.items()}
        self.max_idf = _idf(1, max(n, 1))
        self.surface_weight = np.asarray([sum(self.idf[t] for t in st) for st in s_tokens], dtype=np.float32)
        self.vocab: list[str] = sorted(self.postings)
        # ---- definitions (search only)
        self.def_postings: dict[str, np.ndarray] = {}
        self.def_idf: dict[str, float] = {}
        if definitions:
            dpost: dict[str, list[int]] = {}
            for i, t in enumerate(items):
                if t.definition and not t.obsolete:
                    for tok in dict.fromkeys(content_tokens(t.definition)):
                        dpost.setdefault(tok, []).append(i)
            nd = max(sum(1 for t in items if t.definition), 1)
            self.def_postings = {k: np.asarray(v, dtype=np.int32) for k, v in dpost.items()}
            self.def_idf = {k: _idf(len(v), nd) for k, v in dpost.items()}
        self._masks: dict[tuple[str, ...], np.ndarray] = {}

    @classmethod
    def from_snapshot(cls, snapshot: object) -> LexicalIndex:
        """Index every term of a :class:`kg.snapshot.GraphSnapshot` (live and obsolete)."""
        terms: Mapping[str, TermLike] = getattr(snapshot, "terms")  # noqa: B009
        return cls(terms.values())

    @property
    def size(self) -> int:
        return len(self.surface_text)

    def __len__(self) -> int:
        return len(self.term_ids)

    # ---- scoring ---------------------------------------------------------------------------------------
    def score(self, query: str, *, prefix: bool = False, definitions: bool = False) -> LexicalScores:
        """Lexical scores of every surface (and optionally every definition) for ``query``."""
        n = len(self.surface_text)
        sim = np.zeros(n, dtype=np.float32)
        out = LexicalScores(surface=sim, exact_surfaces=[], id_hits=[])
        ident = parse_id(query)
        if ident is not None:
            out.id_hits = list(self.ids.get(ident, ()))
        toks = list(dict.fromkeys(content_tokens(query)))
        if not toks:
            return out
        out.exact_surfaces = list(self.exact.get(" ".join(content_tokens(query)), ()))
        if out.exact_surfaces:
            folded = fold(query)
            out.literal_surfaces = [j for j in out.exact_surfaces if fold(self.surface_text[j]) == folded]
        last = toks[-1] if prefix and not query[-1:].isspace() else None
        exact_toks = toks[:-1] if last is not None else toks
        numer = np.zeros(n, dtype=np.float32)
        q_weight = 0.0
        for tok in exact_toks:
            w = self.idf.get(tok)
            if w is None:
                q_weight += self.max_idf
                continue
            q_weight += w
            numer[self.postings[tok]] += w
        q_side: np.ndarray | float = q_weight
        if last is not None:
            last_numer = np.zeros(n, dtype=np.float32)
            w_last = self.idf.get(last)
            last_q = np.full(n, w_last if w_last is not None else self.max_idf, dtype=np.float32)
            if w_last is not None:
                last_numer[self.postings[last]] = w_last
            for exp in self._expansions(last, query):
                sel = self.postings[exp]
                cand = PREFIX_WEIGHT * self.idf[exp]
                better = sel[last_numer[sel] < cand]
                last_numer[better] = cand
                last_q[better] = self.idf[exp]
            numer += last_numer
            q_side = last_q + q_weight
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(2.0 * numer, q_side + self.surface_weight, out=sim, where=numer > 0)
        if out.exact_surfaces:
            sim[out.exact_surfaces] = 1.0
        self._penalise_abbreviations(sim, query, out)
        if definitions and self.def_postings:
            out.definition = self._definition_scores(toks)
        return out

    def _expansions(self, prefix: str, query: str) -> list[str]:
        """Vocabulary words that start with the last query word (shortest first, at most MAX_EXPANSIONS)."""
        words = _WORD_RE.findall(query.casefold())
        raw = words[-1] if words else prefix
        found: set[str] = set()
        for p in {prefix, raw}:
            if len(p) < 2:
                continue
            i = bisect.bisect_left(self.vocab, p)
            while i < len(self.vocab) and self.vocab[i].startswith(p):
                if self.vocab[i] != prefix:
                    found.add(self.vocab[i])
                i += 1
                if len(found) > 20 * MAX_EXPANSIONS:
                    break
        return sorted(found, key=lambda w: (len(w), w))[:MAX_EXPANSIONS]

    def _penalise_abbreviations(self, sim: np.ndarray, query: str, out: LexicalScores) -> None:
        hits = np.flatnonzero((sim > 0) & self.surface_abbrev)
        if not len(hits):
            return
        words = set(query.split()) | set(_WORD_RE.findall(query))
        exact = set(out.exact_surfaces)
        for j in hits.tolist():
            if self.surface_text[j] not in words and "".join(self.surface_text[j].split()) not in words:
                sim[j] *= 0.5
                exact.discard(j)
        out.exact_surfaces = [j for j in out.exact_surfaces if j in exact]
        out.literal_surfaces = [j for j in out.literal_surfaces if j in exact]

    def _definition_scores(self, toks: Sequence[str]) -> np.ndarray:
        cover = np.zeros(len(self.term_ids), dtype=np.float32)
        total = 0.0
        for tok in toks:
            w = self.def_idf.get(tok)
            if w is None:
                total += self.max_idf
                continue
            total += w
            cover[self.def_postings[tok]] += w
        if total > 0:
            cover *= DEFINITION_CEILING / total
        return cover

    def term_scores(self, sim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best surface score per term and the index of that surface (-1 where a term has none)."""
        n_terms = len(self.term_ids)
        best = np.zeros(n_terms, dtype=np.float32)
        arg = np.full(n_terms, -1, dtype=np.int64)
        cand = np.flatnonzero(sim > 0)
        if len(cand):
            # sort candidate surfaces by score, then keep the first per term
            order = cand[np.lexsort((self.surface_kind[cand], -sim[cand]))]
            terms = self.surface_term[order]
            _, first = np.unique(terms, return_index=True)
            chosen = order[first]
            best[self.surface_term[chosen]] = sim[chosen]
            arg[self.surface_term[chosen]] = chosen
        return best, arg

    def mask_for(self, allowed: Iterable[str] | None, *, include_obsolete: bool) -> np.ndarray:
        """Boolean term mask: in ``allowed`` (None = all) and live unless ``include_obsolete``."""
        key = (("*",) if allowed is None else tuple(sorted(allowed))) + (("obs",) if include_obsolete else ())
        cached = self._masks.get(key) if len(key) < 64 else None
        if cached is not None:
            return cached
        mask = np.ones(len(self.term_ids), dtype=bool) if include_obsolete else ~self.obsolete
        if allowed is not None:
            keep = np.zeros(len(self.term_ids), dtype=bool)
            idx = [self.term_index[t] for t in allowed if t in self.term_index]
            keep[idx] = True
            mask = mask & keep
        if len(key) < 64:
            self._masks[key] = mask
        return mask

    # ---- search ----------------------------------------------------------------------------------------
    def search(self, query: str, *, limit: int = 10, include_obsolete: bool = False, prefix: bool = True,
               definitions: bool = True, mask: np.ndarray | None = None) -> list[Hit]:
        """Lexical search: exact id, exact name/synonym, then token overlap (with type-ahead prefixes).

        Order: id hits; exact matches (the literal spelling first, then names before synonyms); then by
        score, names before synonyms before definitions, shorter matched text first.
        """
        scores = self.score(query, prefix=prefix, definitions=definitions)
        allowed = mask if mask is not None else self.mask_for(None, include_obsolete=include_obsolete)
        best, arg = self.term_scores(scores.surface)
        out: list[Hit] = []
        seen: set[int] = set()
        for term, fld in scores.id_hits:
            if allowed[term] and term not in seen:
                seen.add(term)
                out.append(Hit(self.term_ids[term], self.names[term], 1.0, fld, self.term_ids[term] if fld == "id"
                               else parse_id(query) or query, "exact", bool(self.obsolete[term])))
        dfn = scores.definition if scores.definition is not None else np.zeros_like(best)
        use_def = dfn > best
        value = np.where(use_def, dfn, best)
        ok = (value > 0) & allowed
        if seen:
            ok[list(seen)] = False
        cand = np.flatnonzero(ok)
        if len(cand) and len(out) < limit:
            exact = np.zeros(len(best), dtype=bool)
            literal = np.zeros(len(best), dtype=bool)
            exact[self.surface_term[scores.exact_surfaces]] = True
            literal[self.surface_term[scores.literal_surfaces]] = True
            exact &= (best >= 1.0) & ~use_def
            surf = arg[cand]
            kind = np.where(use_def[cand], 3, self.surface_kind[np.maximum(surf, 0)])
            length = np.where(use_def[cand], 0, self.surface_length[np.maximum(surf, 0)])
            order = np.lexsort((cand, length, kind, -value[cand], ~literal[cand], ~exact[cand]))
            for term in cand[order[: limit - len(out)]].tolist():
                score = round(float(value[term]), 4)
                if use_def[term]:
                    out.append(Hit(self.term_ids[term], self.names[term], score, "definition",
                                   self.definitions[term] or "", "lexical", bool(self.obsolete[term]), lexical=score))
                    continue
                j = int(arg[term])
                out.append(Hit(self.term_ids[term], self.names[term], score,
                               "name" if self.surface_kind[j] == _NAME else "synonym", self.surface_text[j],
                               "exact" if exact[term] else "lexical", bool(self.obsolete[term]), lexical=score))
        return out[:limit]


# ---------------------------------------------------------------------------------------------- semantic


@dataclass
class SemanticIndex:
    """Unit vectors of names and synonyms, grouped by term (term i owns rows offsets[i]:offsets[i+1])."""

    matrix: np.ndarray  # float32 [n_rows, dim], L2-normalised
    term_ids: list[str]
    offsets: np.ndarray  # int64 [n_terms + 1]
    row_field: np.ndarray  # int8 [n_rows]: 0 name, 1 synonym
    row_text: list[str]
    encoder: str = ""
    fingerprint: str = ""
    stamp: str | None = None
    missing: int = 0  # live terms without (current) vectors
    row_term: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        counts = np.diff(self.offsets)
        self.row_term = np.repeat(np.arange(len(self.term_ids), dtype=np.int32), counts)
        self.term_index = {t: i for i, t in enumerate(self.term_ids)}
        if self.matrix.dtype != np.float32:
            self.matrix = self.matrix.astype(np.float32)

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1]) if self.matrix.ndim == 2 else 0

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, Sequence[str], np.ndarray]], **kwargs: object) -> SemanticIndex:
        """Build from ``(term id, [name, *synonyms], vectors [k, dim])`` rows (vectors re-normalised)."""
        term_ids: list[str] = []
        texts: list[str] = []
        fields: list[int] = []
        blocks: list[np.ndarray] = []
        offsets = [0]
        for tid, labels, vecs in sorted(rows, key=lambda r: r[0]):
            term_ids.append(tid)
            texts.extend(labels)
            fields.extend([0] + [1] * (len(labels) - 1))
            blocks.append(np.asarray(vecs, dtype=np.float32))
            offsets.append(offsets[-1] + len(labels))
        dim = blocks[0].shape[1] if blocks else 0
        matrix = np.concatenate(blocks) if blocks else np.zeros((0, dim), np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = matrix / np.maximum(norms, 1e-12)
        return cls(matrix=matrix.astype(np.float32), term_ids=term_ids, offsets=np.asarray(offsets, np.int64),
                   row_field=np.asarray(fields, np.int8), row_text=texts, **kwargs)  # type: ignore[arg-type]

    def row_scores(self, queries: np.ndarray) -> np.ndarray:
        """Cosine of each query (``[m, dim]`` or ``[dim]``) with every row: ``[m, n_rows]``."""
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if q.shape[1] != self.dim:
            raise ValueError(f"query vectors have {q.shape[1]} dimensions, the index {self.dim}")
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        scores: np.ndarray = q @ self.matrix.T
        return scores

    def term_scores(self, row_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best row score per term (``[n_terms]``) and that row, for one query's ``[n_rows]`` scores."""
        if not len(self.term_ids):
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        best = np.maximum.reduceat(row_scores, self.offsets[:-1])
        # the best row of each term: the first row reaching the term's max
        hit = row_scores >= best[self.row_term]
        idx = np.flatnonzero(hit)
        first = np.full(len(self.term_ids), -1, dtype=np.int64)
        # rows are grouped by term; reverse assignment keeps the first occurrence
        first[self.row_term[idx[::-1]]] = idx[::-1]
        return best.astype(np.float32), first

    def search(self, query: np.ndarray, *, limit: int = 10, allowed: set[str] | None = None) -> list[Hit]:
        """Nearest terms to one query vector (best of each term's name and synonym vectors)."""
        best, arg = self.term_scores(self.row_scores(query)[0])
        if allowed is not None:
            keep = np.zeros(len(self.term_ids), dtype=bool)
            keep[[self.term_index[t] for t in allowed if t in self.term_index]] = True
            best = np.where(keep, best, -np.inf)
        k = min(limit, len(best))
        if k <= 0:
            return []
        top = np.argpartition(-best, k - 1)[:k]
        top = top[np.lexsort((top, -best[top]))]
        out = []
        for i in top.tolist():
            if not np.isfinite(best[i]):
                continue
            row = int(arg[i])
            score = float(best[i])
            out.append(Hit(self.term_ids[i], self.row_text[int(self.offsets[i])], round(max(score, 0.0), 4),
                           "name" if self.row_field[row] == 0 else "synonym", self.row_text[row], "semantic",
                           semantic=round(score, 4)))
        return out


# ---------------------------------------------------------------------------------------------- fusion


@dataclass(frozen=True)
class FusionModel:
    """Linear fusion ``raw = w_sem·cos + w_lex·lexical**power + w_exact·exact`` and a logistic calibration.

    ``probability = 1 / (1 + exp(-(scale·raw + calib_exact·exact + bias)))``: the estimated chance that the
    candidate is the term meant. The defaults were fitted on HPO synonym hold-out queries
    (``benchmarks/normalization_bench.py --tune``; weights by the one-standard-error rule on acc@5, then a
    logistic regression of top-1 correctness on ``raw`` and ``exact``), never on an evaluation corpus.
    """

    w_semantic: float = 0.7
    w_lexical: float = 0.3
    w_exact: float = 0.3
    scale: float = 2.14
    bias: float = -2.15
    # lexical-only fallback (no vectors): raw = lexical + w_exact·exact
    scale_lexical: float = 4.63
    bias_lexical: float = -4.53
    #: lexical ** power: > 1 makes a partial word overlap count less than a (near-)complete one
    lexical_power: float = 1.0
    calib_exact: float = 3.56
    calib_exact_lexical: float = 2.2

    def probability(self, raw: np.ndarray, *, semantic: bool = True, exact: np.ndarray | None = None) -> np.ndarray:
        if semantic:
            scale, bias, cx = self.scale, self.bias, self.calib_exact
        else:
            scale, bias, cx = self.scale_lexical, self.bias_lexical, self.calib_exact_lexical
        z = scale * np.asarray(raw, dtype=np.float64) + bias
        if exact is not None and cx:
            z = z + cx * np.asarray(exact, dtype=np.float64)
        result: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))
        return result


@dataclass
class TermScores:
    """Everything known about every term for one query (arrays over the lexical index's terms)."""

    lexical: np.ndarray  # float32 [n_terms]
    lexical_surface: np.ndarray  # int64 [n_terms], -1 when none
    exact: np.ndarray  # bool [n_terms]: exact name / synonym after normalisation
    literal: np.ndarray  # bool [n_terms]: ... equal to the query up to case and separators ("Lipomas")
    semantic: np.ndarray | None  # float32 [n_terms] (-1 where a term has no vector)
    semantic_row: np.ndarray | None  # int64 [n_terms] into SemanticIndex rows, -1 when none
    id_hits: list[tuple[int, str]]
    definition: np.ndarray | None = None


class Searcher:
    """Lexical, semantic and hybrid search over one snapshot (the semantic part is optional)."""

    def __init__(self, lexical: LexicalIndex, semantic: SemanticIndex | None = None,
                 model: FusionModel | None = None) -> None:
        self.lexical_index = lexical
        self.semantic_index = semantic if semantic is not None and len(semantic.term_ids) else None
        self.model = model or FusionModel()
        self._to_semantic: np.ndarray | None = None
        if self.semantic_index is not None:
            sem = self.semantic_index
            self._to_semantic = np.asarray([sem.term_index.get(t, -1) for t in lexical.term_ids], dtype=np.int64)

    @property
    def has_semantic(self) -> bool:
        return self.semantic_index is not None

    # ---- per-term features ------------------------------------------------------------------------------
    def term_scores(self, query: str, vector: np.ndarray | None, *, prefix: bool = False,
                    definitions: bool = False, row_scores: np.ndarray | None = None,
                    exclude_surfaces: Sequence[int] = ()) -> TermScores:
        """Lexical, exact and semantic scores of every term for one query (``row_scores`` if precomputed).

        ``exclude_surfaces``: lexical surfaces to ignore (leave-one-out evaluation; the caller blanks the
        matching rows of ``row_scores`` itself).
        """
        lex = self.lexical_index
        scores = lex.score(query, prefix=prefix, definitions=definitions)
        if exclude_surfaces:
            scores.surface[list(exclude_surfaces)] = 0.0
            scores.exact_surfaces = [j for j in scores.exact_surfaces if j not in set(exclude_surfaces)]
            scores.literal_surfaces = [j for j in scores.literal_surfaces if j not in set(exclude_surfaces)]
        best, arg = lex.term_scores(scores.surface)
        exact = np.zeros(len(lex.term_ids), dtype=bool)
        literal = np.zeros(len(lex.term_ids), dtype=bool)
        if scores.exact_surfaces:
            exact[lex.surface_term[scores.exact_surfaces]] = True
        if scores.literal_surfaces:
            literal[lex.surface_term[scores.literal_surfaces]] = True
        sem_scores = sem_rows = None
        if self.semantic_index is not None and (vector is not None or row_scores is not None):
            assert self._to_semantic is not None
            rows = row_scores if row_scores is not None else self.semantic_index.row_scores(vector)[0]  # type: ignore[arg-type]
            s_best, s_arg = self.semantic_index.term_scores(rows)
            mapped = self._to_semantic
            has = mapped >= 0
            sem_scores = np.full(len(lex.term_ids), -1.0, dtype=np.float32)
            sem_rows = np.full(len(lex.term_ids), -1, dtype=np.int64)
            sem_scores[has] = s_best[mapped[has]]
            sem_rows[has] = s_arg[mapped[has]]
        return TermScores(best, arg, exact, literal, sem_scores, sem_rows, scores.id_hits, scores.definition)

    def fused(self, ts: TermScores) -> np.ndarray:
        """Raw linear-fusion score of every term (higher is better)."""
        m = self.model
        exact = ts.exact.astype(np.float32)
        if ts.semantic is None:
            result: np.ndarray = ts.lexical + m.w_exact * exact
            return result
        sem = np.maximum(ts.semantic, 0.0)
        lexical = ts.lexical if m.lexical_power == 1.0 else ts.lexical ** m.lexical_power
        fused: np.ndarray = m.w_semantic * sem + m.w_lexical * lexical + m.w_exact * exact
        return fused

    def rrf(self, ts: TermScores, *, k: int = 60, pool: int = 100) -> np.ndarray:
        """Reciprocal-rank fusion of the lexical and semantic rankings (exact matches get a bonus of 1)."""
        out = np.zeros(len(ts.lexical), dtype=np.float32)
        for scores in (ts.lexical, ts.semantic):
            if scores is None:
                continue
            n = min(pool, int((scores > 0).sum()))
            if n <= 0:
                continue
            top = np.argpartition(-scores, n - 1)[:n]
            top = top[np.argsort(-scores[top], kind="stable")]
            out[top] += 1.0 / (k + 1 + np.arange(n, dtype=np.float32))
        out += ts.exact.astype(np.float32)
        return out

    # ---- hits -------------------------------------------------------------------------------------------
    def _hit(self, term: int, score: float, ts: TermScores, *, prefer_semantic: bool = False) -> Hit:
        lex = self.lexical_index
        j = int(ts.lexical_surface[term])
        l_score = float(ts.lexical[term])
        s_score = float(ts.semantic[term]) if ts.semantic is not None and ts.semantic[term] > -1 else None
        use_lexical = j >= 0 and (not prefer_semantic or s_score is None) and (
            ts.exact[term] or s_score is None or l_score >= 0.5 or l_score >= s_score)
        if use_lexical:
            kind = int(lex.surface_kind[j])
            fld, text = ("name" if kind == _NAME else "synonym"), lex.surface_text[j]
            source = "exact" if ts.exact[term] else "lexical"
        elif s_score is not None and ts.semantic_row is not None and self.semantic_index is not None:
            row = int(ts.semantic_row[term])
            fld = "name" if self.semantic_index.row_field[row] == 0 else "synonym"
            text, source = self.semantic_index.row_text[row], "semantic"
        elif ts.definition is not None and ts.definition[term] > 0:
            fld, text, source = "definition", lex.definitions[term] or "", "lexical"
        else:
            fld, text, source = "name", lex.names[term], "lexical"
        return Hit(lex.term_ids[term], lex.names[term], round(float(score), 4), fld, text, source,
                   bool(lex.obsolete[term]), lexical=round(l_score, 4),
                   semantic=None if s_score is None else round(s_score, 4))

    def id_hits(self, query: str, ts: TermScores, allowed: np.ndarray) -> list[Hit]:
        lex = self.lexical_index
        out: list[Hit] = []
        seen: set[int] = set()
        for term, fld in ts.id_hits:
            if allowed[term] and term not in seen:
                seen.add(term)
                out.append(Hit(lex.term_ids[term], lex.names[term], 1.0, fld, parse_id(query) or query, "exact",
                               bool(lex.obsolete[term])))
        return out

    def lexical(self, query: str, *, limit: int = 10, include_obsolete: bool = False,
                allowed: Iterable[str] | None = None) -> list[Hit]:
        mask = self.lexical_index.mask_for(allowed, include_obsolete=include_obsolete)
        return self.lexical_index.search(query, limit=limit, include_obsolete=include_obsolete, mask=mask)

    def semantic(self, query: str, vector: np.ndarray, *, limit: int = 10,
                 allowed: Iterable[str] | None = None) -> list[Hit]:
        """Nearest terms by meaning; an exact id in the query is still pinned first."""
        if self.semantic_index is None:
            raise LookupError("no phenotype embeddings are loaded")
        mask = self.lexical_index.mask_for(allowed, include_obsolete=False)
        ts = self.term_scores(query, vector)
        assert ts.semantic is not None
        ranked = np.where(mask & (ts.semantic > -1), ts.semantic, -np.inf)
        shown = np.maximum(ts.semantic, 0.0)
        return self.rank_terms(ranked, shown, ts, self.id_hits(query, ts, mask), limit, pin_exact=False,
                          prefer_semantic=True)

    def hybrid(self, query: str, vector: np.ndarray | None, *, limit: int = 10, include_obsolete: bool = False,
               allowed: Iterable[str] | None = None, fusion: Literal["linear", "rrf"] = "linear",
               prefix: bool = True) -> list[Hit]:
        """Fusion of lexical and semantic scores; exact ids and exact names/synonyms pinned first.

        Without a vector (or without embeddings) this is lexical scoring with the same calibration. The
        score shown is the calibrated probability of the linear fusion, whatever ``fusion`` ranks by.
        """
        lex = self.lexical_index
        mask = lex.mask_for(allowed, include_obsolete=include_obsolete)
        ts = self.term_scores(query, vector, prefix=prefix, definitions=True)
        fused = self.fused(ts)
        raw = fused if fusion == "linear" else self.rrf(ts)
        has_any = (ts.lexical > 0) | ts.exact
        if ts.semantic is not None:
            has_any |= ts.semantic > -1
        if ts.definition is not None:
            # a definition hit alone ranks like a weak lexical hit
            weight = self.model.w_lexical if ts.semantic is not None else 1.0
            if fusion == "linear":
                raw = np.maximum(raw, weight * ts.definition)
                fused = np.maximum(fused, weight * ts.definition)
            has_any |= ts.definition > 0
        shown = self.model.probability(fused, semantic=ts.semantic is not None, exact=ts.exact)
        ranked = np.where(mask & has_any, raw, -np.inf)
        return self.rank_terms(ranked, shown, ts, self.id_hits(query, ts, mask), limit, pin_exact=True)

    def rank_terms(self, ranked: np.ndarray, shown: np.ndarray, ts: TermScores, pinned: list[Hit], limit: int,
              *, pin_exact: bool, prefer_semantic: bool = False) -> list[Hit]:
        """Pinned id hits, then (if ``pin_exact``) exact name/synonym matches, then by ``ranked``."""
        lex = self.lexical_index
        out = list(pinned)
        seen = {h.id for h in pinned}
        if pin_exact:
            exact = [t for t in np.flatnonzero(ts.exact & np.isfinite(ranked)).tolist()
                     if lex.term_ids[t] not in seen]
            # the literal spelling first ("Lipomas" -> Multiple lipomas before Lipoma), then by score
            exact.sort(key=lambda t: (not ts.literal[t], -float(ranked[t]), lex.term_ids[t]))
            for t in exact[: max(limit - len(out), 0)]:
                out.append(self._hit(t, float(shown[t]), ts))
                seen.add(lex.term_ids[t])
        need = limit - len(out)
        k = min(len(ranked), need + len(seen) + 8)
        if need > 0 and k > 0:
            top = np.argpartition(-ranked, k - 1)[:k]
            top = top[np.lexsort((top, -ranked[top]))]
            for t in top.tolist():
                if len(out) >= limit:
                    break
                if not np.isfinite(ranked[t]) or lex.term_ids[t] in seen:
                    continue
                out.append(self._hit(t, float(shown[t]), ts, prefer_semantic=prefer_semantic))
                seen.add(lex.term_ids[t])
        return out[:limit]
