"""The /explore page end to end in a real headless browser: Debian's chromium driven by Playwright, against a
real uvicorn serving the real app over the embedded graph server (mini HPO fixture plus three evidence images).

Screenshots go to ``$PHENOKG_TEST_ARTIFACTS`` (default ``tests/e2e/artifacts/``, git-ignored). Skipped, with
the reason, only when there is no chromium (``apt-get install -y chromium``; ``.ci/run`` installs it). The
browser never downloads anything (no ``playwright install``): it is pointed at the system binary.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.config import AppSettings
from app.main import create_app
from kg.config import GraphSettings
from kg.repo import jobs as J
from kg.store.graph import Graph
from tests.helpers import clear_graph, serve_in_thread
from tests.integration.explore_data import CARDIOMEGALY, EFFUSION, PNEUMONIA, build_mini_with_evidence, png_bytes

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("PHENOKG_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts")
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def base_url(graph: Graph, graph_settings: GraphSettings, tiny_clip_dir: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    build_mini_with_evidence(graph, graph_settings.home, tmp_path_factory.mktemp("evidence"))
    _record_finished_jobs(graph, tmp_path_factory.mktemp("jobs"))
    settings = AppSettings(**{"PHENOKG_HOME": str(graph_settings.home),  # type: ignore[arg-type]
                              "PHENOKG_CLIP_MODEL": str(tiny_clip_dir),  # an untrained tiny image–text model
                              **({"NEO4J_URI": graph_settings.neo4j_uri} if graph_settings.neo4j_uri else {})})
    with serve_in_thread(create_app(settings), "explore-uvicorn") as url:
        yield url
    clear_graph(graph)


@pytest.fixture(scope="module")
def page(base_url: str) -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("no chromium binary (apt-get install -y chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                           "--disable-background-networking", "--disable-component-update",
                                           "--disable-sync", "--disable-quic", "--no-first-run"])
        context = browser.new_context(viewport={"width": 1440, "height": 1000}, base_url=base_url)
        tab = context.new_page()
        tab.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        # a request that leaves the machine would mean the page is not self-contained
        outside: list[str] = []
        tab.on("request", lambda r: None if r.url.startswith(base_url) or r.url.startswith(("data:", "blob:"))
               else outside.append(r.url))
        yield tab
        context.close()
        browser.close()
    assert not errors, errors
    assert not outside, outside


def _record_finished_jobs(graph: Graph, job_dir: Path) -> None:
    """Two finished training-job records, as the job manager leaves them (a real run of each is in
    tests/integration/app/api/test_api_jobs.py); finished, so the manager's poller leaves them alone."""
    history = [{"step": s, "loss": 3.0 / s, "lr": 1e-4} for s in range(1, 21)]
    done = J.create_job(graph, J.TrainingJob(id="job-browser-done", kind="knowledge-encoder", job_dir=str(job_dir),
                                             model_id="knowledge-encoder-browser", total_steps=20))
    J.update_job(graph, done.evolve(status="succeeded", progress=1.0, step=20, metrics={"loss": 0.15},
                                    history=history, started_at=J.now(), finished_at=J.now()))
    stopped = J.create_job(graph, J.TrainingJob(id="job-browser-stopped", kind="clip", job_dir=str(job_dir),
                                                model_id="clip-browser", total_steps=50))
    J.update_job(graph, stopped.evolve(status="cancelled", progress=0.4, step=20, metrics={"total": 2.5},
                                       history=[{"step": h["step"], "total": h["loss"] + 2} for h in history],
                                       started_at=J.now(), finished_at=J.now()))


def graph_counts(page: Any) -> dict[str, int]:
    counts: dict[str, int] = page.evaluate(
        "() => ({nodes: window.phenokgGraph.nodes().length, edges: window.phenokgGraph.edges().length,"
        " typical: window.phenokgGraph.edges('[type = \"HAS_PHENOTYPE\"]').length,"
        " excluded: window.phenokgGraph.edges('[type = \"EXCLUDES\"]').length})")
    return counts


