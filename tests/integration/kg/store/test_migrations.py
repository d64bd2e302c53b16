from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kg.errors import MigrationError
from kg.store.graph import Graph
from kg.store.migrations import default_directory, migrate, status

pytestmark = pytest.mark.integration


def test_applied_once_in_order_and_recorded(empty_graph: Graph) -> None:
    applied = migrate(empty_graph)
    assert [m.version for m in applied] == sorted(m.version for m in applied)
    assert applied
    assert migrate(empty_graph) == []
    recorded = empty_graph.read("MATCH (m:Migration) RETURN m.version AS v, m.checksum AS c ORDER BY v")
    assert [r["v"] for r in recorded] == [m.version for m in applied]
    assert [r["c"] for r in recorded] == [m.checksum for m in applied]
    assert all(row["applied"] and not row["changed"] for row in status(empty_graph))
    constraints = {r["name"] for r in empty_graph.read("SHOW CONSTRAINTS YIELD name RETURN name")}
    assert {"phenotype_id", "disease_id", "evidence_id"} <= constraints


def test_changed_file_is_refused(empty_graph: Graph, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(default_directory(), folder, ignore=shutil.ignore_patterns("__*"))
    migrate(empty_graph, folder)
    first = sorted(folder.glob("V0001__*.cypher"))[0]
    first.write_text(first.read_text() + "CREATE INDEX extra IF NOT EXISTS FOR (n:Phenotype) ON (n.name);\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(empty_graph, folder)


def test_new_migration_is_applied(empty_graph: Graph, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(default_directory(), folder, ignore=shutil.ignore_patterns("__*"))
    migrate(empty_graph, folder)
    (folder / "V0999__note.cypher").write_text("MERGE (:GraphMeta {key: 'note'});\n")
    applied = migrate(empty_graph, folder)
    assert [m.version for m in applied] == [999]
    assert empty_graph.read("MATCH (m:GraphMeta {key: 'note'}) RETURN count(m) AS n") == [{"n": 1}]
