"""The curated chest X-ray knowledge pack: CheXpert findings mapped to HPO typical and excluded sets.

Pure code: parse the packaged JSON into pydantic models, check every id against the ids of a loaded ontology,
and turn the pack into plain dict rows that a graph loader can ``UNWIND``. No database, no torch.

``hpo`` holds a finding's defining ids (CXR:pneumonia → HP:0002090 Pneumonia); ``typical`` the phenotypes a
radiologist expects to see with it; ``excluded`` the phenotypes whose presence argues against it. A finding is
stored like a disease: each defining id becomes an obligate ``HAS_PHENOTYPE`` link (frequency 1.0, rationale
"defining term"; the JSON keeps defining ids out of ``typical``, the validator forbids repeating them), each
typical phenotype a ``HAS_PHENOTYPE`` link with no stated frequency, each excluded one an ``EXCLUDES`` link.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from datetime import date
from importlib.resources import files
from pathlib import Path
from typing import Literal, NamedTuple, TypedDict

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kg import errors
from kg.ids import is_hpo_id

__all__ = [
    "DEFINING_FREQUENCY",
    "DEFINING_RATIONALE",
    "FINDING_ID_RE",
    "PACK_SOURCE",
    "FindingRow",
    "LinkRow",
    "PackPhenotype",
    "PackRelease",
    "PackRows",
    "PackValidationError",
    "XrayFinding",
    "XrayPack",
    "finding_rows",
    "link_rows",
    "load_pack",
    "pack_errors",
    "pack_rows",
    "structural_errors",
    "validate_pack",
]

FINDING_ID_RE = re.compile(r"^CXR:[a-z][a-z0-9_]*$")
PACK_SOURCE = "CXR_PACK"
# A finding's defining term is obligate for it: the Pneumonia phenotype always goes with the Pneumonia finding.
DEFINING_FREQUENCY = 1.0
DEFINING_RATIONALE = "defining term"

ListName = Literal["hpo", "typical", "excluded"]


class PackValidationError(errors.ValidationError):
    """The pack is malformed or names ids the ontology does not accept; ``errors`` lists every problem."""

    def __init__(self, errors: list[str], source: str | None = None) -> None:
        self.errors = list(errors)
        self.source = source
        head = f"invalid chest X-ray pack{f' {source}' if source else ''}"
        super().__init__(f"{head} ({len(self.errors)} problem(s)):\n  " + "\n  ".join(self.errors))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class PackPhenotype(_Model):
    """One phenotype in a typical or excluded set, with the curator's reason."""

    id: str
    rationale: str = Field(min_length=1)


class XrayFinding(_Model):
    """One CheXpert finding (or "No finding") with its HPO mapping and phenotype sets."""

    id: str
    label: str = Field(min_length=1)
    chexpert: str = Field(min_length=1)
    hpo: list[str] = Field(default_factory=list)
    rationale: str = Field(min_length=1)
    typical: list[PackPhenotype] = Field(default_factory=list)
    excluded: list[PackPhenotype] = Field(default_factory=list)

    @property
    def typical_ids(self) -> list[str]:
        return [p.id for p in self.typical]

    @property
    def excluded_ids(self) -> list[str]:
        return [p.id for p in self.excluded]


class PackRelease(_Model):
    """One version of the pack and what changed in it (curation notes, newest release first in the file)."""

    version: str
    changes: list[str] = Field(min_length=1)


class XrayPack(_Model):
    """The whole pack: metadata plus findings in a fixed order."""

    name: str
    version: str
    hpo_release_checked: date
    description: str
    license: str
    changelog: list[PackRelease] = Field(default_factory=list)
    findings: list[XrayFinding]

    def finding(self, finding_id: str) -> XrayFinding:
        for f in self.findings:
            if f.id == finding_id:
                return f
        raise KeyError(finding_id)

    def by_chexpert(self) -> dict[str, XrayFinding]:
        return {f.chexpert: f for f in self.findings}

    def phenotype_ids(self) -> set[str]:
        """Every HPO id the pack mentions (mappings, typical and excluded sets)."""
        return {i for f in self.findings for i in (*f.hpo, *f.typical_ids, *f.excluded_ids)}


def _lists(f: XrayFinding) -> list[tuple[ListName, list[str]]]:
    return [("hpo", f.hpo), ("typical", f.typical_ids), ("excluded", f.excluded_ids)]


def structural_errors(pack: XrayPack) -> list[str]:
    """Problems visible without an ontology: malformed or repeated ids, an id both typical and excluded."""
    errors: list[str] = []
    seen_ids: dict[str, int] = {}
    seen_chexpert: dict[str, int] = {}
    for n, f in enumerate(pack.findings):
        if not FINDING_ID_RE.match(f.id):
            errors.append(f"finding #{n} {f.id!r}: malformed finding id (expected 'CXR:' + lower_snake_case)")
        if f.id in seen_ids:
            errors.append(f"finding #{n} {f.id}: duplicate finding id (first at finding #{seen_ids[f.id]})")
        else:
            seen_ids[f.id] = n
        if f.chexpert in seen_chexpert:
            errors.append(
                f"finding #{n} {f.id}: duplicate chexpert label {f.chexpert!r} "
                f"(first at finding #{seen_chexpert[f.chexpert]})"
            )
        else:
            seen_chexpert[f.chexpert] = n
        for list_name, ids in _lists(f):
            counted: set[str] = set()
            for hpo_id in ids:
                if not is_hpo_id(hpo_id):
                    errors.append(f"{f.id} {list_name}: malformed id {hpo_id!r} (expected HP: and 7 digits)")
                if hpo_id in counted:
                    errors.append(f"{f.id} {list_name}: {hpo_id} is listed more than once")
                counted.add(hpo_id)
        for hpo_id in sorted(set(f.typical_ids) & set(f.excluded_ids)):
            errors.append(f"{f.id} typical/excluded: {hpo_id} is in both the typical and the excluded set")
        own = set(f.hpo)
        for list_name, ids in _lists(f)[1:]:
            for hpo_id in sorted(own & set(ids)):
                errors.append(
                    f"{f.id} {list_name}: {hpo_id} is the finding's own hpo id (the loader adds it as a defining term)"
                )
    return errors


