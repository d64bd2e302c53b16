"""One request-body limit for every endpoint, enforced while the body streams in (chunked bodies included).

A pure ASGI middleware: it finds the route a request is for, then

- answers 401/403 at once when the route needs the write token and the request lacks it (nothing is read);
- answers 413 at once when a declared ``Content-Length`` is above the route's limit (nothing is read);
- counts the bytes of every ``http.request`` message as the route reads them, and stops the read with 413 as
  soon as the count passes the limit, so neither a parser nor a spool ever holds more than the limit.

Limits: :data:`DEFAULT_LIMIT` for every route, unless :func:`route_limits` names a larger one (image uploads,
text batches). The 413 raised mid-read is a Starlette ``HTTPException``, so FastAPI's body parsing re-raises it and
the problem handler renders it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.auth import check_bearer, require_write_token
from app.api.problems import problem

DEFAULT_LIMIT: Final = 1024 * 1024  # JSON requests: 200 ids, a 100k-character note, a job config


class BodyTooLargeError(HTTPException):
    """The body passed the route's limit while it was being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the {limit:,} bytes this endpoint accepts")


@dataclass(frozen=True)
class _RoutePolicy:
    limit: int
    needs_token: bool


def _needs_token(route: APIRoute) -> bool:
    return any(getattr(dep, "dependency", None) is require_write_token for dep in route.dependencies)


class BodyLimitMiddleware:
    """See the module doc. ``routes``: the app's API routes (as its routers declare them); ``limits`` maps route
    path templates (``/retrieval/image``) to their limit in bytes."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[APIRoute], limits: Mapping[str, int],
                 default: int = DEFAULT_LIMIT) -> None:
        self.app = app
        self.default = default
        self._routes = [(route, _RoutePolicy(limits.get(route.path, default), _needs_token(route)))
                        for route in routes]

    def _policy(self, scope: Scope) -> _RoutePolicy:
        for route, policy in self._routes:
            if route.matches(scope)[0] == Match.FULL:
                return policy
        return _RoutePolicy(self.default, False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = self._policy(scope)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        early = self._refuse_early(scope, headers, policy)
        if early is not None:
            await early(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > policy.limit:
                    raise BodyTooLargeError(policy.limit)
            return message

        await self.app(scope, limited_receive, send)

    def _refuse_early(self, scope: Scope, headers: dict[str, str], policy: _RoutePolicy) -> Any:
        path = scope.get("path", "")
        if policy.needs_token:
            fastapi_app = scope.get("app")
            expected = getattr(getattr(fastapi_app, "state", None), "api_token", None)
            if expected is not None:
                try:
                    check_bearer(headers.get("authorization"), expected)
                except HTTPException as exc:
                    title = "Unauthorized" if exc.status_code == 401 else "Forbidden"
                    response = problem(exc.status_code, title, str(exc.detail), instance=path)
                    response.headers.update(exc.headers or {})
                    return response
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > policy.limit:
            return problem(413, "Content Too Large", f"the request body is {int(length):,} bytes; this endpoint "
                                                     f"accepts at most {policy.limit:,}", instance=path)
        return None
