"""Versioned, checksummed Cypher migrations: ``migrations/V0001__name.cypher`` applied once, in order.

Each applied migration is recorded as ``(:Migration {version, name, checksum, applied_at})``. A file
whose checksum no longer matches what was applied is refused: migrations are immutable once applied.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import cast

from kg.errors import MigrationError, SourceFormatError
from kg.store.graph import Graph

_FILE = re.compile(r"^V(\d{4})__([A-Za-z0-9_]+)\.cypher$")

APPLIED = "MATCH (m:Migration) RETURN m.version AS version, m.name AS name, m.checksum AS checksum, " \
          "m.applied_at AS applied_at ORDER BY version"
RECORD = "CREATE (:Migration {version: $version, name: $name, checksum: $checksum, applied_at: $applied_at})"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    checksum: str
    statements: tuple[str, ...]

    @property
    def filename(self) -> str:
        return self.path.name


def default_directory() -> Path:
    return Path(str(resources.files("migrations")))


def split_statements(text: str, path: Path) -> tuple[str, ...]:
    """Split on ``;`` at line ends; ``//`` comment lines are dropped. A trailing statement needs its ``;``."""
    statements: list[str] = []
    current: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("//"):
            continue
        current.append(line)
        if line.endswith(";"):
            statements.append(" ".join(current)[:-1].strip())
            current = []
        last = number
    if current:
        raise SourceFormatError(path, last, "statement does not end with ';'")
    return tuple(s for s in statements if s)


def checksum(text: str) -> str:
    normalised = "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip()
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def discover(directory: Path | None = None) -> list[Migration]:
    directory = directory or default_directory()
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.cypher")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named V0001__description.cypher")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path}: version {version} also used by {found[version].filename}")
        text = path.read_text(encoding="utf-8")
        found[version] = Migration(version, match.group(2), path, checksum(text), split_statements(text, path))
    return [found[v] for v in sorted(found)]


def check(applied: Iterable[dict[str, object]], available: list[Migration]) -> list[Migration]:
    """Pending migrations, after refusing changed or missing applied ones."""
    by_version = {m.version: m for m in available}
    done: set[int] = set()
    for row in applied:
        version = int(cast(int, row["version"]))
        done.add(version)
        migration = by_version.get(version)
        if migration is None:
            raise MigrationError(
                f"migration V{version:04d}__{row['name']} is recorded in the graph but its file is missing"
            )
        if migration.checksum != row["checksum"]:
            raise MigrationError(
                f"{migration.filename} was changed after it was applied (recorded checksum "
                f"{str(row['checksum'])[:12]}…, file now {migration.checksum[:12]}…). Applied migrations "
                "are immutable: restore the file and add a new migration for the change."
            )
    return [m for m in available if m.version not in done]


def migrate(graph: Graph, directory: Path | None = None) -> list[Migration]:
    """Apply pending migrations in order; return those applied."""
    pending = check(graph.read(APPLIED), discover(directory))
    for migration in pending:
        for statement in migration.statements:
            try:
                graph.write(statement)
            except Exception as exc:
                raise MigrationError(f"{migration.filename}: {exc}") from exc
        graph.write(RECORD, version=migration.version, name=migration.name, checksum=migration.checksum,
                    applied_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return pending


def status(graph: Graph, directory: Path | None = None) -> list[dict[str, object]]:
    """Every known migration with whether (and when) it was applied."""
    applied = {int(cast(int, r["version"])): r for r in graph.read(APPLIED)}
    rows: list[dict[str, object]] = []
    for m in discover(directory):
        row = applied.get(m.version)
        rows.append({"version": m.version, "name": m.name, "applied": row is not None,
                     "applied_at": row["applied_at"] if row else None,
                     "changed": bool(row and row["checksum"] != m.checksum)})
    return rows
