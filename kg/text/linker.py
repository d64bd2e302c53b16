"""Free text -> phenotype mentions: a dictionary linker over term names and synonyms, with negation.

The linker indexes every name and synonym of the given terms in a *token trie*: each lexicon string is
split into word tokens (and the rare hard punctuation such as "," or "/" that it contains) and each token
is reduced to a normalised key, so matching is:

* **whole-word**: a match starts and ends on token boundaries ("effusion" never matches inside "effusions"
  by substring, only by the plural rule below);
* **case-insensitive**, accent-insensitive, with hyphens, Unicode dashes, apostrophes and any run of
  whitespace/newlines between words treated alike ("non-small" == "non small", "Crohn's" == "Crohn");
  a blank line or other punctuation between two words ends a match unless the lexicon string has it too;
* **plural/singular-insensitive** for every token ("seizures" == "Seizure", "effusions", "emboli" ==
  "embolus", "vertebrae", "metastases" == "metastasis") and British/American spelling-insensitive
  ("oedema", "haemorrhage", "tumour", "diarrhoea");
* **longest wins**: at each token the longest lexicon string is found; overlapping candidates are then
  resolved by preferring the longer span (in characters), then the earlier one, so the output never
  overlaps ("left lower lobe pneumonia" beats "pneumonia" if both are terms).

Short abbreviations ("ASD", "ALL", "PACs": at most 7 characters with two or more capitals) match only
when the text has exactly the same case, and never inside a run of all-capital words (an all-caps report
writes "ALL LINES IN PLACE").  Strings shorter than ``min_length`` characters, strings without letters and
the ordinary-English words in :data:`AMBIGUOUS_SURFACES` are not indexed.

When several lexicon strings share one normalised form the choice is deterministic and independent of
input order: first a string that equals the text exactly up to case and separators ("lipomas" picks the
synonym "Lipomas" of *Multiple lipomas* over the name "Lipoma"), then a term whose *name* has the form over
one whose *synonym* has it, then the lexicographically lowest id ("ASD", a synonym of both HP:0000729 and
HP:0001631, links to HP:0000729).

Each mention is then passed to :func:`kg.text.negation.detect` to set ``negated`` / ``uncertain``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Final, NamedTuple

from kg.text.negation import detect
from kg.tokens import normalise_token

__all__ = ["AMBIGUOUS_SURFACES", "Linker", "Mention", "TermLabels", "normalise_token"]


@dataclass(frozen=True)
class TermLabels:
    """What the linker is built from: one term's id, primary name and synonyms."""

    id: str
    name: str
    synonyms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mention:
    """One phenotype mention: ``text == original_text[start:end]``."""

    start: int
    end: int
    text: str
    id: str
    name: str
    matched: str  # the lexicon string that matched (the name or one synonym)
    field: str  # "name" or "synonym"
    negated: bool
    uncertain: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


#: Normalised single-word surface forms that are, in running text, almost always ordinary English rather
#: than the phenotype (HPO lists e.g. "Falls" and "Cutting" as synonyms).  They are never indexed.
AMBIGUOUS_SURFACES: Final[frozenset[str]] = frozenset(
    {
        "anger", "boil", "corn", "cutting", "fisting", "hopping", "hostile", "inertia", "jumping", "languor",
        "limp", "mole", "panting", "rosette", "sad", "sleepy", "squint", "tearing", "tired", "trance",
        "piles", "spells", "spell", "manic", "fits", "fit", "cowlick", "falls", "fall", "shyness",
        "overjet", "intoe", "arranging", "bouncing", "collecting", "ordering", "spinning", "twirling",
        "mouthing", "stereotyped",
    }
)

# --------------------------------------------------------------------------------------------------------
# Token normalisation
# --------------------------------------------------------------------------------------------------------

# A word, or one "hard" punctuation character.  Whitespace, hyphens/dashes and apostrophes are soft
# separators and produce no token.
_TOKEN_RE: Final = re.compile(r"[^\W_]+|[^\w\s\-‐‑‒–—―−'’‘`´]|_")
_APOSTROPHES: Final = "'’‘`´"
_BLANK_LINE_RE: Final = re.compile(r"\n[ \t\r\f\v]*\n")
_PUNCT_MAP: Final = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "（": "(", "）": ")"})
_FOLD_SPLIT_RE: Final = re.compile(r"[\W_]+")
_PLAIN_RE: Final = re.compile(r"[A-Za-z0-9]+(?: [A-Za-z0-9]+)*")
_CASE_PREFIX: Final = "\x01"  # keys of case-sensitive (abbreviation) tokens
_END: Final = ""  # trie key holding the entry of a complete lexicon string