def test_search_pick_term_and_see_its_graph(page: Any) -> None:
    page.goto("/explore")
    page.wait_for_selector("#starters li")  # the home page lists a few terms from the graph
    page.fill("#q", "pneumo")
    option = page.locator(f"#suggestions li[data-id='{PNEUMONIA}']")
    option.wait_for()
    assert "Pneumonia" in option.inner_text()
    page.keyboard.press("ArrowDown")  # the keyboard moves through the suggestions ...
    assert page.locator("#suggestions li[aria-selected=true]").get_attribute("data-id") == PNEUMONIA
    option.click()  # ... and a click picks one
    page.wait_for_function(f"location.hash === '#/term/{PNEUMONIA}'")
    page.wait_for_function("document.querySelector('#term-name')?.textContent === 'Pneumonia'")
    page.wait_for_function("window.phenokgGraph && window.phenokgGraph.nodes().length > 1")
    assert page.locator("#graph canvas").count() >= 1
    counts = graph_counts(page)
    assert counts["nodes"] >= 4 and counts["typical"] == 1
    card = page.locator("#card").inner_text()
    assert "Pneumonias" in card and "Parents" in card  # synonyms and the hierarchy
    typical = page.locator("#disease-sets [data-set='typical'] li")
    assert typical.count() == 1 and "Lung disease A" in typical.inner_text()
    page.wait_for_selector("#evidence figure.thumb img")
    thumbs = page.locator("#evidence figure.thumb")
    assert thumbs.count() == 2
    page.locator("#evidence").scroll_into_view_if_needed()  # thumbnails load lazily, once on screen
    page.wait_for_function("[...document.querySelectorAll('#evidence img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    assert "pneumonia" in thumbs.first.inner_text().lower()
    page.screenshot(path=str(ARTIFACTS / "explore-term.png"), full_page=True)


def test_disease_view_separates_typical_and_excluded(page: Any) -> None:
    page.goto(f"/explore#/term/{CARDIOMEGALY}")
    page.wait_for_function("document.querySelector('#term-name')?.textContent === 'Cardiomegaly'")
    excluded = page.locator("#disease-sets [data-set='excluded'] li")
    excluded.first.wait_for()
    assert "Lung disease A" in excluded.inner_text()
    excluded.locator("a").first.click()  # open the disease
    page.wait_for_function("document.querySelector('#term-name')?.textContent === 'Lung disease A'")
    page.wait_for_function("window.phenokgGraph && window.phenokgGraph.edges('[type = \"EXCLUDES\"]').length > 0")
    counts = graph_counts(page)
    assert counts["typical"] >= 2 and counts["excluded"] == 1
    assert "LUNGA" in page.locator("#card dl.props").inner_text()  # the disease's genes
    typical_names = page.locator("#disease-sets [data-set='typical'] li").all_inner_texts()
    excluded_names = page.locator("#disease-sets [data-set='excluded'] li").all_inner_texts()
    assert any("Pneumonia" in t for t in typical_names)
    assert any("Cardiomegaly" in t for t in excluded_names) and not any("Cardiomegaly" in t for t in typical_names)
    # visually distinct: the two sets' rows have different border colours, excluded names are struck through
    styles = page.evaluate("""() => ['typical', 'excluded'].map(k => {
        const li = document.querySelector(`#disease-sets [data-set='${k}'] li`);
        return [getComputedStyle(li).borderLeftColor,
                getComputedStyle(li.querySelector('.name')).textDecorationLine];
    })""")
    assert styles[0][0] != styles[1][0] and "line-through" in styles[1][1] and "line-through" not in styles[0][1]
    page.screenshot(path=str(ARTIFACTS / "explore-disease.png"), full_page=True)


def _upload(page: Any, image: Path, scope: str = "model") -> None:
    page.goto("/explore#/retrieval")
    page.set_input_files("#upload-file", str(image))
    page.select_option("#upload-scope", scope)
    page.click("#upload-form button[type=submit]")


def _all_images_loaded(page: Any) -> None:
    page.wait_for_function("[...document.querySelectorAll('#retrieval-out img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")


def test_upload_an_image_and_read_the_grounded_answer(page: Any, tmp_path: Path) -> None:
    """The tiny model is untrained and uncalibrated, with no fitted domain threshold: the answer is in domain,
    says it is uncalibrated, and grounds each phenotype in the three evidence images."""
    image = tmp_path / "xray.png"
    image.write_bytes(png_bytes(150))
    _upload(page, image)
    assert page.locator("#upload-preview").is_visible()
    phenotypes = page.locator("#retrieval-out [data-result='phenotypes'] li")
    phenotypes.first.wait_for()
    texts = phenotypes.all_inner_texts()
    assert len(texts) >= 3 and all("HP:" in t and "%" in t for t in texts), texts  # id and probability
    assert not page.locator("#retrieval-out [data-extrapolated]").count()  # scope=model: all in vocabulary
    pneumonia = page.locator(f"#retrieval-out [data-result='phenotypes'] li[data-id='{PNEUMONIA}']")
    assert "Pneumonia" in pneumonia.inner_text()
    # the evidence behind it: the two images whose captions show pneumonia, as thumbnails
    assert pneumonia.locator("[data-supporting] a.mini img").count() == 2
    assert pneumonia.locator(".prob .bar > span").count() == 1
    # "No pleural effusion." in one caption: effusion is ruled out, by that image
    ruled = page.locator(f"#retrieval-out [data-result='ruled-out'] li[data-id='{EFFUSION}']")
    assert "Pleural effusion" in ruled.inner_text() and "rule it out" in ruled.inner_text()
    assert ruled.locator("a.mini img").count() == 1
    effusion = page.locator(f"#retrieval-out [data-result='phenotypes'] li[data-id='{EFFUSION}']")
    if effusion.count():
        assert effusion.locator("[data-contradicting]").get_attribute("data-contradicting") == "1"
    meta = page.locator("#retrieval-out [data-meta]").inner_text()
    assert "cpu" in meta and "Calibrated" in meta and "ms" in meta and "phenotypes" in meta  # model, device, ...
    assert page.locator("#retrieval-out [data-calibrated='false']").count() == 1
    assert page.locator("#retrieval-out [data-domain='out']").count() == 0  # in domain: no red banner ...
    assert "calibration" in page.locator("#retrieval-out [data-warning]").inner_text()  # ... but the caveat
    assert page.locator("#retrieval-out [data-result='findings']").count() == 1  # the section is there
    page.wait_for_selector("#retrieval-out [data-result='evidence'] figure.thumb img")
    assert page.locator("#retrieval-out [data-result='evidence'] figure.thumb").count() == 3
    assert "similarity" in page.locator("#retrieval-out [data-result='evidence']").inner_text().lower()
    _all_images_loaded(page)
    page.screenshot(path=str(ARTIFACTS / "explore-retrieval.png"), full_page=True)
    page.locator("#retrieval-out [data-result='phenotypes'] li a").first.click()  # a hit opens its term
    page.wait_for_function("location.hash.startsWith('#/term/HP:')")
    page.wait_for_function("document.querySelector('#term-name')?.textContent.length > 0")


def test_scope_all_waits_for_the_ontology_then_marks_extrapolations(page: Any, tmp_path: Path) -> None:
    """The first scope=all request starts embedding every phenotype's prompt and is answered 503 with
    Retry-After; the page says so and retries on request; the answer marks terms outside the vocabulary."""
    image = tmp_path / "xray.png"
    image.write_bytes(png_bytes(150))
    _upload(page, image, scope="all")
    waiting = page.locator("#retrieval-out [data-unavailable='503']")
    waiting.wait_for()
    assert waiting.get_attribute("data-retry-after") and "embedded" in waiting.inner_text()
    page.screenshot(path=str(ARTIFACTS / "explore-retrieval-scope-all-503.png"))
    phenotypes = page.locator("#retrieval-out [data-result='phenotypes'] li")
    for _ in range(60):  # the mini ontology embeds in seconds
        page.wait_for_selector("#retrieval-out [data-action='retry'], #retrieval-out [data-result='phenotypes']")
        if phenotypes.count():
            break
        page.wait_for_timeout(500)
        page.click("#retrieval-out [data-action='retry']")
    phenotypes.first.wait_for()
    extrapolated = page.locator("#retrieval-out [data-result='phenotypes'] li[data-extrapolated]")
    assert extrapolated.count() >= 1
    assert "extrapolated" in extrapolated.first.inner_text().lower()
    assert "similarity" in extrapolated.first.inner_text()
    assert "%" not in extrapolated.first.locator(".hit-head").inner_text()  # no probability
    assert "scope=all" in page.locator("#retrieval-out [data-warning]").inner_text()
    _all_images_loaded(page)
    page.screenshot(path=str(ARTIFACTS / "explore-retrieval-scope-all.png"), full_page=True)
    page.select_option("#upload-scope", "model")


def _post_image(base_url: str, data: bytes, query: str) -> Any:
    """POST /retrieval/image from here (a browser's FormData file is not visible to request interception)."""
    boundary = "phenokg-e2e-boundary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="image.png"\r\n'
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{base_url}/retrieval/image?{query}", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_out_of_domain_answer_with_ranked_findings(page: Any, base_url: str, tmp_path: Path) -> None:
    """What a trained chest X-ray model answers for an image unlike its evidence, with findings: the live answer
    (checked against the response model) amended as such a model would send it, served to the page in place of
    the server's."""
    from app.schemas.retrieval import FindingHit, RetrievalResponse

    image = tmp_path / "not-a-chest.png"
    image.write_bytes(png_bytes(250))
    answer = RetrievalResponse.model_validate(_post_image(base_url, image.read_bytes(),
                                                          "k=10&findings=5&evidence=6&scope=model"))
    present = [p.id for p in answer.phenotypes if (p.probability or 0) >= 0.5]
    absent = [r.id for r in answer.ruled_out]
    assert PNEUMONIA in present and EFFUSION in absent, (present, absent)
    findings = [
        FindingHit(rank=1, id="CXR:pneumonia", name="Pneumonia (finding)", source="CXR_PACK", score=2.1,
                   probability=0.83, supported_by=present, contradicted_by=[], absent_consistent=absent,
                   absent_conflicting=[]),
        FindingHit(rank=2, id="CXR:cardiomegaly", name="Cardiomegaly (finding)", source="CXR_PACK", score=0.5,
                   probability=None, supported_by=[CARDIOMEGALY], contradicted_by=["HP:9999999"],
                   absent_consistent=[], absent_conflicting=absent),
    ]
    amended = answer.model_copy(update={
        "in_domain": False, "nearest_similarity": 0.7, "domain_similarity": 0.41, "domain_threshold": 0.62,
        "findings": findings,
        "model": answer.model.model_copy(update={"calibrated": True}),
        "warning": "This image is less like every evidence image than 99 % of the validation images were "
                   "(domain similarity 0.410 < 0.620): treat every answer below as unreliable."})
    seen: list[str] = []

    def serve(route: Any) -> None:
        seen.append(route.request.url)
        route.fulfill(status=200, content_type="application/json", body=amended.model_dump_json())

    page.route("**/retrieval/image?*", serve)
    try:
        _upload(page, image)
        banner = page.locator("#retrieval-out [data-domain='out']")
        banner.wait_for()
        assert "Outside what this model knows" in banner.inner_text() and "0.410 < 0.620" in banner.inner_text()
        assert "findings=5" in seen[0] and "scope=model" in seen[0] and "diseases=" not in seen[0]
        meta = page.locator("#retrieval-out [data-meta]").inner_text()
        assert "0.410" in meta and "0.620" in meta
        assert page.locator("#retrieval-out [data-calibrated='true']").count() == 1
        findings_li = page.locator("#retrieval-out [data-result='findings'] li")
        assert findings_li.count() == 2
        first, second = findings_li.all_inner_texts()
        assert first.startswith("1.") and "Pneumonia (finding)" in first and "83%" in first and "CXR_PACK" in first
        assert "Pneumonia" in first.split("supported by", 1)[1]  # the phenotypes by name, not id
        assert "Pleural effusion" in first.split("absent, as expected", 1)[1]
        assert "HP:9999999" in second.split("contradicted by", 1)[1]  # an id the answer does not name
        assert "absent, but typical of it" in second
        assert findings_li.first.locator("a").first.get_attribute("href") == "#/disease/CXR:pneumonia"
        assert page.locator("#retrieval-out [data-result='ruled-out'] li").count() >= 1
        _all_images_loaded(page)
        page.screenshot(path=str(ARTIFACTS / "explore-retrieval-out-of-domain.png"), full_page=True)
    finally:
        page.unroute("**/retrieval/image?*", serve)


def test_upload_of_a_non_image_is_refused_with_the_reason(page: Any, tmp_path: Path) -> None:
    fake = tmp_path / "notes.png"
    fake.write_text("these are not pixels", encoding="utf-8")
    page.goto("/explore#/retrieval")
    page.set_input_files("#upload-file", str(fake))
    page.click("#upload-form button[type=submit]")
    refused = page.locator("#retrieval-out [data-unavailable='415']")
    refused.wait_for()
    assert "415" in refused.inner_text() or "image" in refused.inner_text().lower()


def test_jobs_panel_lists_jobs_and_asks_for_a_token(page: Any) -> None:
    page.goto("/explore#/jobs")
    page.wait_for_function("!document.querySelector('#jobs-out').textContent.includes('') || "
                           "document.querySelector('#jobs-out').childElementCount > 0")
    out = page.locator("#jobs-out")
    assert out.locator("[data-unavailable]").count() == 0, out.inner_text()  # GET /jobs answered
    done, stopped = out.locator("tr[data-job='job-browser-done']"), out.locator("tr[data-job='job-browser-stopped']")
    done.wait_for()
    assert "job-browser-done" in done.inner_text() and "succeeded" in done.inner_text()
    assert done.locator("[role=progressbar]").get_attribute("aria-valuenow") == "100"
    assert stopped.locator("[role=progressbar]").get_attribute("aria-valuenow") == "40"
    assert "20/50" in stopped.inner_text() and "cancelled" in stopped.inner_text()
    assert done.locator("svg.spark polyline").count() == 1  # the loss history, drawn
    assert done.locator("svg.spark").get_attribute("aria-label") == "loss over 20 step(s)"
    page.fill("#token", "")
    page.dispatch_event("#token", "change")
    page.click("#job-form button[type=submit]")  # without a token the write is refused, and the page says why
    page.wait_for_function("!document.querySelector('#status').hidden")
    assert "401" in page.locator("#status").inner_text()
    page.screenshot(path=str(ARTIFACTS / "explore-jobs.png"), full_page=True)
