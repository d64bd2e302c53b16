"""A phenopacket case written as a plain clinical note: present terms in a few sentences, each absent term negated
in one of the ways case reports write it, with the span of every term's words kept (for ``rank_from_text.py``).

The choices are deterministic: a ``random.Random`` seeded with ``"{seed}:{case id}"`` picks, per term, its primary
name or one of its EXACT synonyms (``synonym_share`` of the time, when it has any), and per sentence a template.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from kg.analysis.snapshot import TermInfo

PRESENT_OPENINGS = ("The patient presented with {}.", "On examination, the proband had {}.",
                    "Clinical findings included {}.", "The child was noted to have {}.", "There was also {}.")
NEGATIONS = {  # the ways case reports write an absent finding ({} is the finding)
    "no": "There was no {}.",
    "absent": "{} was absent.",
    "without": "The child was otherwise well, without {}.",
    "negative for": "The work-up was negative for {}.",
    "denies": "The patient denies {}.",
}
PER_SENTENCE = 3  # present findings listed per sentence


@dataclass(frozen=True)
class Placed:
    """Where one of the case's terms is written in the note: ``note[start:end] == surface``."""

    term: str
    polarity: Literal["present", "absent"]
    surface: str
    start: int
    end: int
    field: Literal["name", "synonym"]
    negation: str | None = None  # the NEGATIONS key used (absent terms)


@dataclass(frozen=True)
class Note:
    text: str
    placed: tuple[Placed, ...]


def _in_sentence(surface: str) -> str:
    """Lower-case a capitalised first word ("Arachnodactyly" → "arachnodactyly"), not an abbreviation ("ASD")."""
    if len(surface) > 1 and surface[0].isupper() and not surface[1].isupper():
        return surface[0].lower() + surface[1:]
    return surface


def surface_of(term: TermInfo, rng: random.Random, synonym_share: float) -> tuple[str, Literal["name", "synonym"]]:
    exact = [s for s, scope in zip(term.synonyms, term.synonym_scopes, strict=False) if scope.upper() == "EXACT"]
    if exact and rng.random() < synonym_share:
        return _in_sentence(rng.choice(sorted(exact))), "synonym"
    return _in_sentence(term.name), "name"


def _listing(items: Sequence[str]) -> tuple[str, list[int]]:
    """"a, b and c" and the offset of each item in it."""
    text, offsets = "", []
    for i, item in enumerate(items):
        if i:
            text += " and " if i == len(items) - 1 else ", "
        offsets.append(len(text))
        text += item
    return text, offsets


def write_note(case_id: str, present: Sequence[str], absent: Sequence[str], terms: Mapping[str, TermInfo],
               seed: int = 0, synonym_share: float = 0.5) -> Note:
    """The note of one case (terms missing from ``terms`` are left out of it)."""
    rng = random.Random(f"{seed}:{case_id}")
    sentences: list[str] = []
    placed: list[Placed] = []
    offset = 0

    def add(sentence: str, items: list[tuple[str, str, str, int]], negation: str | None = None) -> None:
        nonlocal offset
        for term, surface, field, at in items:
            placed.append(Placed(term, "absent" if negation else "present", surface, offset + at,
                                 offset + at + len(surface), field, negation))  # type: ignore[arg-type]
        sentences.append(sentence)
        offset += len(sentence) + 1  # the space between sentences

    shown = [t for t in present if t in terms]
    for i in range(0, len(shown), PER_SENTENCE):
        chunk = shown[i:i + PER_SENTENCE]
        surfaces = [surface_of(terms[t], rng, synonym_share) for t in chunk]
        listing, offsets = _listing([s for s, _ in surfaces])
        template = rng.choice(PRESENT_OPENINGS)
        at = template.index("{}")
        add(template.format(listing), [(t, s, f, at + o) for t, (s, f), o in zip(chunk, surfaces, offsets,
                                                                                  strict=True)])
    for t in (t for t in absent if t in terms):
        surface, field = surface_of(terms[t], rng, synonym_share)
        negation = rng.choice(sorted(NEGATIONS))
        template = NEGATIONS[negation]
        if template.startswith("{}"):
            surface = surface[0].upper() + surface[1:]
        add(template.format(surface), [(t, surface, field, template.index("{}"))], negation)
    return Note(" ".join(sentences), tuple(placed))
