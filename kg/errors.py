"""A small exception hierarchy; driver and parser errors are re-raised ``from`` these."""

from __future__ import annotations

from pathlib import Path


class PhenoKGError(Exception):
    """Base class of every error phenokg raises on purpose."""


class GraphUnavailableError(PhenoKGError):
    """The graph database cannot be reached or did not start; ``retry_after`` (seconds) when it is expected back."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class EmbeddedServerError(GraphUnavailableError):
    """The embedded server failed to start or stop; carries the tail of its log."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message + (f"\n--- server log (last lines) ---\n{log_tail}" if log_tail else ""))
        self.log_tail = log_tail


class MigrationError(PhenoKGError):
    """A migration failed, or an applied migration's file changed since it was applied."""


class SourceFormatError(PhenoKGError):
    """A source file (OBO, HPOA, evidence CSV/JSONL) is malformed at a known place."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line
        self.reason = message


class NotFoundError(PhenoKGError):
    """A requested entity does not exist in the graph."""


class ValidationError(PhenoKGError, ValueError):
    """Input that is well-formed but not acceptable (unknown id in a curated pack, …)."""
