"""API token for write endpoints: ``Authorization: Bearer <token>``; read endpoints stay open.

The token comes from ``PHENOKG_API_TOKEN``; without one the service generates a token on first start, keeps it
in ``$PHENOKG_HOME/api-token`` (mode 0600, reused on later starts) and logs where it is, as Jupyter does. A
missing header or another scheme is 401 with ``WWW-Authenticate: Bearer``; a wrong token 403. Tokens are
compared in constant time.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.core.config import AppSettings
from app.schemas.terms import Problem

log = logging.getLogger(__name__)

TOKEN_FILE: Final = "api-token"

_bearer = HTTPBearer(auto_error=False, description="The API token (PHENOKG_API_TOKEN, or PHENOKG_HOME/api-token)")


def token_file(settings: AppSettings) -> Path:
    return settings.home / TOKEN_FILE


def ensure_token(settings: AppSettings) -> str:
    """The configured token, else the one in ``PHENOKG_HOME/api-token`` (generated there, 0600, if absent)."""
    if settings.api_token is not None and settings.api_token.get_secret_value():
        return settings.api_token.get_secret_value()
    path = token_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = path.read_text(encoding="utf-8").strip()
        if token:
            log.info("write endpoints need the API token in %s", path)
            return token
        path.unlink()
        return ensure_token(settings)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    log.warning("generated an API token for write endpoints: %s (set PHENOKG_API_TOKEN to choose one)", path)
    return token


def check_bearer(authorization: str | None, expected: str) -> None:
    """Raise 401 (no bearer token) or 403 (another token) for an ``Authorization`` header value."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "this endpoint needs 'Authorization: Bearer <API token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8")):
        raise HTTPException(403, "the API token is not valid")


def require_write_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """FastAPI dependency of every write endpoint (:mod:`app.api.body_limit` checks it before the body too)."""
    header = f"{credentials.scheme} {credentials.credentials}" if credentials is not None else None
    check_bearer(header, request.app.state.api_token)


#: Error responses of every write endpoint (OpenAPI).
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No `Authorization: Bearer <token>` header",
          "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}}},
    403: {"model": Problem, "description": "The token is not the API token"},
}