def pack_errors(pack: XrayPack, known_ids: Mapping[str, str | None]) -> list[str]:
    """Every problem in ``pack``, structural and against the ontology; empty when the pack is valid.

    ``known_ids`` maps each id the loaded ontology knows to ``None`` when it is a current term, to the id
    that replaces it when it is obsolete or an alternative id, or to ``""`` when it is obsolete with no
    replacement.
    """
    errors = structural_errors(pack)
    for f in pack.findings:
        for list_name, ids in _lists(f):
            for hpo_id in dict.fromkeys(ids):
                if not is_hpo_id(hpo_id):
                    continue  # already reported as malformed
                if hpo_id not in known_ids:
                    errors.append(f"{f.id} {list_name}: {hpo_id} is not an id of the loaded ontology")
                    continue
                target = known_ids[hpo_id]
                if target is None:
                    continue
                if target:
                    errors.append(
                        f"{f.id} {list_name}: {hpo_id} is obsolete or an alternative id; use {target}"
                    )
                else:
                    errors.append(f"{f.id} {list_name}: {hpo_id} is obsolete and has no replacement")
    return errors


def validate_pack(
    pack: XrayPack, known_ids: Mapping[str, str | None], *, raise_on_error: bool = True
) -> list[str]:
    """Check ``pack`` against ``known_ids`` (see :func:`pack_errors`).

    Raises :class:`PackValidationError` listing every problem (each naming the finding id, the list and the
    bad id); with ``raise_on_error=False`` returns the problems instead. A valid pack returns ``[]``.
    """
    errors = pack_errors(pack, known_ids)
    if errors and raise_on_error:
        raise PackValidationError(errors, source=f"{pack.name} {pack.version}")
    return errors


def load_pack(path: Path | None = None) -> XrayPack:
    """Parse the pack at ``path`` (default: the one shipped in ``kg/data``) and check its structure.

    Ontology checks need the loaded ontology: call :func:`validate_pack` for those.
    """
    if path is None:
        resource = files("kg") / "data" / "chest_xray_pack.json"
        source, text = str(resource), resource.read_text(encoding="utf-8")
    else:
        source, text = str(path), Path(path).read_text(encoding="utf-8")
    try:
        pack = XrayPack.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise PackValidationError([f"not valid JSON: {exc}"], source=source) from exc
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise PackValidationError(problems, source=source) from exc
    errors = structural_errors(pack)
    if errors:
        raise PackValidationError(errors, source=source)
    return pack


class FindingRow(TypedDict):
    id: str
    name: str
    source: str
    chexpert: str
    rationale: str
    hpo: list[str]


class LinkRow(TypedDict):
    disease: str
    phenotype: str
    relation: Literal["HAS_PHENOTYPE", "EXCLUDES"]
    rationale: str
    evidence: str
    frequency: float | None  # DEFINING_FREQUENCY / number of defining ids for a defining term; None otherwise


class PackRows(NamedTuple):
    findings: list[FindingRow]
    links: list[LinkRow]


def finding_rows(pack: XrayPack) -> Iterator[FindingRow]:
    """One row per finding, for ``UNWIND $rows AS r MERGE (d:Disease {id: r.id}) SET d += r``."""
    for f in pack.findings:
        yield FindingRow(
            id=f.id,
            name=f.label,
            source=PACK_SOURCE,
            chexpert=f.chexpert,
            rationale=f.rationale,
            hpo=list(f.hpo),
        )


def link_rows(pack: XrayPack) -> Iterator[LinkRow]:
    """One row per link, finding by finding in pack order: its defining ids (``HAS_PHENOTYPE``, frequency
    :data:`DEFINING_FREQUENCY` when it has one, split evenly between alternatives such as a lung lesion's
    nodule or mass; rationale :data:`DEFINING_RATIONALE`), then its typical (``HAS_PHENOTYPE``, no stated
    frequency) and excluded (``EXCLUDES``) phenotypes."""
    for f in pack.findings:
        for hpo_id in f.hpo:
            yield LinkRow(
                disease=f.id,
                phenotype=hpo_id,
                relation="HAS_PHENOTYPE",
                rationale=DEFINING_RATIONALE,
                evidence="curated",
                frequency=DEFINING_FREQUENCY / len(f.hpo),
            )
        for p in f.typical:
            yield LinkRow(
                disease=f.id,
                phenotype=p.id,
                relation="HAS_PHENOTYPE",
                rationale=p.rationale,
                evidence="curated",
                frequency=None,
            )
        for p in f.excluded:
            yield LinkRow(
                disease=f.id,
                phenotype=p.id,
                relation="EXCLUDES",
                rationale=p.rationale,
                evidence="curated",
                frequency=None,
            )


def pack_rows(pack: XrayPack) -> PackRows:
    """Both row kinds at once: ``(findings, links)``."""
    return PackRows(list(finding_rows(pack)), list(link_rows(pack)))