def _is_abbreviation(surface: str) -> bool:
    """Short strings with two or more capitals ("ASD", "ALL", "PACs", "ccTGA") match case-sensitively.

    A capitalised first word of several ("Low T4") is a sentence's capital, not part of an abbreviation:
    it is not counted, so "low T4" in running text still matches."""
    compact = "".join(surface.split())
    if len(compact) > 7:
        return False
    words = surface.split()
    if len(words) > 1 and words[0][:1].isupper() and words[0][1:].islower():
        compact = "".join(words[1:])
    upper = sum(c.isupper() for c in compact)
    lower = sum(c.islower() for c in compact)
    return upper >= 2 and upper >= lower


class _Tok(NamedTuple):
    start: int
    end: int
    raw: str
    key: str | None  # None for a hard break (blank line): nothing matches across it
    word: bool


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    for m in _TOKEN_RE.finditer(text):
        s, e = m.start(), m.end()
        raw = m.group()
        if out and "\n" in text[pos:s] and _BLANK_LINE_RE.search(text, pos, s):
            out.append(_Tok(pos, pos, "", None, False))
        pos = e
        if raw[0].isalnum():
            # possessive "'s" is dropped: "Crohn's disease" == "Crohn disease"
            if raw in ("s", "S") and s > 0 and text[s - 1] in _APOSTROPHES and out and out[-1].end == s - 1:
                continue
            out.append(_Tok(s, e, raw, normalise_token(raw), True))
        else:
            ch = raw.translate(_PUNCT_MAP)
            out.append(_Tok(s, e, raw, ch, False))
    return out


def _lexicon_keys(surface: str, case_sensitive: bool) -> tuple[str, ...]:
    """The trie path of one lexicon string (same tokenisation as :func:`_tokens`, single line)."""
    if _PLAIN_RE.fullmatch(surface):  # fast path: words and single spaces only
        words = surface.split(" ")
        if case_sensitive:
            return tuple(_CASE_PREFIX + w for w in words)
        return tuple(normalise_token(w) for w in words)
    keys: list[str] = []
    prev_end = -2
    for m in _TOKEN_RE.finditer(surface):
        raw = m.group()
        if raw[0].isalnum():
            s = m.start()
            if raw in ("s", "S") and s > 0 and surface[s - 1] in _APOSTROPHES and prev_end == s - 1:
                continue
            keys.append(_CASE_PREFIX + raw if case_sensitive else normalise_token(raw))
        else:
            keys.append(raw.translate(_PUNCT_MAP))
        prev_end = m.end()
    return tuple(keys)


_AMBIGUOUS_KEYS: Final[frozenset[str]] = frozenset(normalise_token(w) for w in AMBIGUOUS_SURFACES)

# --------------------------------------------------------------------------------------------------------
# The linker
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    id: str
    name: str
    matched: str
    field: str
    case_sensitive: bool
    fold: str  # the surface case-folded, separators collapsed: tells "Lipomas" from "Lipoma"

    @property
    def rank(self) -> tuple[int, str]:
        return (0 if self.field == "name" else 1, self.id)


