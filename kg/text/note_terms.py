"""A clinical note's phenotype mentions (from :class:`kg.text.linker.Linker`) → the present and absent terms of a
query, each with the text spans that produced it.

* a mention neither negated nor uncertain makes its term **present**; a negated one (not uncertain) makes it
  **absent**; an uncertain one ("possible X", "rule out X", "probably no X") is kept out of the query;
* a term both asserted and negated in the note ("no seizures until age 3, then seizures") is present: the
  patient has had it, and the negated mention is listed as ``overridden``;
* terms keep the order of their first mention, each once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from kg.text.linker import Mention

MentionRole = Literal["present", "absent", "uncertain", "overridden"]


@dataclass(frozen=True)
class Span:
    """Where a mention is: ``note[start:end] == text``."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class NoteMention:
    """One linked mention and what the query made of it."""

    mention: Mention
    role: MentionRole


@dataclass
class NoteTerms:
    """The present / absent term ids of a note (first-mention order) and every mention with its role."""

    present: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    mentions: list[NoteMention] = field(default_factory=list)

    def spans(self, term: str) -> list[Span]:
        """The spans of the mentions that put ``term`` in the query (as present or as absent)."""
        return [Span(m.mention.start, m.mention.end, m.mention.text) for m in self.mentions
                if m.mention.id == term and m.role in ("present", "absent")]


def note_terms(mentions: Sequence[Mention]) -> NoteTerms:
    """The query terms of a note's ``mentions`` (see the module docstring for the rules)."""
    asserted = {m.id for m in mentions if not m.negated and not m.uncertain}
    out = NoteTerms()
    for m in mentions:
        role: MentionRole
        if m.uncertain:
            role = "uncertain"
        elif not m.negated:
            role = "present"
            if m.id not in out.present:
                out.present.append(m.id)
        elif m.id in asserted:
            role = "overridden"
        else:
            role = "absent"
            if m.id not in out.absent:
                out.absent.append(m.id)
        out.mentions.append(NoteMention(m, role))
    return out
