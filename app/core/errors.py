"""The error a service or route raises to answer with an RFC 9457 problem (rendered by :mod:`app.api.problems`)."""

from __future__ import annotations

from typing import Any


class ProblemError(Exception):
    """Raise from a route for any status with extra members in the body (e.g. 410 with ``consider`` ids)."""

    def __init__(self, status: int, title: str, detail: str | None = None, *,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra
        self.headers = dict(headers or {})  # e.g. Retry-After on a 503
