"""RFC 9457 problem details (``application/problem+json``) for every error the API returns."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.core.errors import ProblemError
from kg.errors import GraphUnavailableError, NotFoundError, ValidationError

PROBLEM_JSON = "application/problem+json"
# Response schemas that describe problem bodies: documented under application/problem+json, not application/json.
PROBLEM_SCHEMAS = frozenset({"Problem", "ValidationProblem", "ObsoleteTermProblem"})


def problem(status: int, title: str, detail: str | None = None, *, instance: str | None = None,
            **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
                 410: "Gone", 413: "Content Too Large",
                 422: "Unprocessable Content"}.get(exc.status_code, "HTTP error")
        detail = exc.detail if isinstance(exc.detail, str) else None
        response = problem(exc.status_code, title, detail, instance=request.url.path)
        response.headers.update(exc.headers or {})  # e.g. Allow on a 405 (RFC 9110)
        if exc.status_code == 405:
            response.headers["Allow"] = ", ".join(_allowed_methods(request))
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        return problem(422, "Unprocessable Content", "the request is not valid", instance=request.url.path,
                       errors=errors)

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return problem(404, "Not Found", str(exc), instance=request.url.path)

    @app.exception_handler(ValidationError)
    async def invalid(request: Request, exc: ValidationError) -> JSONResponse:
        return problem(422, "Unprocessable Content", str(exc), instance=request.url.path)

    @app.exception_handler(GraphUnavailableError)
    async def unavailable(request: Request, exc: GraphUnavailableError) -> JSONResponse:
        if exc.retry_after is None:
            return problem(503, "Service Unavailable", "the graph database is not reachable",
                           instance=request.url.path)
        seconds = max(1, math.ceil(exc.retry_after))
        response = problem(503, "Service Unavailable",
                           f"the graph database is not reachable; it is expected back (retry in {seconds} s)",
                           instance=request.url.path)
        response.headers["Retry-After"] = str(seconds)
        return response

    @app.exception_handler(ProblemError)
    async def explicit_problem(request: Request, exc: ProblemError) -> JSONResponse:
        response = problem(exc.status, exc.title, exc.detail, instance=request.url.path, **exc.extra)
        response.headers.update(exc.headers)
        return response

    _document_problems(app)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's 405 names only the last route it tried): each
    method is tried against the routes, included routers too, through their public ``matches``."""
    allowed = [method for method in _METHODS
               if any(route.matches({**request.scope, "method": method})[0] == Match.FULL
                      for route in request.app.router.routes)]
    if "GET" in allowed and "HEAD" not in allowed:  # app.api.head_requests serves HEAD wherever GET is served
        allowed.append("HEAD")
    return sorted(allowed)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what the handlers above send: every 422 is a ``ValidationProblem`` and
    every error response whose model is a problem schema is ``application/problem+json``."""
    from app.schemas.terms import Problem, ValidationProblem

    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (Problem, ValidationProblem):
            definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in definition.pop("$defs", {}).items():
                components.setdefault(name, sub)
            components.setdefault(model.__name__, definition)
        ref = {"$ref": "#/components/schemas/ValidationProblem"}
        unparsable = {"description": "The body is not parseable (not JSON, not UTF-8)",
                      "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                if "requestBody" in operation:  # FastAPI answers 400 when it cannot parse a body
                    operation.setdefault("responses", {}).setdefault("400", unparsable)
                for status, response in (operation.get("responses") or {}).items():
                    content = response.get("content") or {}
                    if status == "422" and "HTTPValidationError" in str(content):
                        response["content"] = {PROBLEM_JSON: {"schema": ref}}
                    elif status[:1] in "45" and "application/json" in content and \
                            str(content["application/json"].get("schema", {}).get("$ref", "")).rsplit("/", 1)[-1] \
                            in PROBLEM_SCHEMAS:
                        content[PROBLEM_JSON] = content.pop("application/json")
        if not any("HTTPValidationError" in str(p) for p in schema.get("paths", {}).values()):
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
