"""The lexical index: exact ids and names, IDF-weighted token overlap with prefix matching, definitions."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from kg.analysis.search.keys import (
    _NAME,
    _OBSOLETE_PREFIX,
    _SYN_EXACT,
    _SYN_OTHER,
    _WORD_RE,
    DEFINITION_CEILING,
    MAX_EXPANSIONS,
    PREFIX_WEIGHT,
    Hit,
    TermLike,
    _idf,
    _is_abbreviation,
    content_tokens,
    fold,
    parse_id,
)


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
        """Index every term of a :class:`kg.repo.snapshots.GraphSnapshot` (live and obsolete)."""
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
