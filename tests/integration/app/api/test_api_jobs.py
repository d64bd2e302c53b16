"""Training jobs on a real local Ray head, over the real API and the real embedded graph, on the CPU.

One Ray head for the module (phenokg's own :class:`app.services.jobs.ray_head.LocalRayHead`, stopped at the end); the
apps reach it through ``RAY_ADDRESS``. Jobs train the tiny random BERT of ``tiny_bert_dir`` on the mini graph.
Covered: auth (401/403), config validation (422), submit → progress → succeeded → ModelVersion registered and
linked → activate; two image–text jobs whose activation switches what image retrieval answers; cancel; the
job's process killed mid-run → failed; a Ray job that vanished → failed; a new app over the same graph still
lists the jobs.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.config import AppSettings
from app.main import create_app
from app.services.jobs.ray_head import LocalRayHead, dashboard_ready
from kg.config import GraphSettings
from kg.repo import jobs as J
from kg.store.graph import Graph
from tests.helpers import FIXTURES as FIXTURES_DIR
from tests.helpers import assert_problem, clear_graph
from tests.integration.explore_data import build_mini_with_evidence, png_bytes

pytestmark = [pytest.mark.integration, pytest.mark.slow]
FIXTURES = FIXTURES_DIR
TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JOB_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def ray_head() -> Iterator[tuple[LocalRayHead, str]]:
    root = Path(tempfile.mkdtemp(prefix="pkray-"))
    head = LocalRayHead(root, num_cpus=2)
    address = head.start()
    try:
        yield head, address
    finally:
        head.stop()
        assert not dashboard_ready(address)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def settings(graph: Graph, graph_settings: GraphSettings, ray_head: tuple[LocalRayHead, str]) -> Iterator[AppSettings]:
    build_mini_with_evidence(graph, graph_settings.home, graph_settings.home / "evidence-src")
    env: dict[str, Any] = {"PHENOKG_HOME": str(graph_settings.home), "RAY_ADDRESS": ray_head[1],
                           "PHENOKG_API_TOKEN": TOKEN, "PHENOKG_JOBS_POLL_S": 0.3, "PHENOKG_WARM_SNAPSHOT": False}
    if graph_settings.neo4j_uri:
        env["NEO4J_URI"] = graph_settings.neo4j_uri
    yield AppSettings(**env)
    clear_graph(graph)


@pytest.fixture(scope="module")
def client(settings: AppSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def _config(tiny_bert_dir: Path, **extra: Any) -> dict[str, Any]:
    return {"kind": "knowledge-encoder", "config": {
        "model_path": str(tiny_bert_dir), "batch_size": 4, "max_length": 16, "baseline": False, "device": "cpu",
        "held_out_fraction": 0.2, "checkpoint_every": 100_000, **extra}}


def _wait(client: TestClient, job_id: str, until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if until(job):
            return dict(job)
        assert time.monotonic() < deadline, f"job never reached the state: {job}"
        time.sleep(0.3)


def test_write_endpoints_need_the_token(client: TestClient, tiny_bert_dir: Path) -> None:
    for method, path in (("post", "/jobs"), ("post", "/jobs/job-x/cancel"), ("post", "/models/m-x/activate")):
        body = _config(tiny_bert_dir) if path == "/jobs" else None
        missing = assert_problem(getattr(client, method)(path, json=body), 401)
        assert "Bearer" in missing["detail"]
        response = getattr(client, method)(path, json=body, headers={"Authorization": "Basic dXNlcjpwdw=="})
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
        assert_problem(getattr(client, method)(path, json=body, headers={"Authorization": "Bearer wrong"}), 403)
    # read endpoints stay open
    assert client.get("/jobs").status_code == 200 and client.get("/models").status_code == 200


def test_config_is_validated(client: TestClient, tiny_bert_dir: Path) -> None:
    unknown = assert_problem(client.post("/jobs", json=_config(tiny_bert_dir, epochz=2), headers=AUTH), 422)
    assert unknown["errors"][0]["loc"] == ["body", "config", "epochz"]
    message = unknown["errors"][0]["msg"]  # names the valid keys, and the likely one
    assert "unknown key 'epochz'" in message and "did you mean 'epochs'" in message
    assert "valid keys: baseline, batch_size, branch," in message and "text_trainable_layers" not in message
    old_names = assert_problem(client.post("/jobs", json={"kind": "clip", "config": {
        "source": "explorer-test", "text_layers": 0, "tau": 0.1}}, headers=AUTH), 422)
    assert [e["loc"] for e in old_names["errors"]] == [["body", "config", "text_layers"], ["body", "config", "tau"]]
    assert "did you mean 'text_trainable_layers'" in old_names["errors"][0]["msg"]
    assert "did you mean 'temperature'" in old_names["errors"][1]["msg"]
    assert "valid keys: amp, augment," in old_names["errors"][1]["msg"]
    top = assert_problem(client.post("/jobs", json={"kind": "clip", "configs": {}}, headers=AUTH), 422)
    assert {"loc": ["body", "configs"], "msg": "unknown key 'configs'; valid keys: config, kind",
            "type": "extra_forbidden"} in top["errors"]
    bad = assert_problem(client.post("/jobs", json=_config(tiny_bert_dir, batch_size=1), headers=AUTH), 422)
    assert bad["errors"][0]["loc"] == ["body", "config", "batch_size"]
    weights = assert_problem(client.post("/jobs", json=_config(tiny_bert_dir, kind_weights={"x": 1}), headers=AUTH),
                             422)
    assert "unknown attribute kind 'x'" in weights["errors"][0]["msg"]
    missing = assert_problem(client.post("/jobs", json=_config(Path("/no/such/model")), headers=AUTH), 422)
    assert "does not exist" in missing["errors"][0]["msg"]
    assert_problem(client.post("/jobs", json={"kind": "clip", "config": {}}, headers=AUTH), 422)  # no source
    gan = assert_problem(client.post("/jobs", json={"kind": "gan", "config": {}}, headers=AUTH), 422)
    assert "'knowledge-encoder', 'clip'" in gan["errors"][0]["msg"]
    assert client.get("/jobs").json()["items"] == []  # nothing was recorded


def test_openapi_gives_one_config_schema_per_kind(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["discriminator"] == {"propertyName": "kind", "mapping": {
        "knowledge-encoder": "#/components/schemas/KnowledgeEncoderJob", "clip": "#/components/schemas/ClipJob"}}
    schemas = spec["components"]["schemas"]
    assert schemas["ClipJob"]["required"] == ["kind", "config"]
    assert schemas["ClipJob"]["properties"]["config"] == {"$ref": "#/components/schemas/ClipJobConfig"}
    knowledge = schemas["KnowledgeEncoderJobConfig"]
    clip = schemas["ClipJobConfig"]
    assert knowledge["additionalProperties"] is False and clip["additionalProperties"] is False
    assert clip["required"] == ["source"] and "required" not in knowledge
    for config in (knowledge, clip):  # every field says what it is
        assert all(p.get("description") for p in config["properties"].values())
    # defaults and ranges, from the trainers' dataclasses and the options
    assert knowledge["properties"]["temperature"] == {"type": "number", "minimum": 0.0001, "default": 0.07,
                                                      "title": "Temperature", "description": "InfoNCE temperature"}
    assert knowledge["properties"]["batch_size"]["minimum"] == 2 and knowledge["properties"]["batch_size"][
        "default"] == 64
    assert knowledge["properties"]["schedule"]["enum"] == ["cosine", "linear", "constant"]
    assert knowledge["properties"]["held_out_fraction"]["maximum"] == 0.9
    assert clip["properties"]["image_size"]["minimum"] == 16 and clip["properties"]["image_size"]["maximum"] == 1024
    assert clip["properties"]["text_trainable_layers"]["anyOf"] == [{"type": "integer", "minimum": 0},
                                                                   {"type": "null"}]
    assert clip["properties"]["captions"]["enum"] == ["stored", "coarse", "medium", "fine", "mixed"]
    assert clip["properties"]["k"]["default"] == [1, 5, 10]
    assert "text_model" in clip["properties"] and "checkpoint_every" not in clip["properties"]


def test_lifecycle_submit_progress_success_register_activate_restart(
        client: TestClient, settings: AppSettings, tiny_bert_dir: Path) -> None:
    response = client.post("/jobs", json=_config(tiny_bert_dir, max_steps=8), headers=AUTH)
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/jobs/{job['id']}"
    assert job["status"] == "queued" and job["kind"] == "knowledge-encoder" and job["total_steps"] == 8
    assert job["config"]["max_steps"] == 8 and job["config"]["batch_size"] == 4

    seen: set[str] = set()

    def done(j: dict[str, Any]) -> bool:
        seen.add(j["status"])
        return j["status"] in J.TERMINAL

    final = _wait(client, job["id"], done)
    assert final["status"] == "succeeded", (final["error"], final["log_tail"])
    assert "running" in seen or "queued" in seen
    assert final["step"] == 8 and final["total_steps"] == 8 and final["progress"] == 1.0
    assert [h["step"] for h in final["history"]] == list(range(1, 9))
    assert all(type(h["step"]) is int for h in final["history"])  # steps are integers, not 1.0
    assert all("loss" in h and "lr" in h for h in final["history"])
    assert "loss" in final["metrics"] and any(k.startswith("trained.") for k in final["metrics"])
    assert final["started_at"] and final["finished_at"] and final["ray_job_id"] == job["id"]
    assert any("phenokg-job" in line for line in final["log_tail"])
    assert final["provenance"]["data_hash"].startswith("sha256:")
    assert final["provenance"]["hpo_release"]

    model_id = final["model_version"]
    assert model_id == job["provenance"]["model_id"]
    model = client.get(f"/models/{model_id}").json()
    assert model["kind"] == "knowledge-encoder" and model["active"] is False
    assert model["data_hash"] == final["provenance"]["data_hash"]
    assert Path(model["path"]).is_dir()
    assert model_id in [m["id"] for m in client.get("/models", params={"kind": "knowledge-encoder"}).json()["items"]]
    assert_problem(client.get("/models/no-such-model"), 404)

    activated = client.post(f"/models/{model_id}/activate", headers=AUTH)
    assert activated.status_code == 200, activated.text
    assert activated.json()["active"] is True and activated.json()["activated_at"]
    assert client.get(f"/models/{model_id}").json()["active"] is True
    assert_problem(client.post(f"/jobs/{job['id']}/cancel", headers=AUTH), 409)  # finished

    # a new API process over the same graph: the job and its result are still there
    with TestClient(create_app(settings)) as restarted:
        again = restarted.get(f"/jobs/{job['id']}").json()
        assert again == final
        assert job["id"] in [j["id"] for j in restarted.get("/jobs", params={"status": "succeeded"}).json()["items"]]
        assert restarted.get("/jobs", params={"kind": "clip"}).json()["items"] == []


def _clip_config(tiny_bert_dir: Path, seed: int) -> dict[str, Any]:
    """A tiny image–text job on the three evidence images of the mini graph (random towers, a few steps)."""
    return {"kind": "clip", "config": {
        "source": "explorer-test", "split": None, "eval_split": None, "text_model": str(tiny_bert_dir),
        "image_model": "test_efficientnet", "image_pretrained": False, "embed_dim": 16, "image_size": 32,
        "max_length": 32, "batch_size": 2, "max_steps": 3, "log_every": 1, "seed": seed, "device": "cpu",
        "amp": False}}


def _retrieve(client: TestClient) -> Any:
    return client.post("/retrieval/image", params={"k": 3}, files={"file": ("x.png", png_bytes(150), "image/png")})


def test_clip_jobs_and_activation_switch_retrieval(client: TestClient, tiny_bert_dir: Path) -> None:
    assert_problem(_retrieve(client), 503)  # no image–text model yet
    models: list[str] = []
    for seed in (0, 1):
        response = client.post("/jobs", json=_clip_config(tiny_bert_dir, seed), headers=AUTH)
        assert response.status_code == 202, response.text
        final = _wait(client, response.json()["id"], lambda j: j["status"] in J.TERMINAL)
        assert final["status"] == "succeeded", (final["error"], final["log_tail"])
        assert final["kind"] == "clip" and final["step"] == 3 and final["progress"] == 1.0
        assert final["history"] and all("total" in h for h in final["history"])
        models.append(final["model_version"])
        assert client.get(f"/models/{models[-1]}").json()["kind"] == "clip"

    answers = []
    for model_id in models:
        assert client.post(f"/models/{model_id}/activate", headers=AUTH).status_code == 200
        response = _retrieve(client)  # the activated model answers, with no restart
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["model"]["id"] == model_id
        assert len(answer["phenotypes"]) == 3 and answer["evidence"]
        answers.append([(p["id"], round(p["similarity"], 5)) for p in answer["phenotypes"]])
    assert answers[0] != answers[1]


def _running_with_progress(client: TestClient, tiny_bert_dir: Path) -> dict[str, Any]:
    response = client.post("/jobs", json=_config(tiny_bert_dir, max_steps=100_000), headers=AUTH)
    assert response.status_code == 202, response.text
    return _wait(client, response.json()["id"], lambda j: j["status"] in J.TERMINAL or (
        j["status"] == "running" and j["step"] > 0))


def test_cancel_a_running_job(client: TestClient, tiny_bert_dir: Path) -> None:
    job = _running_with_progress(client, tiny_bert_dir)
    assert job["status"] == "running" and 0 < job["progress"] < 1 and job["total_steps"] == 100_000
    assert job["history"] and "loss" in job["metrics"]
    response = client.post(f"/jobs/{job['id']}/cancel", headers=AUTH)
    assert response.status_code == 202, response.text
    final = _wait(client, job["id"], lambda j: j["status"] in J.TERMINAL)
    assert final["status"] == "cancelled" and final["finished_at"] and final["model_version"] is None
    assert_problem(client.post(f"/jobs/{job['id']}/cancel", headers=AUTH), 409)
    assert [j["id"] for j in client.get("/jobs", params={"status": "cancelled"}).json()["items"]] == [job["id"]]


def test_killed_job_process_fails_with_a_reason(client: TestClient, settings: AppSettings,
                                                tiny_bert_dir: Path) -> None:
    job = _running_with_progress(client, tiny_bert_dir)
    assert job["status"] == "running"
    pid = int((settings.home / "jobs" / job["id"] / "entry.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    final = _wait(client, job["id"], lambda j: j["status"] in J.TERMINAL)
    assert final["status"] == "failed", final
    assert final["error"] and final["model_version"] is None
    assert "-9" in final["error"] or "kill" in final["error"].lower() or "signal" in final["error"].lower()


def test_a_vanished_ray_job_is_marked_failed(client: TestClient, graph: Graph, settings: AppSettings) -> None:
    job_dir = settings.home / "jobs" / "job-vanished"
    job_dir.mkdir(parents=True, exist_ok=True)
    recorded = J.create_job(graph, J.TrainingJob(id="job-vanished", kind="knowledge-encoder", job_dir=str(job_dir),
                                                 model_id="knowledge-encoder-vanished"))
    J.update_job(graph, recorded.evolve(status="running", ray_job_id="job-vanished", started_at=J.now()))
    final = _wait(client, "job-vanished", lambda j: j["status"] in J.TERMINAL)
    assert final["status"] == "failed"
    assert "no longer exists" in final["error"] and "Ray" in final["error"]


def test_history_steps_are_integers(client: TestClient, graph: Graph, settings: AppSettings) -> None:
    job_dir = settings.home / "jobs" / "job-history"
    job_dir.mkdir(parents=True, exist_ok=True)
    recorded = J.create_job(graph, J.TrainingJob(id="job-history", kind="clip", job_dir=str(job_dir),
                                                 model_id="clip-history"))
    rows = [{"step": 1, "loss": 2, "lr": 1e-4}, {"step": 250, "loss": 0.5, "lr": 5e-5}]
    J.update_job(graph, recorded.evolve(status="failed", step=250, total_steps=500, history=rows,
                                        metrics={"loss": 0.5}, error="stopped", finished_at=J.now()))
    body = client.get("/jobs/job-history")
    assert body.status_code == 200, body.text
    history = body.json()["history"]
    assert [(type(h["step"]), h["step"]) for h in history] == [(int, 1), (int, 250)]
    assert history[0]["loss"] == 2.0 and history[1]["lr"] == 5e-5
    schema = client.get("/openapi.json").json()["components"]["schemas"]["HistoryRow"]
    assert schema["properties"]["step"]["type"] == "integer"
    assert schema["additionalProperties"] == {"type": "number"}


def test_local_head_is_reused(ray_head: tuple[LocalRayHead, str]) -> None:
    head, address = ray_head
    assert head.running_address() == address
    assert LocalRayHead(head.root).ensure() == (address, False)  # a second API process reuses it
    assert str(head.temp_dir).startswith(str(head.root)) or "phenokg-ray-" in str(head.temp_dir)
