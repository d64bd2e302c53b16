"""The `phenokg` command line, run as a real subprocess against real embedded servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import FIXTURES as FIXTURES_DIR

pytestmark = pytest.mark.integration
FIXTURES = FIXTURES_DIR
PHENOKG = [sys.executable, "-m", "app.cli.main"]


def run(home: Path, *args: str, env: dict[str, str] | None = None,
        timeout: float = 180) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("NEO4J_URI",)}
    full_env.update({"PHENOKG_HOME": str(home), **(env or {})})
    return subprocess.run([*PHENOKG, *args], capture_output=True, text=True, env=full_env, timeout=timeout)


@pytest.fixture(scope="module")
def built_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cli-home")
    out = run(home, "kg", "build", "--obo", str(FIXTURES / "mini.obo"), "--hpoa", str(FIXTURES / "mini.hpoa"),
              "--no-pack", "--quiet")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["counts"]["phenotypes"] == 13
    return home


def test_build_started_and_stopped_its_own_server(built_home: Path) -> None:
    status = run(built_home, "db", "status", "--json")
    assert status.returncode == 3  # not running: the build stopped the server it started
    assert json.loads(status.stdout)["running"] is False


def test_db_start_status_stop(built_home: Path) -> None:
    started = run(built_home, "db", "start")
    assert started.returncode == 0, started.stderr
    try:
        status = json.loads(run(built_home, "db", "status", "--json").stdout)
        assert status["running"] and status["bolt"].startswith("bolt://127.0.0.1:")
        # commands reuse the running server
        stats = run(built_home, "kg", "stats")
        assert stats.returncode == 0, stats.stderr
        assert json.loads(stats.stdout)["counts"]["diseases"] == 3
        assert json.loads(run(built_home, "db", "status", "--json").stdout)["pid"] == status["pid"]
    finally:
        stopped = run(built_home, "db", "stop")
    assert "stopped" in stopped.stdout
    assert run(built_home, "db", "status").returncode == 3


def test_annotate_prints_one_json_line_per_file(built_home: Path, tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    a.write_text("Chest film shows pneumonia. No pleural effusion or pneumothorax.\n", encoding="utf-8")
    b = tmp_path / "b.txt"
    b.write_text("Enlarged heart; seizures were ruled out.", encoding="utf-8")
    out = run(built_home, "annotate", str(a), str(b))
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(a), str(b)]
    first = {(m["id"], m["negated"]) for m in lines[0]["mentions"]}
    assert first == {("HP:0002090", False), ("HP:0002202", True), ("HP:0002107", True)}
    m = lines[0]["mentions"][0]
    assert {"start", "end", "text", "id", "name", "negated"} <= m.keys()
    assert a.read_text()[m["start"]:m["end"]] == m["text"]
    second = {(m["id"], m["negated"]) for m in lines[1]["mentions"]}
    assert second == {("HP:0001640", False), ("HP:0001250", True)}


def test_annotate_reports_unreadable_file_and_goes_on(built_home: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("pneumonia", encoding="utf-8")
    out = run(built_home, "annotate", str(tmp_path / "missing.txt"), str(good))
    assert out.returncode == 2
    assert "missing.txt" in out.stderr and "Traceback" not in out.stderr
    assert json.loads(out.stdout)["file"] == str(good)


def test_malformed_obo_gives_file_and_line(built_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.obo"
    text = (FIXTURES / "mini.obo").read_text(encoding="utf-8").replace("is_a: HP:0002088", "is_a HP:0002088")
    bad.write_text(text, encoding="utf-8")
    line = text.splitlines().index("is_a HP:0002088 ! Abnormal lung morphology") + 1
    out = run(built_home, "kg", "build", "--obo", str(bad), "--hpoa", str(FIXTURES / "mini.hpoa"), "--no-pack", "-q")
    assert out.returncode == 2
    assert f"{bad}:{line}:" in out.stderr
    assert "Traceback" not in out.stderr
    # nothing was lost: the graph still holds the previous build
    stats = json.loads(run(built_home, "kg", "stats").stdout)
    assert stats["counts"]["phenotypes"] == 13


def test_database_down_is_one_clear_message(tmp_path: Path) -> None:
    out = run(tmp_path, "kg", "stats", env={"NEO4J_URI": "bolt://127.0.0.1:9", "NEO4J_PASSWORD": "x"})
    assert out.returncode == 1
    assert out.stderr.startswith("phenokg: error: cannot reach the graph database at bolt://127.0.0.1:9")
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_migrate_status(built_home: Path) -> None:
    out = run(built_home, "migrate", "--status")
    assert out.returncode == 0, out.stderr
    assert "V0001__constraints: applied" in out.stdout


def test_only_home_set_puts_the_database_under_local_share(tmp_path: Path) -> None:
    """With nothing but HOME (and PATH) set, the embedded server's files go to ~/.local/share/phenokg."""
    env = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    started = subprocess.run([*PHENOKG, "db", "start"], capture_output=True, text=True, env=env, timeout=180)
    try:
        assert started.returncode == 0, started.stderr
        status = subprocess.run([*PHENOKG, "db", "status", "--json"], capture_output=True, text=True, env=env,
                                timeout=60)
        assert json.loads(status.stdout)["data"].startswith(str(tmp_path / ".local" / "share" / "phenokg"))
    finally:
        subprocess.run([*PHENOKG, "db", "stop"], capture_output=True, text=True, env=env, timeout=60)
    data = tmp_path / ".local" / "share" / "phenokg"
    assert (data / "db").is_dir()
    assert not (tmp_path / "db").exists() and not (tmp_path / "cache").exists()
