"""A 405 names every method the path serves (RFC 9110), also for routes of included routers."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from app.core.config import AppSettings
from app.main import create_app


def test_405_allow_lists_every_method_of_the_path(tmp_path: Path) -> None:
    client = TestClient(create_app(AppSettings(PHENOKG_HOME=str(tmp_path))))  # type: ignore[call-arg]
    expected = {"/jobs": "GET, HEAD, POST", "/jobs/job-1/cancel": "POST", "/terms/HP:0000118": "GET, HEAD",
                "/retrieval/image": "POST"}
    for path, allow in expected.items():
        response = client.options(path)
        assert response.status_code == 405, path
        assert response.headers["allow"] == allow, path
        assert response.headers["content-type"].startswith("application/problem+json")


def test_head_is_served_wherever_get_is(tmp_path: Path) -> None:
    """RFC 9110: HEAD answers like GET without a body (pages and API routes alike); a POST-only path stays 405."""
    client = TestClient(create_app(AppSettings(PHENOKG_HOME=str(tmp_path))))  # type: ignore[call-arg]
    got, head = client.get("/explore"), client.head("/explore")
    assert head.status_code == got.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["content-length"] == got.headers["content-length"]
    refused = client.head("/retrieval/image")
    assert refused.status_code == 405
    assert refused.headers["allow"] == "POST"
