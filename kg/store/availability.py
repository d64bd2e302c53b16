"""Whether the graph can be used right now, so that calls fail at once while it is known to be down instead of
each waiting on the driver's timeouts and retries.

Two sources: the :class:`~kg.store.supervisor.Supervisor` of an embedded server this process runs (down from the
moment its JVM exits until it is back), and a short memo after a connection failure (any server, ``NEO4J_URI``
included): for ``memo_s`` every call fails at once; then one call at a time is let through to probe, and its
success clears the memo.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from kg.errors import GraphUnavailableError
from kg.store.supervisor import Supervisor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatabaseState:
    state: str  # up | down | restarting | failed | stopped
    restarts: int = 0
    detail: str | None = None
    retry_after: float | None = None
    supervised: bool = False  # an embedded server this process restarts when it dies


class Availability:
    def __init__(self, memo_s: float, *, report: bool = False) -> None:
        self.memo_s = memo_s
        self.report = report  # log going down and coming back (a service); a command only raises
        self.supervisor: Supervisor | None = None
        self._lock = threading.Lock()
        self._down_until: float | None = None
        self._reason = ""
        self._probing = False

    def check(self, *, take_probe: bool = False) -> bool:
        """Raise :class:`GraphUnavailableError` at once when the graph is known to be down. With ``take_probe``,
        the first call after the memo ran out goes through as the probe (True): it must end in
        :meth:`succeeded`, :meth:`failed` or :meth:`release_probe`."""
        supervisor = self.supervisor
        if supervisor is not None and not supervisor.up:
            raise supervisor.error()
        if self._down_until is None:
            return False
        with self._lock:
            if self._down_until is None:
                return False
            left = self._down_until - time.monotonic()
            if left > 0 or (take_probe and self._probing):
                raise GraphUnavailableError(self._reason, retry_after=max(1.0, left))
            if take_probe:
                self._probing = True
            return take_probe

    def failed(self, reason: str) -> GraphUnavailableError:
        """Record a connection failure; the error to raise."""
        with self._lock:
            if self._down_until is None:
                log.log(logging.ERROR if self.report else logging.DEBUG, "%s", reason)
            self._down_until = time.monotonic() + self.memo_s
            self._reason, self._probing = reason, False
        supervisor = self.supervisor
        if supervisor is not None and not supervisor.up:  # it knows more: restarting, or given up
            return supervisor.error()
        return GraphUnavailableError(reason, retry_after=max(1.0, self.memo_s))

    def succeeded(self) -> None:
        """The server answered: clear the memo."""
        if self._down_until is None and not self._probing:
            return
        with self._lock:
            if self._down_until is not None:
                log.log(logging.WARNING if self.report else logging.DEBUG, "the graph database answers again")
            self._down_until, self._probing = None, False

    def release_probe(self) -> None:
        with self._lock:
            self._probing = False

    def state(self) -> DatabaseState:
        supervisor = self.supervisor
        restarts = 0
        if supervisor is not None:
            sup = supervisor.state()
            restarts = sup.restarts
            if sup.state != "up":
                return DatabaseState(sup.state, restarts, sup.detail, sup.retry_after, supervised=True)
        with self._lock:
            if self._down_until is not None:
                return DatabaseState("down", restarts, self._reason,
                                     max(0.0, self._down_until - time.monotonic()), supervisor is not None)
        return DatabaseState("up", restarts, supervised=supervisor is not None)
