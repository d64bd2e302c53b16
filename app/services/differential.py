"""``POST /rank`` and ``phenokg rank``: a request (ids, a clinical note, or both) → the ranked differential.

The note's mentions (:class:`kg.text.linker.Linker`, negation included) become present / absent terms
(:func:`kg.text.note_terms.note_terms`) merged with the ids: a term the note negates stays out of ``absent`` when
the ids or the note assert it. The ranking is :meth:`kg.analysis.ranking.RankingIndex.rank_query` (one row per
disease unless ``group`` is false); the response points every explained term back to its mentions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from app.schemas.ranking import (
    AbsentEvidence,
    Contradicted,
    EquivalentOut,
    ExplanationOut,
    Matched,
    QueryMention,
    RankedDiseaseOut,
    RankQuery,
    RankRequest,
    RankResponse,
    ScorePartsOut,
    TextSpan,
)
from kg.analysis.ranking import AbsentTerm, Explanation, RankedDisease, RankedQuery, RankingIndex
from kg.errors import ValidationError
from kg.text.linker import Linker
from kg.text.note_terms import NoteMention, NoteTerms, note_terms


@dataclass
class Differential:
    """A request ranked: the ranked query and, for a note, its terms and mentions."""

    ranked: RankedQuery
    note: NoteTerms | None = None


def rank_differential(index: RankingIndex, body: RankRequest, linker: Callable[[], Linker]) -> Differential:
    """Rank ``body`` (``linker`` is called only when it has a text); a query with no present phenotype left,
    from the ids or the note, raises :class:`ValidationError`."""
    note = note_terms(linker().annotate(body.text)) if body.text else None
    present, absent = list(body.present), list(body.absent)
    if note is not None:
        if not present and not note.present:
            negated = f" ({len(note.absent)} absent)" if note.absent else ""
            raise ValidationError(f"the text names no present phenotype{negated}; give present ids or describe "
                                  "what the patient has")
        present += note.present
        asserted = set(index.resolve_terms(present).ids)
        absent += [a for a in note.absent if a not in asserted]
        # a negated mention of a term the ids assert is overridden too (the query never holds it both ways)
        note.mentions = [NoteMention(m.mention, "overridden") if m.role == "absent" and m.mention.id in asserted
                         else m for m in note.mentions]
    ranked = index.rank_query(present, absent, sources=body.sources, limit=body.limit, explain=body.explain,
                              method=body.method, group=body.group)
    return Differential(ranked, note)


def _spans(note: NoteTerms | None, term: str) -> list[TextSpan] | None:
    if note is None:
        return None
    return [TextSpan(start=s.start, end=s.end, text=s.text) for s in note.spans(term)] or None


def explanation_out(names: Mapping[str, str], e: Explanation, note: NoteTerms | None = None) -> ExplanationOut:
    def n(term: str) -> str:
        return names.get(term, "")

    return ExplanationOut(
        matched=[Matched(observed=m.observed, observed_name=n(m.observed), typical=m.typical,
                         typical_name=n(m.typical), how=m.how, mica=m.mica, mica_name=n(m.mica),
                         ic=m.ic, frequency=m.frequency, contribution=m.contribution,
                         likelihood_ratio=m.likelihood_ratio, spans=_spans(note, m.observed)) for m in e.matched],
        contradicted=[Contradicted(observed=c.observed, observed_name=n(c.observed), excluded=c.excluded,
                                   excluded_name=n(c.excluded), how=c.how,
                                   contribution=round(c.contribution, 4), likelihood_ratio=c.likelihood_ratio,
                                   spans=_spans(note, c.observed))
                      for c in e.contradicted],
        absent_consistent=[_absent(names, a, note) for a in e.absent_consistent],
        absent_conflicting=[_absent(names, a, note) for a in e.absent_conflicting],
        unmatched=e.unmatched,
        parts=ScorePartsOut(match=e.parts.match, contradiction=e.parts.contradiction,
                            absent_consistent=e.parts.absent_consistent,
                            absent_conflicting=e.parts.absent_conflicting),
    )


def _absent(names: Mapping[str, str], a: AbsentTerm, note: NoteTerms | None) -> AbsentEvidence:
    return AbsentEvidence(absent=a.absent, absent_name=names.get(a.absent, ""), disease_term=a.disease_term,
                          disease_term_name=names.get(a.disease_term, ""), how=a.how,
                          frequency=a.frequency, contribution=a.contribution, likelihood_ratio=a.likelihood_ratio,
                          spans=_spans(note, a.absent))


def ranked_out(names: Mapping[str, str], r: RankedDisease, note: NoteTerms | None = None) -> RankedDiseaseOut:
    return RankedDiseaseOut(rank=r.rank, id=r.id, name=r.name, source=r.source, score=r.score,
                            explanation=explanation_out(names, r.explanation, note) if r.explanation else None,
                            pooled_with=r.pooled_with, score_from=r.score_from,
                            equivalent_ids=[EquivalentOut(id=q.id, name=q.name, source=q.source, score=q.score)
                                            for q in r.equivalents])


def mentions_out(note: NoteTerms) -> list[QueryMention]:
    return [QueryMention(id=m.mention.id, name=m.mention.name, start=m.mention.start, end=m.mention.end,
                         text=m.mention.text, matched=m.mention.matched, negated=m.mention.negated,
                         uncertain=m.mention.uncertain, used_as=m.role) for m in note.mentions]


def differential_response(d: Differential, body: RankRequest, index: RankingIndex, names: Mapping[str, str],
                          is_obsolete: Callable[[str], bool]) -> RankResponse:
    """The response of ``POST /rank`` (``is_obsolete``: an unknown id is an obsolete one without replacement)."""
    ranked = d.ranked
    obsolete = [raw for raw in ranked.unknown if is_obsolete(raw)]
    query = RankQuery(present=ranked.present.ids, absent=ranked.absent.ids, redirected=ranked.redirected,
                      unknown=[raw for raw in ranked.unknown if raw not in obsolete], obsolete=obsolete,
                      mentions=mentions_out(d.note) if d.note is not None else None)
    return RankResponse(query=query, method=body.method, candidates=int(index.source_mask(body.sources).sum()),
                        results=[ranked_out(names, r, d.note) for r in ranked.results])
