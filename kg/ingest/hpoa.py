"""Parse HPO's ``phenotype.hpoa`` into plain rows, then fold them into typical and excluded edges.

Excluded (the disease's "excluded set"): a ``NOT`` qualifier, a frequency of ``0/n`` or ``0%``, or the
frequency term HP:0040285 "Excluded". Everything else is typical (``HAS_PHENOTYPE``).

The file repeats some disease–phenotype pairs (other onset, sex, reference…). We keep **one edge per
(disease, phenotype, relation)** and fold the rows into it: list properties hold every distinct
onset / sex / modifier / evidence code / reference / raw frequency, ``frequency`` is the numerically
highest stated frequency, and ``source_rows`` counts the rows folded in, so edge counts reconcile
with the source exactly: ``sum(source_rows) == data rows``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kg.errors import SourceFormatError
from kg.ids import HPO_ID
from kg.ingest.obo import shipped_file

COLUMNS = ("database_id", "disease_name", "qualifier", "hpo_id", "reference", "evidence", "onset",
           "frequency", "sex", "modifier", "aspect", "biocuration")
SOURCES = {"OMIM": "OMIM", "ORPHA": "ORPHA", "DECIPHER": "DECIPHER"}
ASPECTS = {"P": "phenotypic abnormality", "I": "mode of inheritance", "C": "clinical course",
           "M": "clinical modifier", "H": "past medical history"}
EXCLUDED_FREQUENCY = "HP:0040285"
# HPO frequency terms → the midpoint of the range HPO gives for each.
FREQUENCY_TERMS = {
    "HP:0040280": 1.0,     # Obligate (100%)
    "HP:0040281": 0.895,   # Very frequent (80-99%)
    "HP:0040282": 0.545,   # Frequent (30-79%)
    "HP:0040283": 0.17,    # Occasional (5-29%)
    "HP:0040284": 0.025,   # Very rare (1-4%)
    EXCLUDED_FREQUENCY: 0.0,  # Excluded (0%)
}
_RATIO = re.compile(r"^(\d+)/(\d+)$")
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")
_DISEASE_ID = re.compile(r"^(OMIM|ORPHA|DECIPHER):\S+$")


@dataclass(frozen=True, slots=True)
class AnnotationRow:
    line: int
    disease_id: str
    disease_name: str
    negated: bool
    hpo_id: str
    references: tuple[str, ...]
    evidence: str
    onset: str
    frequency: str
    sex: str
    modifier: tuple[str, ...]
    aspect: str
    biocuration: str

    @property
    def source(self) -> str:
        return SOURCES[self.disease_id.split(":", 1)[0]]

    @property
    def frequency_value(self) -> float | None:
        return frequency_value(self.frequency)

    @property
    def excluded(self) -> bool:
        return self.negated or self.frequency == EXCLUDED_FREQUENCY or self.frequency_value == 0.0


@dataclass(frozen=True)
class HpoaHeader:
    version: str = ""
    description: str = ""
    hpo_version: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def frequency_value(text: str) -> float | None:
    """``"3/7"`` → 0.43, ``"25%"`` → 0.25, ``"HP:0040281"`` → 0.895, ``""`` → None."""
    if not text:
        return None
    if text in FREQUENCY_TERMS:
        return FREQUENCY_TERMS[text]
    if m := _RATIO.match(text):
        num, den = int(m.group(1)), int(m.group(2))
        return num / den if den else None
    if m := _PERCENT.match(text):
        return float(m.group(1)) / 100.0
    return None


def _check_frequency(path: Path, line: int, text: str) -> None:
    if not text or text in FREQUENCY_TERMS:
        return
    if m := _RATIO.match(text):
        if int(m.group(2)) == 0 or int(m.group(1)) > int(m.group(2)):
            raise SourceFormatError(path, line, f"impossible frequency {text!r}")
        return
    if m := _PERCENT.match(text):
        if float(m.group(1)) > 100:
            raise SourceFormatError(path, line, f"impossible frequency {text!r}")
        return
    if HPO_ID.match(text):
        raise SourceFormatError(path, line, f"{text} is not an HPO frequency term (HP:0040280–HP:0040285)")
    raise SourceFormatError(path, line, f"unreadable frequency {text!r} (expected n/m, x%, or HP:00402xx)")


def read_header(path: Path) -> HpoaHeader:
    values: dict[str, str] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            key, _, value = line[1:].partition(":")
            values[key.strip()] = value.strip().strip('"')
    return HpoaHeader(version=values.pop("version", ""), description=values.pop("description", ""),
                      hpo_version=values.pop("hpo-version", ""), extra=values)


def iter_annotations(path: Path) -> Iterator[AnnotationRow]:
    """Yield one row per data line; a malformed line raises :class:`SourceFormatError` with its number."""
    if not path.exists():
        raise SourceFormatError(path, None, "file not found")
    seen_header = False
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            for number, raw in enumerate(fh, start=1):
                line = raw.rstrip("\r\n")
                if not line or line.startswith("#"):
                    continue
                cells = line.split("\t")
                if not seen_header and cells[0] == "database_id":
                    if tuple(c.strip() for c in cells) != COLUMNS:
                        raise SourceFormatError(path, number, f"unexpected header {cells!r}")
                    seen_header = True
                    continue
                yield _parse_row(path, number, cells)
    except UnicodeDecodeError as exc:
        raise SourceFormatError(path, None, f"not UTF-8 text: {exc}") from exc


def _parse_row(path: Path, number: int, cells: list[str]) -> AnnotationRow:
    if len(cells) != len(COLUMNS):
        raise SourceFormatError(path, number, f"expected {len(COLUMNS)} tab-separated columns, got {len(cells)}")
    c = dict(zip(COLUMNS, (x.strip() for x in cells), strict=True))
    if not _DISEASE_ID.match(c["database_id"]):
        raise SourceFormatError(path, number, f"unknown disease id {c['database_id']!r} (OMIM:, ORPHA:, DECIPHER:)")
    if not HPO_ID.match(c["hpo_id"]):
        raise SourceFormatError(path, number, f"malformed HPO id {c['hpo_id']!r}")
    if c["qualifier"] not in ("", "NOT"):
        raise SourceFormatError(path, number, f"unknown qualifier {c['qualifier']!r} (expected empty or NOT)")
    if c["aspect"] not in ASPECTS:
        raise SourceFormatError(path, number, f"unknown aspect {c['aspect']!r} (expected one of P I C M H)")
    if c["onset"] and not HPO_ID.match(c["onset"]):
        raise SourceFormatError(path, number, f"malformed onset id {c['onset']!r}")
    if c["sex"] and c["sex"].upper() not in ("MALE", "FEMALE"):
        raise SourceFormatError(path, number, f"unknown sex {c['sex']!r}")
    _check_frequency(path, number, c["frequency"])
    return AnnotationRow(
        line=number,
        disease_id=c["database_id"],
        disease_name=c["disease_name"],
        negated=c["qualifier"] == "NOT",
        hpo_id=c["hpo_id"],
        references=tuple(r for r in c["reference"].split(";") if r),
        evidence=c["evidence"],
        onset=c["onset"],
        frequency=c["frequency"],
        sex=c["sex"].upper(),
        modifier=tuple(m for m in c["modifier"].split(";") if m),
        aspect=c["aspect"],
        biocuration=c["biocuration"],
    )


def parse_hpoa(path: Path | None = None) -> tuple[HpoaHeader, list[AnnotationRow]]:
    path = Path(path) if path else shipped_file("phenotype.hpoa")
    rows = list(iter_annotations(path))
    return read_header(path), rows


@dataclass(slots=True)
class FoldedEdge:
    """One ``HAS_PHENOTYPE`` or ``EXCLUDES`` edge built from one or more source rows."""

    disease: str
    phenotype: str
    relation: str
    aspect: str
    source_rows: int = 0
    frequency: float | None = None
    frequencies: list[str] = field(default_factory=list)
    onsets: list[str] = field(default_factory=list)
    sexes: list[str] = field(default_factory=list)
    modifiers: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    negated: bool = False

    def add(self, row: AnnotationRow) -> None:
        self.source_rows += 1
        self.negated = self.negated or row.negated
        value = row.frequency_value
        if value is not None and (self.frequency is None or value > self.frequency):
            self.frequency = value
        for target, items in ((self.frequencies, (row.frequency,)), (self.onsets, (row.onset,)),
                              (self.sexes, (row.sex,)), (self.modifiers, row.modifier),
                              (self.evidence, (row.evidence,)), (self.references, row.references)):
            for item in items:
                if item and item not in target:
                    target.append(item)

    def props(self) -> dict[str, object]:
        return {"aspect": self.aspect, "source_rows": self.source_rows, "frequency": self.frequency,
                "frequencies": self.frequencies, "onsets": self.onsets, "sexes": self.sexes,
                "modifiers": self.modifiers, "evidence": self.evidence, "references": self.references,
                "negated": self.negated}


def fold(rows: Iterable[AnnotationRow], resolve: dict[str, str] | None = None) -> list[FoldedEdge]:
    """Fold rows into edges, one per (disease, phenotype, relation), in first-seen order.

    ``resolve`` maps alternative / obsolete ids to current ones (ids missing from it are kept as is).
    """
    edges: dict[tuple[str, str, str], FoldedEdge] = {}
    for row in rows:
        phenotype = resolve.get(row.hpo_id, row.hpo_id) if resolve else row.hpo_id
        relation = "EXCLUDES" if row.excluded else "HAS_PHENOTYPE"
        key = (row.disease_id, phenotype, relation)
        edge = edges.get(key)
        if edge is None:
            edge = edges[key] = FoldedEdge(row.disease_id, phenotype, relation, row.aspect)
        edge.add(row)
    return list(edges.values())


def diseases(rows: Iterable[AnnotationRow]) -> list[dict[str, str]]:
    """One dict per disease (first name seen wins), in first-seen order."""
    seen: dict[str, dict[str, str]] = {}
    for row in rows:
        if row.disease_id not in seen:
            seen[row.disease_id] = {"id": row.disease_id, "name": row.disease_name, "source": row.source}
    return list(seen.values())
