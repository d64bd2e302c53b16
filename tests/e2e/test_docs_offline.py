"""The API documentation pages (/docs: Swagger UI, /redoc: ReDoc) in a real headless browser with the network
blocked: Debian's chromium driven by Playwright against a real uvicorn serving the real app over the embedded
graph server. Every request that does not go to the service on 127.0.0.1 is aborted (and recorded), and the
browser's host resolver knows no other host, so the pages must render from the service's own assets.

Screenshots go to ``$PHENOKG_TEST_ARTIFACTS`` (default ``tests/e2e/artifacts/``, git-ignored). Skipped, with
the reason, only when there is no chromium (``apt-get install -y chromium``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.config import AppSettings
from app.main import create_app
from kg.config import GraphSettings
from kg.store.graph import Graph
from tests.helpers import serve_in_thread

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("PHENOKG_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts")
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def base_url(graph: Graph, graph_settings: GraphSettings) -> Iterator[str]:
    settings = AppSettings(**{"PHENOKG_HOME": str(graph_settings.home),  # type: ignore[arg-type]
                              "PHENOKG_WARM_SNAPSHOT": False,
                              **({"NEO4J_URI": graph_settings.neo4j_uri} if graph_settings.neo4j_uri else {})})
    with serve_in_thread(create_app(settings), "docs-uvicorn") as url:
        yield url


@pytest.fixture(scope="module")
def offline_page(base_url: str) -> Iterator[tuple[Any, list[str], list[str]]]:
    """A tab that can reach only the service: (page, requests that tried to leave, requests served)."""
    if CHROMIUM is None:
        pytest.skip("no chromium binary (apt-get install -y chromium)")
    from playwright.sync_api import Route, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    blocked: list[str] = []
    served: list[str] = []

    def only_the_service(route: Route) -> None:
        url = route.request.url
        if url.startswith(base_url + "/") or url.startswith(("data:", "blob:")):
            served.append(url)
            route.continue_()
        else:
            blocked.append(url)
            route.abort("internetdisconnected")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                           "--disable-background-networking", "--disable-component-update",
                                           "--disable-sync", "--disable-quic", "--no-first-run",
                                           "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])
        context = browser.new_context(viewport={"width": 1440, "height": 1000}, base_url=base_url)
        context.route("**/*", only_the_service)
        tab = context.new_page()
        tab.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        yield tab, blocked, served
        context.close()
        browser.close()
    assert not errors, errors


def test_swagger_ui_renders_offline(offline_page: tuple[Any, list[str], list[str]], base_url: str) -> None:
    page, blocked, served = offline_page
    blocked.clear()
    response = page.goto("/docs")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    rank = page.locator(".opblock.opblock-post", has=page.locator(".opblock-summary-path[data-path='/rank']"))
    rank.wait_for()
    assert rank.locator(".opblock-summary-method").inner_text().strip() == "POST"
    assert page.locator(".opblock").count() >= 20  # every operation, not just one
    assert page.locator(".opblock-summary-path[data-path='/jobs']").count() == 2  # GET and POST /jobs
    rank.locator(".opblock-summary").click()  # an operation opens, with its example body
    page.locator(".opblock-post.is-open .opblock-description-wrapper, .opblock-post.is-open .body-param")\
        .first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "docs-swagger-offline.png"), full_page=False)
    assert f"{base_url}/docs/assets/swagger-ui-bundle.js" in served
    assert f"{base_url}/openapi.json" in served
    assert not blocked, blocked


def test_redoc_renders_offline(offline_page: tuple[Any, list[str], list[str]], base_url: str) -> None:
    page, blocked, served = offline_page
    blocked.clear()
    page.goto("/redoc")
    page.locator("h2", has_text="Rank diseases for observed and absent phenotypes").first.wait_for()
    endpoint = page.locator("[data-section-id='operation/rank_rank_post']").first
    endpoint.wait_for()
    text = endpoint.inner_text()
    assert "post" in text.lower() and "/rank" in text
    assert page.locator("[data-section-id^='operation/']").count() >= 20
    endpoint.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "docs-redoc-offline.png"), full_page=False)
    assert f"{base_url}/docs/assets/redoc.standalone.js" in served
    assert not blocked, blocked
