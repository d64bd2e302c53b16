"""Connecting to the graph: the embedded server (started when needed) or a Neo4j at ``NEO4J_URI``.

The caller owns the driver: ``open_graph()`` yields a :class:`Graph` holding it, and closes it (and
stops an embedded server it had to start) on exit. A :class:`Graph` outlives its driver: when the embedded
server it runs dies, its :class:`~kg.store.supervisor.Supervisor` restarts it and the graph reconnects; while the
database is known to be down, calls fail at once (:mod:`kg.store.availability`) instead of waiting on the driver.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, LiteralString, TypeVar

import neo4j
from neo4j import GraphDatabase
from neo4j.exceptions import (
    AuthError,
    ConnectionAcquisitionTimeoutError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
)

from kg.config import GraphSettings
from kg.errors import GraphUnavailableError
from kg.store.availability import Availability
from kg.store.dialect import Dialect, detect_dialect
from kg.store.embedded import DATABASE_NAME, ROOT_USER, EmbeddedServer, ServerState
from kg.store.supervisor import RestartPolicy, Supervisor

log = logging.getLogger(__name__)

T = TypeVar("T")
# a connection that fails, or none within connection_acquisition_timeout (the server hangs, or every pooled
# connection is busy that long): the database counts as down for down_memo_s
_CONNECTIVITY = (ServiceUnavailable, SessionExpired, ConnectionAcquisitionTimeoutError)
_QUICK_FAILURE_S = 1.0  # a failure faster than this (a stale pooled connection) is tried once more


def _open_driver(uri: str, auth: tuple[str, str], settings: GraphSettings, *,
                 liveness_check: bool = True) -> neo4j.Driver:
    """A driver whose waits are bounded: a server that does not answer costs ``connect_timeout_s``, not a minute.
    ``liveness_check``: a pooled connection is checked (RESET, within the acquisition timeout) before use, so a
    server that hangs costs that timeout, not a read that never returns (benchmarks/graph_outage.py: its cost)."""
    return GraphDatabase.driver(uri, auth=auth, max_connection_pool_size=32,
                                connection_timeout=settings.connect_timeout_s,
                                connection_acquisition_timeout=2 * settings.connect_timeout_s + 1.0,
                                max_transaction_retry_time=settings.retry_time_s,
                                liveness_check_timeout=0.0 if liveness_check else None)


def _describe(uri: str, exc: Exception) -> str:
    """One line: where, and the innermost reason the driver gave."""
    if isinstance(exc, AuthError):
        return f"authentication failed at {uri} (check NEO4J_USER / NEO4J_PASSWORD)"
    text = " ".join(str(exc).split())
    reason = text.rsplit("(reason ", 1)[-1].rstrip(")") if "(reason " in text else text
    return f"cannot reach the graph database at {uri}: {reason}"


class Graph:
    """A driver plus what is needed to use it: database name, dialect, the embedded server if any."""

    def __init__(self, driver: neo4j.Driver, database: str | None, dialect: Dialect, settings: GraphSettings, *,
                 server: EmbeddedServer | None = None, uri: str = "", auth: tuple[str, str] = ("", ""),
                 owns_server: bool = False, agent: str = "") -> None:
        self._driver = driver
        self.database = database
        self.dialect = dialect
        self.server = server
        self.uri = uri
        self.server_agent = agent  # the Bolt agent string, read when (re)connecting
        self.availability = Availability(settings.down_memo_s)
        self._settings = settings
        self._auth = auth
        self._owns_server = owns_server
        self._swap = threading.Lock()

    @property
    def supervisor(self) -> Supervisor | None:
        return self.availability.supervisor

    @property
    def driver(self) -> neo4j.Driver:
        """The current driver (replaced on reconnect); raises at once while the database is known to be down."""
        self.availability.check()
        return self._driver

    @contextlib.contextmanager
    def session(self, **kwargs: Any) -> Iterator[neo4j.Session]:
        """A driver session (``with graph.session() as s``); a lost connection raises GraphUnavailableError."""
        self.availability.check()
        try:
            with self._driver.session(database=self.database, **kwargs) as session:
                yield session
        except _CONNECTIVITY as exc:
            raise self.availability.failed(_describe(self.uri, exc)) from exc

    def read(self, query: LiteralString, **params: Any) -> list[dict[str, Any]]:
        """Run a read query; return its records as dicts."""
        return self._run(lambda driver: self._transaction(driver, query, params, write=False))

    def write(self, query: LiteralString, **params: Any) -> list[dict[str, Any]]:
        """Run a write query in its own transaction; return its records as dicts."""
        return self._run(lambda driver: self._transaction(driver, query, params, write=True))

    def write_batches(self, query: LiteralString, rows: Sequence[Mapping[str, Any]], batch_size: int = 1000,
                      progress: Any = None, **params: Any) -> None:
        """``UNWIND $rows`` a list in batches, one transaction per batch."""
        for start in range(0, len(rows), batch_size):
            batch = list(rows[start:start + batch_size])
            self._run(functools.partial(self._transaction, query=query, params={**params, "rows": batch},
                                        write=True, keep=False))
            if progress is not None:
                progress.update(len(batch))

    def ping(self) -> bool:
        try:
            self.read("RETURN 1 AS ok")
        except (GraphUnavailableError, Neo4jError):
            return False
        return True

    # ---- running queries: fail fast while down, retry transient errors within retry_time_s ----------------------
    def _transaction(self, driver: neo4j.Driver, query: LiteralString, params: dict[str, Any], *, write: bool,
                     keep: bool = True) -> list[dict[str, Any]]:
        mode = neo4j.WRITE_ACCESS if write else neo4j.READ_ACCESS
        # the bookmarks execute_query would share: a read sees the writes before it, on a cluster too
        with driver.session(database=self.database, default_access_mode=mode,
                            bookmark_manager=driver.execute_query_bookmark_manager) as session, \
                session.begin_transaction() as tx:
            result = tx.run(query, params)
            records = [record.data() for record in result] if keep else []
            result.consume()
            tx.commit()
        return records

    def _run(self, work: Callable[[neo4j.Driver], T]) -> T:
        probe = self.availability.check(take_probe=True)
        try:
            if probe:
                self._follow_server()
            return self._attempts(work)
        finally:
            if probe:
                self.availability.release_probe()

    def _attempts(self, work: Callable[[neo4j.Driver], T]) -> T:
        """Our own retries (the driver's would wait up to its retry time on a dead server): a connection lost at
        once is tried once more on a fresh one (pooled connections go stale when a server restarts) unless the
        server is known to be gone, a timeout is not; transient errors are retried with back-off within
        ``retry_time_s``."""
        fresh_try, delay, deadline = True, 0.1, time.monotonic() + self._settings.retry_time_s
        while True:
            began = time.monotonic()
            try:
                result = work(self._driver)
            except _CONNECTIVITY as exc:
                supervisor = self.supervisor
                quick = time.monotonic() - began < _QUICK_FAILURE_S
                if fresh_try and quick and not isinstance(exc, ConnectionAcquisitionTimeoutError) and \
                        (supervisor is None or supervisor.up):
                    fresh_try = False
                    continue
                raise self.availability.failed(_describe(self.uri, exc)) from exc
            except (Neo4jError, DriverError) as exc:
                self.availability.succeeded()  # the server answered
                if exc.is_retryable() and time.monotonic() + delay < deadline:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise
            self.availability.succeeded()
            return result

    # ---- reconnecting ------------------------------------------------------------------------------------------
    def reconnect(self, uri: str) -> None:
        """Replace the driver with one to ``uri`` (the embedded server restarted, maybe on other ports)."""
        driver = _open_driver(uri, self._auth, self._settings)
        try:
            driver.verify_connectivity()
            agent = driver.get_server_info().agent
        except BaseException:
            driver.close()
            raise
        with self._swap:
            old, self._driver, self.uri, self.server_agent = self._driver, driver, uri, agent
        self.availability.succeeded()
        with contextlib.suppress(Exception):
            old.close()
        log.info("reconnected to the graph database at %s", uri)

    def _follow_server(self) -> None:
        """An embedded server run by another process (``phenokg db start``) may have been restarted on other ports."""
        if self.server is None or self.supervisor is not None:
            return
        with contextlib.suppress(Exception):
            state = self.server.status()
            if state is not None and state.bolt_uri != self.uri:
                self.reconnect(state.bolt_uri)

    def supervise(self, process: Any, *, restart: bool, start_seconds: float) -> None:
        """Watch the embedded JVM this graph started (see :mod:`kg.store.supervisor`)."""
        assert self.server is not None

        def reconnect(state: ServerState) -> None:
            self.reconnect(state.bolt_uri)

        policy = RestartPolicy.from_settings(self._settings, restart=restart)
        self.availability.supervisor = Supervisor(self.server, process, reconnect, policy, start_seconds).start()

    def close(self) -> None:
        supervisor = self.supervisor
        if supervisor is not None:
            supervisor.stop()  # no restart from here on
        with contextlib.suppress(Exception):
            self._driver.close()
        if self._owns_server and self.server is not None:
            self.server.stop()
        if supervisor is not None:  # a restart under way stops the server it started itself (or dies with us)
            supervisor.join(10.0)


def connect(settings: GraphSettings, *, start_embedded: bool = True, detached: bool = False,
            restart: bool = False) -> Graph:
    """Open a driver to the configured server; start the embedded one if needed and allowed.

    An embedded server started here (not detached) is watched: its death makes calls fail at once, and with
    ``restart`` (the API) it is started again (see :mod:`kg.store.supervisor`).
    """
    server: EmbeddedServer | None = None
    owns = False
    database: str | None
    start_seconds = 5.0
    if settings.embedded:
        server = EmbeddedServer(settings)
        state = server.status()
        if state is None:
            if not start_embedded:
                raise GraphUnavailableError(
                    "the embedded graph server is not running (start it with `phenokg db start`)"
                )
            began = time.monotonic()
            state = server.start(detached=detached)
            start_seconds = time.monotonic() - began
            owns = not detached
        uri, auth, database = state.bolt_uri, (ROOT_USER, server.password()), DATABASE_NAME
    else:
        assert settings.neo4j_uri is not None
        uri = settings.neo4j_uri
        auth = (settings.neo4j_user, settings.neo4j_password or "")
        database = settings.neo4j_database
    driver = _open_driver(uri, auth, settings)
    try:
        driver.verify_connectivity()
        agent = driver.get_server_info().agent
        dialect = detect_dialect(agent, server)
    except (ServiceUnavailable, AuthError, OSError) as exc:
        driver.close()
        if owns and server is not None:
            server.stop()
        raise GraphUnavailableError(_describe(uri, exc)) from exc
    graph = Graph(driver, database, dialect, settings, server=server, uri=uri, auth=auth, owns_server=owns,
                  agent=agent)
    graph.availability.report = restart
    if owns and server is not None and server.process is not None:
        graph.supervise(server.process, restart=restart, start_seconds=start_seconds)
    return graph


@contextlib.contextmanager
def open_graph(settings: GraphSettings | None = None, *, start_embedded: bool = True) -> Iterator[Graph]:
    """Context manager around :func:`connect`; closes the driver and stops a server it started."""
    graph = connect(settings or GraphSettings(), start_embedded=start_embedded)
    try:
        yield graph
    finally:
        graph.close()
