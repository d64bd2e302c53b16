"""The few places where ArcadeDB (embedded default) and Neo4j 5 differ: full-text and vector indexes.

Everything else is one Cypher for both servers. Label and property names here come from code, never
from users, and are checked against an identifier pattern before they are put into DDL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import neo4j

    from kg.store.embedded import EmbeddedServer

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _ident(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a safe identifier: {name!r}")
    return name


@dataclass(frozen=True)
class Dialect:
    name: Literal["arcadedb", "neo4j"]
    server: EmbeddedServer | None = None

    def fulltext_index_name(self, label: str, prop: str) -> str:
        if self.name == "arcadedb":
            return f"{_ident(label)}[{_ident(prop)}]"
        return f"{_ident(label).lower()}_{_ident(prop)}_fulltext"

    def vector_index_name(self, label: str, prop: str) -> str:
        if self.name == "arcadedb":
            return f"{_ident(label)}[{_ident(prop)}]"
        return f"{_ident(label).lower()}_{_ident(prop)}_vector"

    def ensure_fulltext_index(self, driver: neo4j.Driver, database: str | None, label: str, prop: str) -> None:
        label, prop = _ident(label), _ident(prop)
        if self.name == "arcadedb":
            self._sql(f"CREATE PROPERTY {label}.{prop} IF NOT EXISTS STRING")
            self._drop_other_indexes(label, prop, keep="FULL_TEXT")
            self._sql(f"CREATE INDEX IF NOT EXISTS ON {label} ({prop}) FULL_TEXT")
            return
        name = self.fulltext_index_name(label, prop)
        driver.execute_query(
            f"CREATE FULLTEXT INDEX {name} IF NOT EXISTS FOR (n:{label}) ON EACH [n.{prop}]",
            database_=database,
        )

    def ensure_vector_index(self, driver: neo4j.Driver, database: str | None, label: str, prop: str,
                            dimensions: int) -> None:
        label, prop = _ident(label), _ident(prop)
        dims = int(dimensions)
        if self.name == "arcadedb":
            self._sql(f"CREATE PROPERTY {label}.{prop} IF NOT EXISTS ARRAY_OF_FLOATS")
            self._drop_other_indexes(label, prop, keep="LSM_VECTOR")
            self._sql(
                f"CREATE INDEX IF NOT EXISTS ON {label} ({prop}) LSM_VECTOR "
                f'METADATA {{"dimensions": {dims}, "similarity": "COSINE"}}'
            )
            return
        name = self.vector_index_name(label, prop)
        driver.execute_query(
            f"CREATE VECTOR INDEX {name} IF NOT EXISTS FOR (n:{label}) ON n.{prop} "
            f"OPTIONS {{indexConfig: {{`vector.dimensions`: {dims}, `vector.similarity_function`: 'cosine'}}}}",
            database_=database,
        )

    def _sql(self, command: str) -> Any:
        assert self.server is not None, "ArcadeDB SQL needs the embedded server handle"
        return self.server.sql(command)

    def _drop_other_indexes(self, label: str, prop: str, keep: str) -> None:
        """ArcadeDB allows one index per property: drop a range index before adding a full-text one."""
        result = self._sql("SELECT name, type, properties FROM schema:indexes")
        for row in (result or {}).get("result", []) if isinstance(result, dict) else []:
            same = row.get("name", "").startswith(f"{label}[") and row.get("properties") == [prop]
            if same and str(row.get("type", "")).upper() != keep:
                self._sql(f"DROP INDEX `{row['name']}`")


def detect_dialect(agent: str, server: EmbeddedServer | None) -> Dialect:
    """Pick the dialect from the Bolt agent string ("Neo4j/5.26.0 compatible (ArcadeDB …)")."""
    if "arcadedb" in agent.lower():
        return Dialect("arcadedb", server)
    return Dialect("neo4j", None)
