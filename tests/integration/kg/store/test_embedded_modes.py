"""The embedded server's data directory is closed to other users: the folder 0700, what the JVM writes 0600."""

from __future__ import annotations

import stat

import pytest

from kg.config import GraphSettings
from kg.store.graph import Graph

pytestmark = pytest.mark.integration


def test_database_files_are_private(graph: Graph, graph_settings: GraphSettings) -> None:
    if graph_settings.neo4j_uri:
        pytest.skip("no embedded server with NEO4J_URI")
    graph.write("CREATE (:ModeProbe {id: 'x'})")  # make the JVM write data files now
    graph.write("MATCH (n:ModeProbe) DELETE n")
    root = graph_settings.db_dir
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    written = [p for p in root.rglob("*") if not p.is_symlink()]
    assert any(p.is_file() and p.suffix not in (".json", ".log") for p in written)  # the database's own files
    open_to_others = [f"{oct(stat.S_IMODE(p.stat().st_mode))} {p.relative_to(root)}" for p in written
                      if p.stat().st_mode & 0o077]
    assert open_to_others == []
