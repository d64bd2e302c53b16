"""Mention-style paraphrases of HPO grouping-term labels, for knowledge-encoder training pairs.

HPO names its organ- and structure-level grouping terms "Abnormality of the skin", "Abnormal heart
morphology", "Hearing abnormality"; papers and notes say "cutaneous abnormalities", "cardiac malformations",
"auditory manifestations". Ontology attributes (names, synonyms, definitions) rarely contain the plural,
adjectival forms, so a contrastive encoder trained on them alone learns to separate phenotypes by their
specific words and has no signal that a generic phrase names the grouping term.

:func:`paraphrases` rewrites a label that matches one of five grouping patterns into a few lower-case
mention-style phrases: the subject (and its clinical adjective from :data:`ADJECTIVES`, when listed) followed
by a plural head noun suited to the pattern (morphology → malformations, physiology → dysfunction). Labels of
any other shape give nothing. Pure string code: no torch, deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

__all__ = ["ADJECTIVES", "MAX_PER_TERM", "paraphrases", "paraphrases_of_labels"]

MAX_PER_TERM: Final = 6
"""At most this many paraphrases per phenotype (over all its labels)."""

# Standard clinical adjectives of anatomical nouns (lower case). A subject not listed keeps its noun form only.
ADJECTIVES: Final[Mapping[str, tuple[str, ...]]] = {
    "abdomen": ("abdominal",),
    "abdominal wall": ("abdominal wall",),
    "adrenal gland": ("adrenal",),
    "adrenal glands": ("adrenal",),
    "anus": ("anal",),
    "aorta": ("aortic",),
    "bladder": ("bladder", "vesical"),
    "blood": ("hematological", "haematological"),
    "blood and blood-forming tissues": ("hematological",),
    "bone": ("skeletal", "bone"),
    "bones": ("skeletal", "bone"),
    "brain": ("cerebral", "brain"),
    "breast": ("breast", "mammary"),
    "cardiovascular system": ("cardiovascular",),
    "cerebellum": ("cerebellar",),
    "cerebral cortex": ("cortical",),
    "cornea": ("corneal",),
    "dentition": ("dental",),
    "digestive system": ("gastrointestinal", "digestive"),
    "ear": ("ear", "otic", "aural"),
    "endocrine system": ("endocrine",),
    "eye": ("ocular", "eye", "ophthalmic"),
    "eyelid": ("eyelid", "palpebral"),
    "face": ("facial", "craniofacial"),
    "gastrointestinal tract": ("gastrointestinal",),
    "genital system": ("genital",),
    "genitourinary system": ("genitourinary", "urogenital"),
    "hair": ("hair",),
    "hand": ("hand",),
    "head": ("head", "cranial"),
    "head and neck": ("craniofacial",),
    "hearing": ("auditory", "hearing"),
    "heart": ("cardiac", "heart"),
    "immune system": ("immunological", "immune"),
    "integument": ("cutaneous", "integumentary", "skin"),
    "intestine": ("intestinal",),
    "jaw": ("jaw", "mandibular"),
    "joints": ("joint", "articular"),
    "kidney": ("renal", "kidney"),
    "larynx": ("laryngeal",),
    "lens": ("lens", "lenticular"),
    "limbs": ("limb",),
    "lip": ("lip", "labial"),
    "liver": ("hepatic", "liver"),
    "lung": ("pulmonary", "lung"),
    "lungs": ("pulmonary", "lung"),
    "lymphatic system": ("lymphatic",),
    "mandible": ("mandibular",),
    "maxilla": ("maxillary",),
    "metabolism/homeostasis": ("metabolic",),
    "mouth": ("oral",),
    "musculature": ("muscular", "muscle"),
    "muscle": ("muscular", "muscle"),
    "nail": ("nail", "ungual"),
    "nails": ("nail", "ungual"),
    "neck": ("neck", "cervical"),
    "nervous system": ("neurological", "neurologic", "nervous system"),
    "nose": ("nasal",),
    "optic nerve": ("optic nerve",),
    "ovary": ("ovarian",),
    "palate": ("palatal",),
    "pancreas": ("pancreatic",),
    "pelvis": ("pelvic",),
    "peripheral nervous system": ("peripheral nerve", "neuropathic"),
    "pharynx": ("pharyngeal",),
    "pituitary gland": ("pituitary",),
    "prenatal development or birth": ("prenatal", "perinatal"),
    "respiratory system": ("respiratory",),
    "retina": ("retinal",),
    "skeletal system": ("skeletal",),
    "skin": ("cutaneous", "skin", "dermatological"),
    "skull": ("cranial", "skull"),
    "spinal cord": ("spinal cord",),
    "spine": ("spinal", "vertebral"),
    "spleen": ("splenic",),
    "stomach": ("gastric",),
    "teeth": ("dental", "tooth"),
    "testis": ("testicular",),
    "thorax": ("thoracic", "chest"),
    "thyroid gland": ("thyroid",),
    "tongue": ("tongue", "lingual"),
    "upper limb": ("upper limb", "arm"),
    "lower limb": ("lower limb", "leg"),
    "ureter": ("ureteral",),
    "urethra": ("urethral",),
    "urinary system": ("urinary", "urological"),
    "uterus": ("uterine",),
    "vasculature": ("vascular",),
    "vertebral column": ("vertebral", "spinal"),
    "voice": ("voice", "vocal"),
}

# (pattern, plural head nouns) in order of precedence; the subject is group "x".
_PATTERNS: Final[tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]] = (
    (re.compile(r"^abnormal (?P<x>.+?) morphology$"), ("malformations", "abnormalities", "anomalies")),
    (re.compile(r"^abnormal (?P<x>.+?) physiology$"), ("dysfunction", "abnormalities")),
    (re.compile(r"^(?:abnormality|abnormalities|anomaly|anomalies) of (?:the )?(?P<x>.+)$"),
     ("abnormalities", "manifestations", "anomalies")),
    (re.compile(r"^(?P<x>.+?) (?:abnormality|abnormalities|anomaly|anomalies)$"),
     ("abnormalities", "manifestations", "anomalies")),
    (re.compile(r"^abnormal (?P<x>.+)$"), ("abnormalities",)),
)


# "Abnormality of cardiac morphology": the subject is "cardiac".
_STRUCTURE_SUFFIX: Final = re.compile(r" (?:morphology|physiology|structure|function)$")


def _clean(label: str) -> str:
    return " ".join(label.casefold().split()).strip(" .,;:")


def paraphrases(label: str) -> list[str]:
    """Mention-style phrases for ``label`` when it has a grouping shape, most natural first; else ``[]``.

    >>> paraphrases("Abnormality of the skin")[:3]
    ['cutaneous abnormalities', 'skin abnormalities', 'cutaneous manifestations']
    """
    text = _clean(label)
    for pattern, heads in _PATTERNS:
        match = pattern.match(text)
        if match is None:
            continue
        subject = _STRUCTURE_SUFFIX.sub("", match.group("x")).strip()
        if not subject:
            return []
        forms = list(dict.fromkeys((*ADJECTIVES.get(subject, ()), subject)))
        out: list[str] = []
        # Interleave so the first few phrases vary both the subject form and the head noun.
        for head_index, head in enumerate(heads):
            for form in forms[: 2 if head_index == 0 else 1]:
                out.append(f"{form} {head}")
        return [p for p in dict.fromkeys(out) if p != text]
    return []


def paraphrases_of_labels(labels: Iterable[str], *, limit: int = MAX_PER_TERM) -> list[str]:
    """Paraphrases of a phenotype's labels (name first, then synonyms), deduplicated, at most ``limit``."""
    labels = tuple(labels)
    seen: dict[str, None] = {}
    own = {_clean(label) for label in labels}
    for label in labels:
        for phrase in paraphrases(label):
            if phrase not in own:
                seen.setdefault(phrase)
            if len(seen) >= limit:
                return list(seen)
    return list(seen)
