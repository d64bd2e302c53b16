"""Keeping the embedded server up: a thread waits on the JVM (a child of this process), so its death is noticed at
once and the child is reaped (no ``<defunct>`` JVM), then starts it again on the same data directory (ArcadeDB
recovers from its journal on start) and has the graph reconnect. Restarts back off (``backoff_s``, twice that,
four times… capped at 30 s); after more than ``max_restarts`` failures (deaths and failed starts) within
``window_s`` it gives up and says so. A supervisor that may not restart (a command-line run) only notices, so
calls fail at once instead of waiting on the driver.

The thread that restarts a JVM keeps running until it is stopped: the JVM gets ``PR_SET_PDEATHSIG``, which fires
when the *thread* that forked it ends.
"""

from __future__ import annotations

import collections
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kg.config import GraphSettings
from kg.errors import GraphUnavailableError
from kg.store.embedded import EmbeddedServer, ServerState, pid_alive

log = logging.getLogger(__name__)

BACKOFF_CAP_S = 30.0


@dataclass(frozen=True)
class RestartPolicy:
    restart: bool = True
    max_restarts: int = 5
    window_s: float = 600.0
    backoff_s: float = 1.0

    @classmethod
    def from_settings(cls, settings: GraphSettings, *, restart: bool) -> RestartPolicy:
        return cls(restart=restart, max_restarts=settings.max_restarts, window_s=settings.restart_window_s,
                   backoff_s=settings.restart_backoff_s)

    def delay(self, failures: int) -> float:
        """The wait before the next start, after ``failures`` failures in the window."""
        return float(min(BACKOFF_CAP_S, self.backoff_s * 2 ** max(0, failures - 1)))


@dataclass(frozen=True)
class SupervisorState:
    state: str  # up | restarting | failed | stopped
    restarts: int  # restarts that brought the server back
    detail: str | None = None  # why it is not up
    retry_after: float | None = None  # seconds until it is expected back (restarting only)


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    """Watches one embedded server started by this process and restarts it (see the module docstring)."""

    def __init__(self, server: EmbeddedServer, process: subprocess.Popen[bytes],
                 reconnect: Callable[[ServerState], None], policy: RestartPolicy, start_seconds: float = 5.0) -> None:
        self._server = server
        self._process = process
        self._reconnect = reconnect
        self.policy = policy
        self._lock = threading.Lock()
        self._state = "up"
        self._detail: str | None = None
        self._restarts = 0
        self._next_attempt: float | None = None
        self._start_seconds = start_seconds  # how long a start takes, for Retry-After
        self._failures: collections.deque[float] = collections.deque()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="phenokg-db-supervisor", daemon=True)

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    @property
    def up(self) -> bool:
        """Whether the server is believed to run: its JVM has not exited (a killed, unreaped one counts as gone)."""
        return self._state == "up" and pid_alive(self._process.pid)

    def state(self) -> SupervisorState:
        with self._lock:
            retry = None
            if self._state == "restarting" and self._next_attempt is not None:
                retry = max(0.0, self._next_attempt - time.monotonic()) + self._start_seconds
            state = self._state
            if state == "up" and not pid_alive(self._process.pid):  # dead; the watcher is about to say so
                state, retry = "restarting" if self.policy.restart else "failed", None
            return SupervisorState(state, self._restarts, self._detail or (
                "the embedded graph server exited" if state != "up" else None), retry)

    def error(self) -> GraphUnavailableError:
        """The error a call gets while the server is not up."""
        deadline = time.monotonic() + 0.5
        while self._state == "up" and time.monotonic() < deadline:  # just died: the watcher is about to say why
            time.sleep(0.01)
        state = self.state()
        return GraphUnavailableError(state.detail or "the embedded graph server is not running",
                                     retry_after=max(1.0, state.retry_after) if state.retry_after is not None
                                     else None)

    def stop(self) -> None:
        """No restart from now on (the owner then stops the server; the watcher ends when it exits)."""
        self._stopping.set()
        with self._lock:
            self._state, self._detail = "stopped", "the embedded graph server was stopped"

    def join(self, timeout: float) -> None:
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # ---- the watcher thread ------------------------------------------------------------------
    def _log(self, level: int, message: str) -> None:
        """A service (restarting) logs what happens; a command only reports the error it raises."""
        log.log(level if self.policy.restart else logging.DEBUG, "%s", message)

    def _set(self, state: str, detail: str | None, next_attempt: float | None = None) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            self._state, self._detail, self._next_attempt = state, detail, next_attempt

    def _watch(self) -> None:
        process: subprocess.Popen[bytes] | None = self._process
        while process is not None:
            code = process.wait()
            if self._stopping.is_set():
                return
            reason = f"the embedded graph server {_exit_reason(code)}"
            self._log(logging.ERROR, reason)
            process = self._restart(reason)

    def _restart(self, reason: str) -> subprocess.Popen[bytes] | None:
        """Start the server again until it runs (its new process) or the policy gives up (None)."""
        while not self._stopping.is_set():
            now = time.monotonic()
            self._failures.append(now)
            while self._failures and self._failures[0] < now - self.policy.window_s:
                self._failures.popleft()
            failures = len(self._failures)
            if not self.policy.restart or failures > self.policy.max_restarts:
                gave_up = (f"{reason}; not restarted" if not self.policy.restart else
                           f"{reason}; gave up after {failures} failures within {self.policy.window_s:.0f} s")
                self._log(logging.ERROR, gave_up)
                self._set("failed", gave_up)
                return None
            delay = self.policy.delay(failures)
            self._set("restarting", f"{reason}; restarting", now + delay)
            if self._stopping.wait(delay):
                return None
            began = time.monotonic()
            try:
                state = self._server.start()
                process = self._server.process
                if process is None or process.pid != state.pid:  # another process's server holds the data
                    log.warning("the embedded graph server of %s is run by another process; not supervised",
                                self._server.root)
                    self._reconnect(state)
                    self._set("up", None)
                    return None
                if self._stopping.is_set():
                    self._server.stop()
                    return None
                self._reconnect(state)
            except Exception as exc:  # a failed start counts as a failure; try again after the back-off
                reason = "the embedded graph server did not restart: " + " ".join(str(exc).split())[:300]
                self._log(logging.ERROR, reason)
                if self._server.process is not None and self._server.process.poll() is None:
                    self._server.stop()
                continue
            with self._lock:
                self._process = process
                self._start_seconds = time.monotonic() - began
                self._restarts += 1
            self._set("up", None)
            log.warning("the embedded graph server is back (restart %d, pid %d)", self._restarts, process.pid)
            return process
        return None
