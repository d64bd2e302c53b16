"""Where phenokg keeps its data when the user sets nothing but the usual ``HOME``."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.config import AppSettings
from kg.config import GraphSettings

OUR_VARIABLES = ("PHENOKG_HOME", "XDG_DATA_HOME", "TITLE", "PHENOKG_TITLE")


@pytest.fixture()
def only_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in OUR_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_home_alone_puts_data_under_local_share(only_home: Path) -> None:
    expected = only_home / ".local" / "share" / "phenokg"
    assert GraphSettings().home == expected
    assert AppSettings().home == expected
    assert GraphSettings().db_dir == expected / "db"


def test_xdg_data_home_is_respected(only_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(only_home / "xdg"))
    assert GraphSettings().home == only_home / "xdg" / "phenokg"


def test_phenokg_home_wins(only_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHENOKG_HOME", str(only_home / "mine"))
    assert GraphSettings().home == only_home / "mine"


def test_field_names_are_not_environment_names(only_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the documented PHENOKG_* / NEO4J_* names configure phenokg; a plain TITLE does not."""
    monkeypatch.setenv("TITLE", "someone else's variable")
    assert AppSettings().title == "phenokg"
