"""Search text keys: fields, stop words, spelling variants, word keys, ids; the term protocol and the
hit record every search returns."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from kg.tokens import normalise_token

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
    """What the indexes need of a term (``kg.repo.snapshots.TermInfo`` and ``kg.ingest.obo.TermRow`` both fit)."""

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
