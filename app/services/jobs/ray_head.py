"""A local Ray head for training jobs when ``RAY_ADDRESS`` is unset.

``ray start --head --block`` runs as its own process group (so it outlives an API that crashes, and the next API
start reuses it through ``<root>/head.json``); :meth:`LocalRayHead.stop` sends SIGTERM to that group and SIGKILL
a second later to whatever is left (Ray's own graceful stop takes 10 s and more). Everything it listens on is on
127.0.0.1, on ports chosen free at start (GCS, object and node managers, dashboard — the Jobs API —, dashboard
agent HTTP and gRPC, runtime-env agent, metrics export, the dashboard's and the autoscaler's metrics; workers
take ports the system assigns), so several heads (two ``PHENOKG_HOME`` on one host, or any other Ray) run side
by side. Ray would resolve a loopback node address to the machine's address;
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (the switch Ray reads to keep a single-node head on loopback) keeps it
on 127.0.0.1. The Ray client server (which runs code for whoever reaches it) is off unless asked for. Usage
statistics are off; the temp directory is under ``PHENOKG_HOME/ray`` (itself 0700; or in a 0700 folder under the
system temp directory when that path is too long for the Unix sockets Ray puts in it) and the head runs with
umask 077. Ray makes its temp directory 0777 (meant for a ``/tmp/ray`` that users share) whenever a process of
it starts; the 0700 folder above it is what keeps other users out.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import psutil

from kg.store.embedded import pid_alive

log = logging.getLogger(__name__)

STATE_FILE: Final = "head.json"
LOG_FILE: Final = "head.log"
MAX_TEMP_DIR: Final = 38
"""Longest temp directory Ray gets: its session sockets add up to 69 characters
(``/session_<date>_<time>_<usec>_<pid>/sockets/dash_MetricsHead``) within the 107-byte AF_UNIX limit; a
44-character home ``…/ray/tmp`` made the head exit at start."""
PORT_OPTIONS: Final = ("port", "object-manager-port", "node-manager-port", "dashboard-port",
                       "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
                       "metrics-export-port")
"""The ``ray start`` options of every port the head listens on, each given a free loopback port."""
ENV_PORTS: Final = ("AUTOSCALER_METRIC_PORT", "DASHBOARD_METRIC_PORT")
"""Ports Ray takes from the environment only (fixed 44217 and 44227 by default: the second head lost them)."""
STOP_GRACE_S: Final = 1.0
"""How long the head's process group gets after SIGTERM before SIGKILL."""

_LAUNCH: Final = (
    "import os, sys\n"
    "import ray.scripts.scripts as cli\n"
    "if os.environ.get('PHENOKG_RAY_CLIENT_SERVER') != '1':\n"
    "    # `ray start` starts the client server on 10001 whenever grpc is importable and has no option to\n"
    "    # leave it off: tell it the client dependencies are missing\n"
    "    if not hasattr(cli, 'get_ray_client_dependency_error'):\n"
    "        sys.exit('phenokg: this Ray version cannot leave its client server off')\n"
    "    cli.get_ray_client_dependency_error = lambda: ImportError('the Ray client server is off')\n"
    "sys.exit(cli.main())\n")
"""``ray start`` run with ``python -c`` (the project's interpreter), the client server left off unless asked for."""


