"""NegEx / ConText-style negation and uncertainty detection for concept mentions in clinical text.

``detect(text, spans)`` answers, for each character span (a concept mention found by the linker), whether
the text asserts it as absent (*negated*) and/or does not assert it as definitely present (*uncertain*:
hedged, hypothetical or questioned).  It is a rule-based algorithm in the spirit of NegEx (Chapman et al.,
J Biomed Inform 2001) and ConText (Harkema et al., J Biomed Inform 2009):

1. The text is tokenised (words, punctuation) and split into sentences; semicolons, colons and
   *terminator* phrases ("but", "however", "except", "there is", ...) end a trigger's scope too.
2. Trigger phrases are found left to right, longest first, over the tokens that are *not* part of a
   mention (so "Absent thumb" or "No social interaction", being phenotype names, never trigger).
   *Pseudo-triggers* ("no change in", "gram negative", "not only", "partially resolved") are matched
   the same way and simply swallow the words, so the shorter trigger inside them never fires.
3. A forward trigger ("no", "without", "possible") covers the mentions after it up to the end of its
   sentence/clause, a terminator, or a trigger with another effect (so "No pneumothorax, pleural effusion or
   consolidation" negates all three, while "No pneumothorax; small effusion" does not reach the effusion).
   A backward trigger ("was ruled out", "is not seen", "has resolved", "cannot be excluded") covers the
   mentions before it in the clause; after a singular copula ("effusion *is* not seen") the scope also stops
   at a comma, so "Possible pneumonia, effusion is not seen" negates only the effusion.
4. Some triggers set both flags ("no definite", "unlikely", "less likely"): probably absent.

Design decisions (each backed by the NegEx/ConText test set labels or radiology usage):

* "rule out X", "r/o X", "evaluate for X" are *hypothetical*, not negations: the NegEx test set labels
  "Rule out mucocele" as affirmed.  We report them as ``uncertain``.  "X was ruled out" is a negation.
* "resolved" / "resolution of" negate (the finding is no longer present: "Interval resolution of the right
  lower lobe pneumonia", "Pneumonia has resolved", "Resolved left pleural effusion"), but "resolving",
  "partially resolved", "near complete resolution" do not.
* "stable", "unchanged", "no change in", "no interval change" never negate ("Small left pleural effusion,
  unchanged" is a present effusion).
* Windows are limited (``PRE_WINDOW`` / ``POST_WINDOW`` words, a mention counting as one word) so that a
  trigger never reaches across a long run-on sentence.

The trigger lists below are module-level data; extend them rather than the code.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "BIDIRECTIONAL_UNCERTAINTY",
    "POST_NEGATED_UNCERTAINTY",
    "POST_NEGATION",
    "POST_UNCERTAINTY",
    "PRE_NEGATED_UNCERTAINTY",
    "PRE_NEGATION",
    "PRE_UNCERTAINTY",
    "PSEUDO_TRIGGERS",
    "TERMINATORS",
    "Trigger",
    "detect",
    "find_triggers",
]

# --------------------------------------------------------------------------------------------------------
# Trigger lexicon.  Phrases are written in plain lower case; they are tokenised with the same tokeniser as
# the text, so hyphens and spaces are interchangeable ("rule-out" == "rule out"), "can't" == "cannot" ==
# "can not", and possessive "'s" is ignored.  The longest phrase wins where several start at one word.
# --------------------------------------------------------------------------------------------------------

#: Negate mentions that FOLLOW them ("No pleural effusion", "without consolidation", "denies fever").
PRE_NEGATION: Final[tuple[str, ...]] = (
    "no", "not", "without", "w/o", "nor", "neither", "never", "none of",
    "no evidence of", "no evidence for", "no evidence to suggest", "no radiographic evidence of",
    "no sign of", "no signs of", "no suggestion of", "no findings of", "no findings to suggest",
    "no suspicious", "no abnormal", "no history of", "no h/o", "no new", "no longer",
    "negative for", "neg for", "-ve for", "ve for", "free of", "clear of", "absence of", "lack of", "lacks",
    "lacked",
    "denies", "denied", "deny", "denying", "denies any", "patient denies",
    "fails to reveal", "failed to reveal", "fails to demonstrate", "failed to demonstrate",
    "did not show", "does not show", "do not show", "did not reveal", "does not reveal",
    "did not demonstrate", "does not demonstrate", "not demonstrate",
    "ruled out for", "rules out", "has ruled out", "resolution of", "interval resolution of",
    "complete resolution of", "unremarkable for", "there is no", "there are no", "there was no",
    "is negative for", "was negative for", "were negative for", "tested negative for",
)

#: Negate mentions that PRECEDE them ("Pneumothorax is not seen", "Pneumonia was ruled out").
POST_NEGATION: Final[tuple[str, ...]] = (
    "absent", "none", "negative", "free",
    "not seen", "not identified", "not visualized", "not visualised", "not demonstrated",
    "not appreciated", "not evident", "not present", "not detected", "not observed", "not noted",
    "not apparent", "not found", "not visible", "not shown", "not elicited", "not confirmed",
    "not demonstrable", "not been seen", "not been identified", "not been demonstrated",
    "no longer seen", "no longer present", "no longer visualized", "no longer identified",
    "no longer evident", "no longer visible", "no longer apparent", "no longer demonstrated",
    "ruled out", "been ruled out", "was ruled out", "were ruled out", "is ruled out", "are ruled out",
    "excluded", "been excluded", "was excluded", "were excluded",
    "resolved", "has resolved", "have resolved", "now resolved", "completely resolved",
    "cleared", "has cleared", "have cleared", "disappeared", "has disappeared", "is gone", "are gone",
    "was negative", "were negative", "is negative", "are negative", "has been negative",
)

#: Hedge or hypothesise the mentions that FOLLOW them ("Possible pneumonia", "Cannot exclude early
#: pneumonia", "Rule out pneumothorax", "suspicious for malignancy").
PRE_UNCERTAINTY: Final[tuple[str, ...]] = (
    "possible", "possibly", "probable", "probably", "likely", "most likely", "more likely", "presumed",
    "presumably", "presumptive", "suspected", "suspect", "suspicious for", "suspicious of",
    "suspicion of", "suspicion for", "concern for", "concerning for", "worrisome for", "worrying for",
    "suggestive of", "suggesting", "suggests", "suggest", "suggestion of", "may", "maybe", "might", "could",
    "can represent", "question", "question of", "questionable", "questioned", "query",
    "cannot exclude", "can not exclude", "could not exclude", "does not exclude", "do not exclude",
    "not exclude", "cannot rule out", "could not rule out", "does not rule out", "difficult to exclude",
    "not possible to exclude", "rule out", "r/o", "to rule out", "to exclude", "evaluate for",
    "evaluation for", "evaluate for possible", "assess for", "to assess for", "check for",
    "differential diagnosis", "differential diagnosis includes", "differential includes",
    "differential considerations include", "ddx", "considerations include", "consider", "considered",
    "consideration of", "equivocal", "equivocal for", "indeterminate", "uncertain", "borderline",
    "in case of", "if", "risk of", "risk for", "at risk for", "watch for",
    "monitor for", "not certain whether", "not certain if", "not sure if", "not clear whether",
    "whether or not", "either", "likely due to", "likely related to", "likely secondary to",
    "probably due to", "probably related to", "probably secondary to", "possibly due to",
    "possibly related to", "likely representing", "likely represents", "likely reflecting",
    "favor", "favors", "favoring", "favored", "favour", "favours", "favouring", "favoured",
    "correlate for", "correlate clinically for", "clinically correlate for", "clinical correlation for",
    "correlation for", "differential diagnosis of", "raises the possibility of", "possibility of",
    "cannot be distinguished from", "not distinguishable from", "indistinguishable from",
)

#: Hedge the mentions that PRECEDE them ("Pneumonia cannot be excluded", "effusion is suspected").
POST_UNCERTAINTY: Final[tuple[str, ...]] = (
    "cannot be excluded", "can not be excluded", "could not be excluded", "not excluded",
    "not be excluded", "not been excluded", "cannot be ruled out", "can not be ruled out",
    "could not be ruled out", "not ruled out", "not be ruled out", "not been ruled out",
    "is possible", "are possible", "is suspected", "are suspected", "is questioned", "is considered",
    "is a consideration", "are considerations", "is suggested", "may be present", "is not certain",
    "not well seen", "not well visualized", "not well visualised", "not well evaluated",
    "not clearly seen", "not clearly visualized", "not assessed", "not evaluated", "is likely",
    "are likely", "is probable", "is questionable", "is equivocal", "is indeterminate",
    "would be difficult to exclude", "not entirely excluded", "if present", "if any",
    "difficult to exclude", "difficult to entirely exclude", "hard to exclude", "not entirely exclude",
    "difficult to rule out", "in the differential", "is in the differential", "are in the differential",
    "in the differential diagnosis", "could have this appearance", "may have this appearance",
    "could be present", "could account for", "may account for", "would be a consideration",
    "should be considered", "not completely excluded", "not totally excluded", "not entirely ruled out",
)

#: Hedge mentions on BOTH sides, a few words each way ("atelectasis versus pneumonia", "pneumonia?").
BIDIRECTIONAL_UNCERTAINTY: Final[tuple[str, ...]] = (
    "versus", "vs", "vs.", "v.", "?", "and/or", "or possibly", "or less likely",
)

#: Negate AND hedge the mentions that follow ("No definite pleural effusion": probably absent).
PRE_NEGATED_UNCERTAINTY: Final[tuple[str, ...]] = (
    "no definite", "no definitive", "no convincing", "no clear", "no clear evidence of",
    "no definite evidence of", "not definitely", "not definite", "without definite",
    "without convincing", "probably not", "likely not", "unlikely", "less likely", "doubt",
    "no conclusive", "not convincingly", "low suspicion for", "low suspicion of", "low probability of",
    "low probability for", "low likelihood of",
)

#: Negate AND hedge the mentions that precede ("Pneumonia is unlikely").
POST_NEGATED_UNCERTAINTY: Final[tuple[str, ...]] = (
    "is unlikely", "is less likely", "not likely", "is not likely", "doubtful",
    "is doubtful", "not definitely seen", "not definitely identified", "not convincingly seen",
    "not convincingly identified", "probably resolved", "likely resolved",
)

#: Look like triggers but are not ("No change in the small effusion", "gram negative rods").
PSEUDO_TRIGGERS: Final[tuple[str, ...]] = (
    "no change", "no significant change", "no interval change", "no significant interval change",
    "no definite change", "no appreciable change", "no substantial change", "no suspicious change",
    "no other change", "no apparent change", "no visible change", "no increase", "no significant increase",
    "no decrease", "no significant decrease", "no interval increase", "no interval decrease",
    "not changed", "not significantly changed", "not significant change", "not substantially changed",
    "not appreciably changed", "not increased", "not only", "not necessarily", "not limited to",
    "not otherwise specified", "not extend", "not cause", "not drain", "not been changed",
    "without difficulty", "without change", "without interval change", "without significant change",
    "without any change", "without appreciable change", "with or without",
    "without significant interval change", "without substantial change", "without definite change",
    "almost completely resolved", "nearly completely resolved", "not entirely resolved", "gram negative",
    "negative deflection", "negative deflections", "heme negative", "no doubt", "without doubt",
    "resolving", "partially resolved", "partial resolution", "partially resolving", "incompletely resolved",
    "incomplete resolution", "not resolved", "not completely resolved", "not fully resolved",
    "not yet resolved", "nearly resolved", "almost resolved", "largely resolved", "mostly resolved",
    "near complete resolution", "near resolution", "near total resolution", "slowly resolving",
    "not improved", "not improving", "free air", "free fluid", "free intraperitoneal air",
    "free intraperitoneal fluid", "free wall", "free edge", "free margin", "free water",
    "not exclusively", "negative predictive", "age indeterminate", "indeterminate age",
)

#: End the scope of any trigger ("No effusion, but there is consolidation").
TERMINATORS: Final[tuple[str, ...]] = (
    "but", "however", "although", "though", "except", "except for", "with the exception of",
    "apart from", "aside from", "other than", "besides", "yet", "nevertheless", "nonetheless", "still",
    "whereas", "which", "cause of", "cause for", "causes of",
    "etiology of", "etiology for", "source of", "source for", "reason for", "origin of", "as a cause",
    "there is", "there are", "there was", "there were", "there has been", "there have been",
    "there appears", "there appear", "there remains", "there remain", "there may be", "there might be",
    "concerning", "given", "presents", "presented", "presenting", "complains", "complained",
    "unchanged", "stable", "remained", "remains", "remain", "positive for", "positive", "again seen",
    "again noted", "is seen", "are seen", "is noted", "are noted", "is present", "are present",
    "is identified", "are identified", "is demonstrated", "is again seen", "are again seen",
)

#: Scope limits, in words (a mention counts as one word, punctuation as none).
PRE_WINDOW: Final[int] = 15
POST_WINDOW: Final[int] = 10
BIDIRECTIONAL_WINDOW: Final[int] = 4

Direction = Literal["forward", "backward", "both", "none"]


@dataclass(frozen=True, slots=True)
class Trigger:
    """One trigger occurrence: token range [first, last) in the tokenised text and what it does."""

    first: int
    last: int
    start: int  # character offsets of the phrase in the original text
    end: int
    phrase: str  # the lexicon phrase (normalised)
    direction: Direction
    negated: bool
    uncertain: bool
    terminates: bool  # a terminator: ends scopes, has no effect of its own


# --------------------------------------------------------------------------------------------------------
# Tokenisation
# --------------------------------------------------------------------------------------------------------

_WORD: Final = "word"
_PUNCT: Final = "punct"
_BOUNDARY: Final = "boundary"

# Words (letters/digits, with an optional apostrophe part: "can't", "patient's"), or any single other
# non-space character except hyphens/dashes and apostrophes, which are treated as spaces.
_TOKEN_RE = re.compile(r"[^\W_]+(?:['’‘][^\W_]+)?|[^\w\s\-‐‑‒–—'’‘`´]|_")
_DASHES = str.maketrans({c: "-" for c in "‐‑‒–—―−"})
_QUOTES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "“": '"', "”": '"'})
_CONTRACTIONS: Final[dict[str, tuple[str, ...]]] = {
    "can't": ("can", "not"), "cannot": ("can", "not"), "won't": ("will", "not"),
    "shan't": ("shall", "not"), "ain't": ("is", "not"),
}
# Words before a "." that do not end a sentence ("vs. pneumonia", "Dr. Smith", "e.g. effusion").
_ABBREVIATIONS: Final[frozenset[str]] = frozenset(
    {"dr", "mr", "mrs", "ms", "vs", "v", "e", "g", "i", "approx", "cf", "al", "fig", "st", "resp", "incl",
     "esp", "appt", "pt", "pts", "hx", "sx", "dx", "tx", "ca", "yr", "yrs", "mo", "wk", "wks", "min"}
)
# Words that, ending a line, continue the sentence on the next line ("no effusion or\npneumothorax") ...
_LINE_END_CONTINUATION: Final[frozenset[str]] = frozenset(
    {"and", "or", "nor", "of", "the", "a", "an", "with", "without", "no", "not", "to", "for", "in", "on",
     "at", "by", "from", "versus", "vs", "as", "is", "are", "was", "were", "be", "been", "but", "than",
     "possible", "probable", "likely", "any", "small", "large", "left", "right", "bilateral", "mild",
     "moderate", "severe", "minimal", "trace", "focal", "new", "evidence", "suggest", "suggestive",
     "concerning", "concern", "suspicious", "consistent", "compatible", "which", "that", "may", "could",
     "might", "there", "has", "have", "had", "very", "definite", "significant", "acute"}
)
# ... and words that, starting a line, continue the previous one ("no effusion\nor pneumothorax").
_LINE_START_CONTINUATION: Final[frozenset[str]] = frozenset(
    {"and", "or", "nor", "of", "with", "without", "versus", "vs", "than", "to", "for", "in", "on", "at",
     "by", "from", "as", "is", "are", "was", "were", "be", "been", "which", "that", "but", "including"}
)
_BULLET_RE = re.compile(r"\s*(?:[-*•·]|\d{1,2}[.)]|[A-Za-z][A-Za-z /&]{0,40}:)")
_FIRST_WORD_RE = re.compile(r"\s*([^\W_]+)")
_DIGIT_AHEAD_RE = re.compile(r"\s*\d")
_BLANK_LINE_RE = re.compile(r"\n[ \t\r\f\v]*\n")


@dataclass(slots=True)
class _Token:
    start: int
    end: int
    norm: str
    kind: str  # _WORD, _PUNCT or _BOUNDARY


def _normalise_word(raw: str) -> tuple[str, ...]:
    word = raw.translate(_QUOTES).lower()
    if word in _CONTRACTIONS:
        return _CONTRACTIONS[word]
    if "'" in word:
        head, _, tail = word.partition("'")
        if tail == "t" and head.endswith("n"):  # isn't, doesn't, wasn't, didn't
            return (head[:-1], "not")
        if tail in {"s", "d", "ll", "re", "ve", "m"}:  # patient's, it'll: keep the head only
            return (head,)
        return (head + tail,)
    return (word,)


def _is_sentence_dot(text: str, tokens: list[_Token], k: int) -> bool:
    """Whether the "." at ``text[k]`` ends a sentence."""
    nxt = k + 1
    if nxt < len(text) and not (text[nxt].isspace() or text[nxt] in "\"')]}"):
        return False  # 2.5 cm, e.g., a.m.
    if tokens and tokens[-1].kind == _WORD and tokens[-1].end == k:
        prev = tokens[-1].norm
        if prev in _ABBREVIATIONS:
            return False
        if prev == "no" and _DIGIT_AHEAD_RE.match(text, nxt):  # "No. 2"
            return False
    return True


def _line_break_is_boundary(text: str, tokens: list[_Token], nl_end: int, blank: bool) -> bool:
    if blank:
        return True
    if _BULLET_RE.match(text, nl_end):
        return True
    prev = tokens[-1] if tokens else None
    if prev is None or prev.kind != _WORD or prev.norm in _LINE_END_CONTINUATION:
        return False
    m = _FIRST_WORD_RE.match(text, nl_end)
    if m is None or not m.group(1)[0].isupper():
        return False
    return m.group(1).lower() not in _LINE_START_CONTINUATION


def _tokenise(text: str) -> list[_Token]:
    """Words and punctuation with sentence/segment boundaries marked as _BOUNDARY tokens."""
    text_n = text.translate(_DASHES)
    tokens: list[_Token] = []
    pos = 0
    for m in _TOKEN_RE.finditer(text_n):
        gap = text_n[pos : m.start()]
        if "\n" in gap and tokens and tokens[-1].kind != _BOUNDARY:
            blank = _BLANK_LINE_RE.search(gap) is not None
            if _line_break_is_boundary(text_n, tokens, m.start() - len(gap) + gap.rfind("\n") + 1, blank):
                at = pos + gap.index("\n")
                tokens.append(_Token(at, at, "\n", _BOUNDARY))
        pos = m.end()
        raw = m.group()
        if raw[0].isalnum():
            for part in _normalise_word(raw):
                tokens.append(_Token(m.start(), m.end(), part, _WORD))
            continue
        ch = raw.translate(_QUOTES)
        if ch in "!" or (ch == "." and _is_sentence_dot(text_n, tokens, m.start())):
            tokens.append(_Token(m.start(), m.end(), ch, _BOUNDARY))
        elif ch == "?":
            # "?pneumonia" hedges the next word; "pneumonia?" hedges and ends the sentence.
            attached = m.end() < len(text_n) and text_n[m.end()].isalnum()
            tokens.append(_Token(m.start(), m.end(), "?", _PUNCT))
            if not attached:
                tokens.append(_Token(m.end(), m.end(), "?", _BOUNDARY))
        else:
            tokens.append(_Token(m.start(), m.end(), ch, _PUNCT))
    return tokens


def _phrase_tokens(phrase: str) -> tuple[str, ...]:
    return tuple(t.norm for t in _tokenise(phrase) if t.kind != _BOUNDARY or t.norm == ".")


# --------------------------------------------------------------------------------------------------------
# Trigger index
# --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Rule:
    phrase: str
    direction: Direction
    negated: bool
    uncertain: bool
    terminates: bool


def _rules() -> Iterable[tuple[tuple[str, ...], _Rule]]:
    # Later groups override earlier ones for an identical phrase; order from weakest to strongest claim.
    groups: list[tuple[tuple[str, ...], Direction, bool, bool, bool]] = [
        (TERMINATORS, "none", False, False, True),
        (PRE_NEGATION, "forward", True, False, False),
        (POST_NEGATION, "backward", True, False, False),
        (PRE_UNCERTAINTY, "forward", False, True, False),
        (POST_UNCERTAINTY, "backward", False, True, False),
        (BIDIRECTIONAL_UNCERTAINTY, "both", False, True, False),
        (PRE_NEGATED_UNCERTAINTY, "forward", True, True, False),
        (POST_NEGATED_UNCERTAINTY, "backward", True, True, False),
        (PSEUDO_TRIGGERS, "none", False, False, False),
    ]
    for phrases, direction, neg, unc, term in groups:
        for phrase in phrases:
            toks = _phrase_tokens(phrase)
            if toks:
                yield toks, _Rule(phrase, direction, neg, unc, term)


# Bidirectional hedges that are also ordinary forward ones when they start a phrase ("likely atelectasis")
# and backward ones after the mention ("atelectasis, likely").
_BOTH_WAYS: Final[frozenset[str]] = frozenset(
    {"possible", "probable", "likely", "suspected", "questionable", "unlikely", "less likely"}
)

# Backward triggers that, with no mention before them in their clause, apply to what follows instead.
_ALSO_LEADING: Final[frozenset[str]] = frozenset({"resolved", "completely resolved", "cleared"})

_END: Final = ""


def _build_trie() -> dict[str, object]:
    trie: dict[str, object] = {}
    for toks, rule in _rules():
        node = trie
        for tok in toks:
            child = node.get(tok)
            if child is None:
                child = {}
                node[tok] = child
            assert isinstance(child, dict)
            node = child
        old = node.get(_END)
        same_group = isinstance(old, _Rule) and (
            (old.direction, old.negated, old.uncertain, old.terminates)
            == (rule.direction, rule.negated, rule.uncertain, rule.terminates)
        )
        if not same_group:  # a later group overrides; within a group the first spelling is kept
            node[_END] = rule
    return trie


_TRIE: Final[dict[str, object]] = _build_trie()


def _match_triggers(tokens: Sequence[_Token], masked: Sequence[bool]) -> list[Trigger]:
    out: list[Trigger] = []
    n = len(tokens)
    i = 0
    while i < n:
        if masked[i] or tokens[i].kind == _BOUNDARY:
            i += 1
            continue
        node: dict[str, object] = _TRIE
        best: tuple[int, _Rule] | None = None
        j = i
        while j < n and not masked[j] and tokens[j].kind != _BOUNDARY:
            child = node.get(tokens[j].norm)
            if not isinstance(child, dict):
                break
            node = child
            j += 1
            rule = node.get(_END)
            if isinstance(rule, _Rule):
                best = (j, rule)
        if best is None:
            i += 1
            continue
        j, rule = best
        direction: Direction = rule.direction
        if rule.phrase in _BOTH_WAYS:
            direction = "both"
        out.append(Trigger(i, j, tokens[i].start, tokens[j - 1].end, rule.phrase, direction, rule.negated,
                           rule.uncertain, rule.terminates))
        i = j
    return out


# --------------------------------------------------------------------------------------------------------
# Scopes
# --------------------------------------------------------------------------------------------------------

_SINGULAR_COPULA: Final[frozenset[str]] = frozenset({"is", "was", "has", "remains", "appears", "seems"})


def _is_stop(tok: _Token) -> bool:
    return tok.kind == _BOUNDARY or (tok.kind == _PUNCT and tok.norm in {";", ":"})


def _ends_forward_scope(trig: Trigger, other: Trigger, tokens: Sequence[_Token]) -> bool:
    """Whether trigger ``other`` (met inside ``trig``'s forward scope) ends that scope."""
    if other.terminates or not (other.negated or other.uncertain):
        return True  # terminator or pseudo-trigger
    if trig.negated and not other.negated:
        # "No opacity to suggest pneumonia" stays negated; "No pneumothorax, possible effusion" does not.
        return other.first > 0 and tokens[other.first - 1].norm == ","
    return (other.negated, other.uncertain) != (trig.negated, trig.uncertain) and not trig.negated


def _forward_scope(tokens: Sequence[_Token], weight: Sequence[int], trig: Trigger,
                   starts: dict[int, Trigger], window: int) -> tuple[int, int]:
    lo = trig.last
    k = lo
    used = 0
    n = len(tokens)
    while k < n:
        if _is_stop(tokens[k]) or tokens[k].norm == ")":
            break
        other = starts.get(k)
        if other is not None and _ends_forward_scope(trig, other, tokens):
            break
        used += weight[k]
        if used > window:
            break
        k += 1
    return lo, k


def _backward_scope(tokens: Sequence[_Token], weight: Sequence[int], trig: Trigger,
                    ends: dict[int, Trigger], window: int) -> tuple[int, int]:
    hi = trig.first
    k = hi - 1
    used = 0
    prev_word = next((t.norm for t in reversed(tokens[:hi]) if t.kind == _WORD), "")
    comma_stops = prev_word in _SINGULAR_COPULA or trig.phrase.split(" ", 1)[0] in _SINGULAR_COPULA
    while k >= 0:
        tok = tokens[k]
        if _is_stop(tok) or (comma_stops and tok.norm == ","):
            break
        if k + 1 in ends:  # another trigger ends right here
            break
        used += weight[k]
        if used > window:
            break
        k -= 1
    return k + 1, hi


def _colon_backward(tokens: Sequence[_Token], trig: Trigger) -> tuple[int, int] | None:
    """"Pneumothorax: none." / "Fever: no" - a trigger right after a colon that covers the label."""
    if trig.first == 0 or tokens[trig.first - 1].norm != ":":
        return None
    after = trig.last
    if after < len(tokens) and not _is_stop(tokens[after]):
        return None
    k = trig.first - 2
    while k >= 0 and not _is_stop(tokens[k]):
        k -= 1
    return k + 1, trig.first - 1


def _adjacent_before(
    tokens: Sequence[_Token], masked: Sequence[bool], trig: Trigger
) -> tuple[int, int] | None:
    """"Atelectasis, likely." - a hedge word closing a clause right after a mention covers that mention."""
    after = trig.last
    if after < len(tokens) and not (_is_stop(tokens[after]) or tokens[after].norm == ","):
        return None
    k = trig.first - 1
    if k >= 0 and tokens[k].norm == ",":
        k -= 1
    if k < 0 or not masked[k]:
        return None
    lo = k
    while lo > 0 and masked[lo - 1]:
        lo -= 1
    return lo, k + 1


def _scopes(tokens: Sequence[_Token], masked: Sequence[bool], weight: Sequence[int],
            triggers: Sequence[Trigger]) -> list[tuple[int, int, bool, bool]]:
    """``(lo, hi, negated, uncertain)`` token ranges covered by the triggers."""
    starts = {t.first: t for t in triggers}
    ends = {t.last: t for t in triggers}
    forward: dict[int, tuple[int, int]] = {}
    for idx, trig in enumerate(triggers):
        if trig.direction in ("forward", "both") and (trig.negated or trig.uncertain):
            win = BIDIRECTIONAL_WINDOW if trig.direction == "both" and trig.phrase not in _BOTH_WAYS \
                else PRE_WINDOW
            forward[idx] = _forward_scope(tokens, weight, trig, starts, win)
    negating = [forward[i] for i, t in enumerate(triggers) if i in forward and t.negated]
    scopes: list[tuple[int, int, bool, bool]] = []
    for idx, trig in enumerate(triggers):
        if trig.terminates or not (trig.negated or trig.uncertain):
            continue
        if idx in forward:
            lo, hi = forward[idx]
            inside_negation = trig.direction == "forward" and not trig.negated and any(
                nlo <= trig.first < nhi for nlo, nhi in negating
            )
            if trig.direction == "forward" and not any(masked[lo:hi]):
                colon = _colon_backward(tokens, trig)
                if colon is not None:
                    lo, hi = colon
            # "No opacity to suggest pneumonia": the hedge belongs to the negated statement.
            if not inside_negation:
                scopes.append((lo, hi, trig.negated, trig.uncertain))
        if trig.direction in ("backward", "both"):
            if trig.phrase in _BOTH_WAYS:
                rng = _adjacent_before(tokens, masked, trig)
                if rng is not None:
                    scopes.append((rng[0], rng[1], trig.negated, trig.uncertain))
                continue
            win = POST_WINDOW if trig.direction == "backward" else BIDIRECTIONAL_WINDOW
            colon = _colon_backward(tokens, trig) if trig.direction == "backward" else None
            lo, hi = colon if colon is not None else _backward_scope(tokens, weight, trig, ends, win)
            if trig.phrase in _ALSO_LEADING and not any(masked[lo:hi]):
                # "Resolved left pleural effusion": nothing before it, so it qualifies what follows
                lo, hi = _forward_scope(tokens, weight, trig, starts, PRE_WINDOW)
            scopes.append((lo, hi, trig.negated, trig.uncertain))
    return scopes


def detect(text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[bool, bool]]:
    """``(negated, uncertain)`` for each ``(start, end)`` character span of ``text``.

    Spans are the concept mentions; their words never act as triggers.  Spans may be given in any order
    and may overlap.  Empty or out-of-range spans get ``(False, False)``.
    """
    if not spans:
        return []
    tokens = _tokenise(text)
    n = len(tokens)
    masked = [False] * n
    span_tokens: list[tuple[int, int] | None] = []
    starts_at = [t.start for t in tokens]
    for s, e in spans:
        if e <= s:
            span_tokens.append(None)
            continue
        a = bisect.bisect_left(starts_at, s)
        # include a token that starts before s but overlaps it
        if a > 0 and tokens[a - 1].end > s:
            a -= 1
        b = a
        first = last = -1
        while b < n and tokens[b].start < e:
            if tokens[b].end > s and tokens[b].kind != _BOUNDARY:
                masked[b] = True
                if first < 0:
                    first = b
                last = b
            b += 1
        span_tokens.append((first, last) if first >= 0 else None)

    weight = [0] * n
    for k, tok in enumerate(tokens):
        if masked[k]:
            weight[k] = 0 if k > 0 and masked[k - 1] else 1
        elif tok.kind == _WORD:
            weight[k] = 1

    scopes = _scopes(tokens, masked, weight, _match_triggers(tokens, masked))

    out: list[tuple[bool, bool]] = []
    for rng in span_tokens:
        if rng is None:
            out.append((False, False))
            continue
        first, last = rng
        neg = unc = False
        for lo, hi, n_flag, u_flag in scopes:
            if first < hi and last >= lo:
                neg = neg or n_flag
                unc = unc or u_flag
        out.append((neg, unc))
    return out


def find_triggers(text: str, spans: Sequence[tuple[int, int]] = ()) -> list[Trigger]:
    """The trigger phrases found in ``text`` (outside ``spans``); for debugging and explanations."""
    tokens = _tokenise(text)
    masked = [any(t.start < e and t.end > s for s, e in spans) for t in tokens]
    return _match_triggers(tokens, masked)

