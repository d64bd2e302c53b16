"""Fusion of lexical and semantic scores (linear with a logistic calibration, or reciprocal rank) and the
searcher that answers lexical, semantic and hybrid queries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from kg.analysis.search.keys import _NAME, Hit, parse_id
from kg.analysis.search.lexical import LexicalIndex
from kg.analysis.search.semantic import SemanticIndex


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
