"""A local Ray head for training jobs when ``RAY_ADDRESS`` is unset.

``ray start --head --block`` runs as its own process group (so it outlives an API that crashes, and the next
API start reuses it through ``<root>/head.json``); SIGTERM to it stops every Ray process it started. Its
dashboard — the Jobs API — listens on 127.0.0.1 only, usage statistics are off, and its temp directory is
under ``PHENOKG_HOME`` (or a short path under the system temp directory when that one is too long for the Unix
sockets Ray puts in it). Ray itself resolves a loopback node address to the machine's address, so its internal
ports (GCS, raylet) listen on every interface: on a shared network, enable Ray token auth
(``RAY_AUTH_MODE=token``) or run the head yourself and set ``RAY_ADDRESS``.
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
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from kg.store.embedded import free_port, pid_alive

log = logging.getLogger(__name__)

STATE_FILE: Final = "head.json"
LOG_FILE: Final = "head.log"
MAX_TEMP_DIR: Final = 38
"""Longest temp directory Ray gets: its session sockets add up to 69 characters
(``/session_<date>_<time>_<usec>_<pid>/sockets/dash_MetricsHead``) within the 107-byte AF_UNIX limit; a
44-character home ``…/ray/tmp`` made the head exit at start."""


def dashboard_ready(address: str, timeout: float = 2.0) -> bool:
    """Whether the Jobs API at ``address`` (``http://host:port``) answers."""
    try:
        with urllib.request.urlopen(f"{address}/api/version", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass
class LocalRayHead:
    """The phenokg-managed Ray head whose state lives in ``root``."""

    root: Path
    num_cpus: int = 2
    num_gpus: int | None = None
    object_store_bytes: int = 256 * 1024 * 1024
    start_timeout_s: float = 120.0

    @property
    def temp_dir(self) -> Path:
        temp = self.root / "tmp"
        if len(str(temp)) <= MAX_TEMP_DIR:
            return temp
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"phenokg-ray-{digest}"

    def _state(self) -> dict[str, object] | None:
        try:
            data = json.loads((self.root / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def running_address(self) -> str | None:
        """The dashboard address of a head started earlier for ``root`` that still answers, else ``None``."""
        state = self._state()
        if not state:
            return None
        pid, address = state.get("pid"), state.get("address")
        if not isinstance(pid, int) or not isinstance(address, str) or not pid_alive(pid):
            return None
        return address if dashboard_ready(address) else None

    def start(self) -> str:
        """Start the head and wait until its Jobs API answers; return its dashboard address."""
        self.root.mkdir(parents=True, exist_ok=True)
        temp = self.temp_dir
        temp.mkdir(parents=True, exist_ok=True)
        dashboard_port, gcs_port, client_port = free_port(), free_port(), free_port()
        address = f"http://127.0.0.1:{dashboard_port}"
        cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
               "--node-ip-address", "127.0.0.1", "--port", str(gcs_port),
               "--ray-client-server-port", str(client_port),
               "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
               "--dashboard-port", str(dashboard_port), "--num-cpus", str(self.num_cpus),
               "--object-store-memory", str(self.object_store_bytes), "--temp-dir", str(temp),
               "--disable-usage-stats"]
        if self.num_gpus is not None:
            cmd += ["--num-gpus", str(self.num_gpus)]
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        env.pop("RAY_ADDRESS", None)
        with (self.root / LOG_FILE).open("ab") as out:
            process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=env, start_new_session=True)
        (self.root / STATE_FILE).write_text(json.dumps({"pid": process.pid, "address": address,
                                                        "temp_dir": str(temp)}), encoding="utf-8")
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the local Ray head exited with {process.returncode} while starting "
                                   f"(see {self.root / LOG_FILE})")
            if dashboard_ready(address):
                log.info("started a local Ray head (Jobs API %s, temp dir %s)", address, temp)
                return address
            time.sleep(0.5)
        self._terminate(process.pid)
        raise RuntimeError(f"the local Ray head did not answer within {self.start_timeout_s:.0f} s "
                           f"(see {self.root / LOG_FILE})")

    def ensure(self) -> tuple[str, bool]:
        """``(address, started)``: reuse a running head of ``root`` or start one."""
        address = self.running_address()
        if address is not None:
            log.info("reusing the local Ray head at %s", address)
            return address, False
        return self.start(), True

    def _terminate(self, pid: int, timeout: float = 30.0) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not pid_alive(pid):
                return
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)

    def stop(self) -> None:
        """Stop the head recorded for ``root`` (every Ray process it started), if it runs."""
        state = self._state()
        pid = state.get("pid") if state else None
        if isinstance(pid, int) and pid_alive(pid):
            self._terminate(pid)
        (self.root / STATE_FILE).unlink(missing_ok=True)
