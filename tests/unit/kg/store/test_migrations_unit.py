from __future__ import annotations

from pathlib import Path

import pytest

from kg.errors import MigrationError, SourceFormatError
from kg.store.migrations import check, checksum, discover, split_statements


def test_shipped_migrations_are_ordered_and_parse() -> None:
    found = discover()
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert all(m.statements for m in found)
    assert all(";" not in s for m in found for s in m.statements)


def test_split_ignores_comments_and_needs_semicolons(tmp_path: Path) -> None:
    text = "// c\nCREATE (a);\nMATCH (n)\nRETURN n;\n"
    assert split_statements(text, tmp_path) == ("CREATE (a)", "MATCH (n) RETURN n")
    with pytest.raises(SourceFormatError):
        split_statements("CREATE (a)\n", tmp_path / "V0001__x.cypher")


def test_checksum_ignores_line_endings_and_trailing_space() -> None:
    assert checksum("A;\nB;\n") == checksum("A;  \r\nB;\r\n")
    assert checksum("A;\n") != checksum("B;\n")


def test_changed_applied_migration_is_refused(tmp_path: Path) -> None:
    (tmp_path / "V0001__a.cypher").write_text("CREATE (:X);\n")
    migs = discover(tmp_path)
    assert check([], migs) == migs
    assert check([{"version": 1, "name": "a", "checksum": migs[0].checksum}], migs) == []
    with pytest.raises(MigrationError, match="was changed after it was applied"):
        check([{"version": 1, "name": "a", "checksum": "0" * 64}], migs)
    with pytest.raises(MigrationError, match="file is missing"):
        check([{"version": 2, "name": "b", "checksum": "x"}], migs)


def test_bad_names_and_duplicate_versions(tmp_path: Path) -> None:
    (tmp_path / "V0001__a.cypher").write_text("CREATE (:X);\n")
    (tmp_path / "V0001__b.cypher").write_text("CREATE (:Y);\n")
    with pytest.raises(MigrationError, match="also used by"):
        discover(tmp_path)
    other = tmp_path / "o"
    other.mkdir()
    (other / "0001_a.cypher").write_text("CREATE (:X);\n")
    with pytest.raises(MigrationError, match="named V0001__description"):
        discover(other)