def dashboard_ready(address: str, timeout: float = 2.0) -> bool:
    """Whether the Jobs API at ``address`` (``http://host:port``) answers."""
    try:
        with urllib.request.urlopen(f"{address}/api/version", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _listening(port: int) -> bool:
    """Whether something accepts connections on ``127.0.0.1:port`` (the dashboard agent takes jobs only once up)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (held open together while chosen, so none repeats)."""
    import socket

    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind(("127.0.0.1", 0))
            ports.append(int(s.getsockname()[1]))
        return ports


@dataclass
class LocalRayHead:
    """The phenokg-managed Ray head whose state lives in ``root``."""

    root: Path
    num_cpus: int = 2
    num_gpus: int | None = None
    object_store_bytes: int = 256 * 1024 * 1024
    start_timeout_s: float = 120.0
    client_server: bool = False
    """Start the Ray client server (on a free loopback port) too."""
    spawned: bool = field(default=False, init=False)
    """Whether :meth:`start` ran ``ray start`` in this process."""
    _cancel: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    @property
    def temp_dir(self) -> Path:
        temp = self.root / "tmp"
        if len(str(temp)) <= MAX_TEMP_DIR:
            return temp
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"phenokg-ray-{digest}" / "t"

    def _state(self) -> dict[str, object] | None:
        try:
            data = json.loads((self.root / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def ports(self) -> dict[str, int]:
        """The ports of the running head, by ``ray start`` option (empty when none was recorded)."""
        ports = (self._state() or {}).get("ports")
        return {str(k): int(v) for k, v in ports.items()} if isinstance(ports, dict) else {}

    def pid(self) -> int | None:
        """The pid of the recorded head's ``ray start`` (its process group), if it runs (and is that head)."""
        state = self._state() or {}
        pid, temp = state.get("pid"), state.get("temp_dir")
        if not isinstance(pid, int) or not pid_alive(pid):
            return None
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return pid  # no /proc: trust the record
        return pid if str(temp).encode() in args else None  # not a recycled pid

    def running_address(self) -> str | None:
        """The dashboard address of a head started earlier for ``root`` that still answers, else ``None``."""
        address = (self._state() or {}).get("address")
        if self.pid() is None or not isinstance(address, str):
            return None
        return address if dashboard_ready(address) else None

    def _private_dirs(self) -> Path:
        """Create ``root`` and the temp directory in a folder closed to other users (0700); return the temp dir."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.chmod(0o700)
        temp = self.temp_dir
        if not temp.is_relative_to(self.root):  # the short fallback: its own 0700 folder in the system temp
            temp.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            temp.parent.chmod(0o700)
        temp.mkdir(mode=0o700, parents=True, exist_ok=True)
        return temp

    def command(self, temp: Path, ports: dict[str, int]) -> list[str]:
        """The ``ray start`` command line of a head on ``ports``."""
        cmd = [sys.executable, "-c", _LAUNCH, "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
               "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
               "--min-worker-port", "0", "--max-worker-port", "0",  # 0: each worker binds a port the OS picks
               "--num-cpus", str(self.num_cpus), "--object-store-memory", str(self.object_store_bytes),
               "--temp-dir", str(temp), "--disable-usage-stats"]
        for option, port in ports.items():
            cmd += [f"--{option}", str(port)]
        if self.num_gpus is not None:
            cmd += ["--num-gpus", str(self.num_gpus)]
        return cmd

    def start(self) -> str:
        """Start the head and wait until its Jobs API answers; return its dashboard address."""
        if self._cancel.is_set():
            raise RuntimeError("the local Ray head is not started: phenokg is stopping")
        temp = self._private_dirs()
        options = PORT_OPTIONS + (("ray-client-server-port",) if self.client_server else ()) + ENV_PORTS
        ports = dict(zip(options, free_ports(len(options)), strict=True))
        address = f"http://127.0.0.1:{ports['dashboard-port']}"
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
               "PHENOKG_RAY_CLIENT_SERVER": "1" if self.client_server else "0",
               **{name: str(ports[name]) for name in ENV_PORTS}}
        env.pop("RAY_ADDRESS", None)
        cli_ports = {option: port for option, port in ports.items() if option not in ENV_PORTS}
        with (self.root / LOG_FILE).open("ab") as out:
            process = subprocess.Popen(self.command(temp, cli_ports), stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env, start_new_session=True, umask=0o077)
        self.spawned = True
        (self.root / STATE_FILE).write_text(json.dumps({"pid": process.pid, "address": address,
                                                        "temp_dir": str(temp), "ports": ports}), encoding="utf-8")
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline and not self._cancel.is_set():
            if process.poll() is not None:
                raise RuntimeError(f"the local Ray head exited with {process.returncode} while starting "
                                   f"(see {self.root / LOG_FILE})")
            if dashboard_ready(address) and _listening(ports["dashboard-agent-listen-port"]):
                log.info("started a local Ray head (Jobs API %s, temp dir %s)", address, temp)
                return address
            self._cancel.wait(0.5)
        self._terminate(process.pid)
        with contextlib.suppress(ChildProcessError, subprocess.TimeoutExpired):
            process.wait(timeout=1)
        if self._cancel.is_set():
            raise RuntimeError("the local Ray head was stopped while starting")
        raise RuntimeError(f"the local Ray head did not answer within {self.start_timeout_s:.0f} s "
                           f"(see {self.root / LOG_FILE})")

    def ensure(self) -> tuple[str, bool]:
        """``(address, started)``: reuse a running head of ``root`` or start one."""
        address = self.running_address()
        if address is not None:
            log.info("reusing the local Ray head at %s", address)
            return address, False
        return self.start(), True

    @staticmethod
    def _terminate(pid: int, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM the head's process group and every process below it, SIGKILL what is left after ``grace``.

        Workers and job drivers run in sessions of their own, and a job's process outlives a raylet that is
        killed, so they are collected first and signalled one by one. Ray's own graceful stop takes 10 s and
        more (the raylet, the GCS); the API stops its head only when it stops itself, its jobs already marked
        interrupted, so a short grace is enough.
        """
        try:
            leader = psutil.Process(pid)
            procs = [leader, *leader.children(recursive=True)]
        except psutil.Error:
            procs = []
        own_group = os.getpgrp()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if pid != own_group:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, sig)
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(sig)  # psutil checks that the pid is still that process
            procs = psutil.wait_procs(procs, timeout=grace)[1]
            if not procs:
                break
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)

    def cancel(self) -> None:
        """Abort a :meth:`start` in progress (it kills what it started) and refuse later ones."""
        self._cancel.set()

    def stop(self) -> None:
        """Stop the head recorded for ``root`` (every Ray process it started)."""
        pid = self.pid()
        if pid is not None:
            self._terminate(pid)
        (self.root / STATE_FILE).unlink(missing_ok=True)
