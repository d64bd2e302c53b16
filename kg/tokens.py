"""The matching key of a word token, shared by the text linker, the search index and the disease-name index:
case and accents folded, British spellings and plurals reduced (``Haemorrhages`` → ``hemorrhage``)."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

_IRREGULAR: Final[dict[str, str]] = {
    "emboli": "embolus", "thrombi": "thrombus", "calculi": "calculus", "bronchi": "bronchus",
    "bronchioli": "bronchiolus", "nuclei": "nucleus", "foci": "focus", "fungi": "fungus",
    "bacilli": "bacillus", "diverticula": "diverticulum", "septa": "septum", "bacteria": "bacterium",
    "teeth": "tooth", "feet": "foot", "children": "child", "women": "woman", "phalanges": "phalanx",
    "indices": "index", "apices": "apex", "vertices": "vertex", "cervices": "cervix",
    "appendices": "appendix", "ganglia": "ganglion", "criteria": "criterion", "stigmata": "stigma",
    "lumina": "lumen", "foramina": "foramen", "viscera": "viscus", "corpora": "corpus", "labia": "labium",
    "crura": "crus", "testes": "testis", "ova": "ovum", "ilia": "ilium", "atria": "atrium",
    "menisci": "meniscus", "hila": "hilum", "ostia": "ostium", "sulci": "sulcus",
    "gyri": "gyrus", "villi": "villus", "alveoli": "alveolus", "cilia": "cilium", "papillae": "papilla",
}
# Species names that look like "-ae" plurals: "Streptococcus pneumoniae" is not pneumonia.
_LATIN_GENITIVES: Final[frozenset[str]] = frozenset(
    {"pneumoniae", "influenzae", "chlamydiae", "legionellae", "salmonellae", "neisseriae", "klebsiellae",
     "meningitidae", "gonorrhoeae", "gonorrheae", "aeruginosae", "vaginae"}
)
_SPELLING: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"^oe(?=[a-z]{3})"), "e"),  # oedema, oesophagus, oestrogen
    (re.compile(r"aem"), "em"),  # haemorrhage, anaemia, ischaemic, leukaemia
    (re.compile(r"paed"), "ped"),
    (re.compile(r"foet"), "fet"),
    (re.compile(r"oea"), "ea"),  # diarrhoea, dyspnoea
    (re.compile(r"^coel"), "cel"),  # coeliac
    (re.compile(r"^aet"), "et"),  # aetiology
    (re.compile(r"anaes"), "anes"),
    (re.compile(r"gynaec"), "gynec"),
    (re.compile(r"^(tum|behavi|col|od|hum|vap)our"), r"\1or"),
    (re.compile(r"isation"), "ization"),
    (re.compile(r"^(fib|cent|calib|lit|met)re(s?)$"), r"\1er\2"),
    (re.compile(r"yse$"), "yze"),
)


def _singular(word: str) -> str:
    if len(word) < 4 or not word.isalpha():
        return word
    irregular = _IRREGULAR.get(word)
    if irregular is not None:
        return irregular
    if word.endswith("thoraces"):
        return word[:-3] + "x"  # pneumothoraces -> pneumothorax
    if word.endswith("sses"):
        return word[:-2]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "zes")):
        return word[:-2]
    if word.endswith("sis"):
        return word[:-3] + "se"  # metastasis / metastases -> metastase
    if word.endswith("ae") and len(word) > 4 and word not in _LATIN_GENITIVES:
        return word[:-1]  # vertebrae -> vertebra
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


_KEY_CACHE: dict[str, str] = {}


def normalise_token(raw: str) -> str:
    """The matching key of one word token: case/accents folded, British spelling and plurals reduced."""
    key = _KEY_CACHE.get(raw)
    if key is not None:
        return key
    word = raw.casefold()
    if not word.isascii():
        word = "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))
        word = word.replace("ß", "ss").replace("æ", "ae").replace("œ", "oe").replace("ø", "o")
    for pattern, repl in _SPELLING:
        if pattern.search(word):
            word = pattern.sub(repl, word)
    key = _singular(word)
    if len(_KEY_CACHE) < 500_000:
        _KEY_CACHE[raw] = key
    return key
