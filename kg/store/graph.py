"""Connecting to the graph: the embedded server (started when needed) or a Neo4j at ``NEO4J_URI``.

The caller owns the driver: ``open_graph()`` yields a :class:`Graph` holding it, and closes it (and
stops an embedded server it had to start) on exit.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, LiteralString

import neo4j
from neo4j import GraphDatabase
from neo4j.exceptions import AuthError, Neo4jError, ServiceUnavailable, SessionExpired

from kg.config import GraphSettings
from kg.errors import GraphUnavailableError
from kg.store.dialect import Dialect, detect_dialect
from kg.store.embedded import DATABASE_NAME, ROOT_USER, EmbeddedServer

log = logging.getLogger(__name__)


def _run_batch(tx: neo4j.ManagedTransaction, query: LiteralString, rows: Sequence[Mapping[str, Any]],
               params: dict[str, Any]) -> None:
    tx.run(query, rows=list(rows), **params).consume()


@dataclass
class Graph:
    """A driver plus what is needed to use it: database name, dialect, the embedded server if any."""

    driver: neo4j.Driver
    database: str | None
    dialect: Dialect
    server: EmbeddedServer | None = None
    uri: str = ""
    _owns_server: bool = field(default=False, repr=False)

    def session(self, **kwargs: Any) -> neo4j.Session:
        return self.driver.session(database=self.database, **kwargs)

    def read(self, query: LiteralString, **params: Any) -> list[dict[str, Any]]:
        """Run a read query; return its records as dicts."""
        try:
            records, _, _ = self.driver.execute_query(
                query, parameters_=params, database_=self.database, routing_=neo4j.RoutingControl.READ
            )
        except (ServiceUnavailable, SessionExpired) as exc:
            raise GraphUnavailableError(f"the graph database at {self.uri} is not reachable: {exc}") from exc
        return [record.data() for record in records]

    def write(self, query: LiteralString, **params: Any) -> list[dict[str, Any]]:
        """Run a write query in its own transaction; return its records as dicts."""
        try:
            records, _, _ = self.driver.execute_query(query, parameters_=params, database_=self.database)
        except (ServiceUnavailable, SessionExpired) as exc:
            raise GraphUnavailableError(f"the graph database at {self.uri} is not reachable: {exc}") from exc
        return [record.data() for record in records]

    def write_batches(self, query: LiteralString, rows: Sequence[Mapping[str, Any]], batch_size: int = 1000,
                      progress: Any = None, **params: Any) -> None:
        """``UNWIND $rows`` a list in batches, one transaction per batch."""
        with self.session() as session:
            for start in range(0, len(rows), batch_size):
                batch = rows[start:start + batch_size]
                session.execute_write(_run_batch, query, batch, params)
                if progress is not None:
                    progress.update(len(batch))

    def ping(self) -> bool:
        try:
            self.read("RETURN 1 AS ok")
        except (GraphUnavailableError, Neo4jError):
            return False
        return True

    def close(self) -> None:
        self.driver.close()
        if self._owns_server and self.server is not None:
            self.server.stop()


def _describe(uri: str, exc: Exception) -> str:
    """One line: where, and the innermost reason the driver gave."""
    if isinstance(exc, AuthError):
        return f"authentication failed at {uri} (check NEO4J_USER / NEO4J_PASSWORD)"
    text = " ".join(str(exc).split())
    reason = text.rsplit("(reason ", 1)[-1].rstrip(")") if "(reason " in text else text
    return f"cannot reach the graph database at {uri}: {reason}"


def connect(settings: GraphSettings, *, start_embedded: bool = True, detached: bool = False) -> Graph:
    """Open a driver to the configured server; start the embedded one if needed and allowed."""
    server: EmbeddedServer | None = None
    owns = False
    database: str | None
    if settings.embedded:
        server = EmbeddedServer(settings)
        state = server.status()
        if state is None:
            if not start_embedded:
                raise GraphUnavailableError(
                    "the embedded graph server is not running (start it with `phenokg db start`)"
                )
            state = server.start(detached=detached)
            owns = not detached
        uri, auth, database = state.bolt_uri, (ROOT_USER, server.password()), DATABASE_NAME
    else:
        assert settings.neo4j_uri is not None
        uri = settings.neo4j_uri
        auth = (settings.neo4j_user, settings.neo4j_password or "")
        database = settings.neo4j_database
    driver = GraphDatabase.driver(uri, auth=auth, max_connection_pool_size=32, connection_timeout=10.0)
    try:
        driver.verify_connectivity()
        dialect = detect_dialect(driver.get_server_info().agent, server)
    except (ServiceUnavailable, AuthError, OSError) as exc:
        driver.close()
        if owns and server is not None:
            server.stop()
        raise GraphUnavailableError(_describe(uri, exc)) from exc
    return Graph(driver=driver, database=database, dialect=dialect, server=server, uri=uri, _owns_server=owns)


@contextlib.contextmanager
def open_graph(settings: GraphSettings | None = None, *, start_embedded: bool = True) -> Iterator[Graph]:
    """Context manager around :func:`connect`; closes the driver and stops a server it started."""
    graph = connect(settings or GraphSettings(), start_embedded=start_embedded)
    try:
        yield graph
    finally:
        graph.close()