class Linker:
    """Finds phenotype mentions in text; build once (about 1 s for the full HPO), then call ``annotate``."""

    def __init__(self, terms: Iterable[TermLabels], *, min_length: int = 3) -> None:
        self.min_length = min_length
        entries: dict[tuple[str, ...], list[_Entry]] = {}
        for term in terms:
            for surface, field in self._surfaces(term):
                case_sensitive = _is_abbreviation(surface)
                keys = _lexicon_keys(surface, case_sensitive)
                if keys:
                    entry = _Entry(term.id, term.name, surface, field, case_sensitive, _fold(surface))
                    entries.setdefault(keys, []).append(entry)
        self._trie: dict[str, object] = {}
        for keys, group in entries.items():
            node = self._trie
            for key in keys:
                child = node.get(key)
                if child is None:
                    child = {}
                    node[key] = child
                node = child  # type: ignore[assignment]
            if len(group) > 1:
                group.sort(key=lambda e: e.rank)
            # one entry per exact surface (the best-ranked), best overall first
            best_per_surface: dict[str, _Entry] = {}
            for entry in group:
                best_per_surface.setdefault(entry.fold, entry)
            node[_END] = tuple(best_per_surface.values())
        self._size = len(entries)

    def _surfaces(self, term: TermLabels) -> Iterator[tuple[str, str]]:
        seen: set[str] = set()
        for surface, field in [(term.name, "name"), *((s, "synonym") for s in term.synonyms)]:
            surface = " ".join(surface.split())
            if surface in seen or len(surface) < self.min_length or not any(c.isalpha() for c in surface):
                continue
            seen.add(surface)
            if " " not in surface and normalise_token(surface) in _AMBIGUOUS_KEYS:
                continue
            yield surface, field

    @property
    def size(self) -> int:
        """Number of distinct surface forms indexed (after normalisation)."""
        return self._size

    def annotate(self, text: str) -> list[Mention]:
        """Mentions in ``text``, sorted by start, non-overlapping, with negation/uncertainty set."""
        found = self._find(text)
        if not found:
            return []
        flags = detect(text, [(s, e) for s, e, _ in found])
        return [
            Mention(s, e, text[s:e], ent.id, ent.name, ent.matched, ent.field, neg, unc)
            for (s, e, ent), (neg, unc) in zip(found, flags, strict=True)
        ]

    def annotate_many(self, texts: Iterable[str]) -> list[list[Mention]]:
        return [self.annotate(t) for t in texts]

    # ----------------------------------------------------------------------------------------------------

    def _find(self, text: str) -> list[tuple[int, int, _Entry]]:
        toks = _tokens(text)
        n = len(toks)
        root = self._trie
        candidates: list[tuple[int, int, _Entry]] = []  # (first token, last token + 1, entry)
        for i in range(n):
            best: tuple[int, _Entry] | None = None
            # depth-first over the (at most two) keys of each token: normalised and exact-case
            stack: list[tuple[int, dict[str, object]]] = [(i, root)]
            while stack:
                j, node = stack.pop()
                if j > i:
                    group = node.get(_END)
                    if isinstance(group, tuple):
                        entry = _pick(group, text, toks[i].start, toks[j - 1].end)
                        if best is None or j > best[0] or (j == best[0] and entry.rank < best[1].rank):
                            best = (j, entry)
                if j >= n:
                    continue
                tok = toks[j]
                if tok.key is None:
                    continue
                child = node.get(tok.key)
                if isinstance(child, dict):
                    stack.append((j + 1, child))
                if tok.word and not tok.raw.islower():
                    child = node.get(_CASE_PREFIX + tok.raw)
                    if isinstance(child, dict):
                        stack.append((j + 1, child))
            if best is not None:
                j, entry = best
                if entry.case_sensitive and _in_caps_run(toks, i, j):
                    continue
                candidates.append((i, j, entry))
        if not candidates:
            return []
        # longest span first (characters), then leftmost; keep what does not overlap
        candidates.sort(key=lambda c: (-(toks[c[1] - 1].end - toks[c[0]].start), toks[c[0]].start))
        taken = [False] * n
        chosen: list[tuple[int, int, _Entry]] = []
        for i, j, entry in candidates:
            if any(taken[i:j]):
                continue
            for k in range(i, j):
                taken[k] = True
            chosen.append((toks[i].start, toks[j - 1].end, entry))
        chosen.sort(key=lambda c: c[0])
        return chosen


def _fold(surface: str) -> str:
    return " ".join(_FOLD_SPLIT_RE.split(surface.casefold())).strip()


def _pick(group: tuple[_Entry, ...], text: str, start: int, end: int) -> _Entry:
    """The entry whose exact surface is the text ("lipomas" -> "Lipomas"), else the best-ranked one."""
    if len(group) > 1:
        folded = _fold(text[start:end])
        for entry in group:
            if entry.fold == folded:
                return entry
    return group[0]


def _in_caps_run(toks: list[_Tok], i: int, j: int) -> bool:
    """Whether tokens [i, j) sit between ALL-CAPS words (shouting text, where case says nothing)."""
    neighbours: list[str] = []
    for k in range(i - 1, -1, -1):
        if toks[k].key is None:
            break
        if toks[k].word and any(c.isalpha() for c in toks[k].raw):
            neighbours.append(toks[k].raw)
            break
    for k in range(j, len(toks)):
        if toks[k].key is None:
            break
        if toks[k].word and any(c.isalpha() for c in toks[k].raw):
            neighbours.append(toks[k].raw)
            break
    return bool(neighbours) and all(len(w) >= 2 and w.isupper() for w in neighbours)
