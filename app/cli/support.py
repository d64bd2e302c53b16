"""What every ``phenokg`` command shares, with no command imported: the graph of one command, one-line
failures, and the mapping of the project's errors to exit codes (applied once, in :func:`app.cli.main.main`)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer

from app.core.config import AppSettings
from kg.errors import EmbeddedServerError, GraphUnavailableError, PhenoKGError, SourceFormatError, ValidationError

#: Errors of bad input that are not the project's own: a path that is not there or not readable, a file that is
#: not text. Every other input check raises :class:`kg.errors.ValidationError`; a plain ``ValueError`` is a bug.
INPUT_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, UnicodeDecodeError)


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, then exit with ``code`` (2: bad input, 1: anything else)."""
    typer.echo(f"phenokg: error: {message}", err=True)
    raise typer.Exit(code)


def note(message: str) -> None:
    """A progress or advisory line on stderr (stdout stays machine-readable)."""
    typer.echo(f"phenokg: {message}", err=True)


def _lost_connection(exc: BaseException) -> bool:
    """A driver error for a database that went away under a call that used the driver directly."""
    from neo4j.exceptions import ConnectionAcquisitionTimeoutError, ServiceUnavailable, SessionExpired

    return isinstance(exc, (ServiceUnavailable, SessionExpired, ConnectionAcquisitionTimeoutError))


def exit_code(exc: BaseException) -> int | None:
    """The exit code of an expected failure (``None``: a bug, which keeps its traceback)."""
    if isinstance(exc, (SourceFormatError, ValidationError, *INPUT_OS_ERRORS)):
        return 2
    if isinstance(exc, PhenoKGError) or _lost_connection(exc):
        return 1
    return None


def message(exc: BaseException) -> str:
    """The one line a failure prints (a driver's multi-line message is folded; a server log tail is kept)."""
    if _lost_connection(exc):
        return "the graph database is not reachable: " + " ".join(str(exc).split())
    if isinstance(exc, GraphUnavailableError) and not isinstance(exc, EmbeddedServerError):
        return " ".join(str(exc).split())
    return str(exc)


@functools.cache
def settings() -> AppSettings:
    """The settings of this process, read from the environment once; every command (and the API that
    ``phenokg serve`` runs) uses this one object."""
    return AppSettings()


@contextmanager
def graph_connection(start: bool = True, *, migrated: bool = False) -> Iterator[Any]:
    """A graph for one command: starts the embedded server if it is not running, stops it afterwards.
    ``migrated``: apply pending migrations first (writers that rely on the indexes they create, such as the
    evidence import's per-batch lookups)."""
    from kg.store.graph import open_graph
    from kg.store.migrations import migrate

    with open_graph(settings(), start_embedded=start) as graph:
        if migrated:
            for applied in migrate(graph):
                note(f"applied migration {applied.filename}")
        yield graph
