"""Lifecycle of the embedded server: credentials, loopback only, no extra plugins, no orphaned JVM."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kg.config import GraphSettings
from kg.store.embedded import EmbeddedServer, pid_alive
from kg.store.graph import connect

pytestmark = pytest.mark.integration


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_start_status_stop(home: Path) -> None:
    settings = GraphSettings(PHENOKG_HOME=str(home))  # type: ignore[call-arg]
    server = EmbeddedServer(settings)
    assert server.status() is None
    state = server.start(detached=True)
    try:
        assert server.status() == state
        creds = server.credentials_file
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        assert not (server.root / "jvm.args").exists()  # the password file handed to the JVM is gone
        cmdline = Path(f"/proc/{state.pid}/cmdline").read_bytes().decode()
        assert server.password() not in cmdline  # never visible in `ps`
        # a second start returns the running server instead of fighting over the data directory
        assert EmbeddedServer(settings).start() == state
        # the HTTP API listens on loopback and the MCP endpoint nobody asked for is absent
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"http://127.0.0.1:{state.http_port}/api/v1/mcp", timeout=5)
        assert info.value.code in (401, 404)
        listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
        own = [line for line in listening.splitlines() if f"pid={state.pid}," in line]
        assert own and all("127.0.0.1" in line for line in own)
        graph = connect(settings)
        assert graph.dialect.name == "arcadedb" and graph.ping()
        graph.close()
        assert server.status() is not None  # a connection to a detached server does not stop it
    finally:
        assert server.stop()
    assert not pid_alive(state.pid)
    assert server.status() is None


def test_stale_state_file_is_cleaned(home: Path) -> None:
    server = EmbeddedServer(GraphSettings(PHENOKG_HOME=str(home)))  # type: ignore[call-arg]
    server.root.mkdir(parents=True)
    server.state_file.write_text('{"pid": 999999, "bolt_port": 1, "http_port": 2, "root_path": "x", '
                                 '"started_at": 0, "detached": true}')
    assert server.status() is None
    assert not server.state_file.exists()


def test_child_server_dies_with_its_parent(home: Path) -> None:
    """A server started in the foreground must not outlive a parent that is killed (SIGKILL)."""
    script = textwrap.dedent(f"""
        import sys, time
        from kg.config import GraphSettings
        from kg.store.graph import connect
        g = connect(GraphSettings(PHENOKG_HOME={str(home)!r}))
        print(g.server.status().pid, flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    jvm_pid = int(parent.stdout.readline())
    assert pid_alive(jvm_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 30
    while pid_alive(jvm_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = pid_alive(jvm_pid)
    if alive:
        os.kill(jvm_pid, signal.SIGKILL)
    assert not alive


def test_failed_start_surfaces_the_log(home: Path) -> None:
    settings = GraphSettings(PHENOKG_HOME=str(home), PHENOKG_DB_HEAP="1k")  # type: ignore[call-arg]
    from kg.errors import EmbeddedServerError

    with pytest.raises(EmbeddedServerError) as info:
        EmbeddedServer(settings).start()
    assert "server log" in str(info.value)
    assert EmbeddedServer(settings).status() is None
