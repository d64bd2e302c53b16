"""``HEAD`` for every ``GET`` route (RFC 9110 §9.3.2): FastAPI routes declared with ``@router.get`` answer only
GET, so a pure ASGI middleware runs a HEAD request as a GET and sends its status and headers without the body.
The 405 handler's ``Allow`` header (app.api.problems) lists HEAD wherever GET is served, and this makes it true."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGetMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        body_sent = False

        async def headers_only(message: Message) -> None:
            nonlocal body_sent
            if message["type"] != "http.response.body":
                await send(message)
            elif not body_sent:
                body_sent = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET"}, receive, headers_only)
