"""Local Ray heads as the API runs them (RAY_ADDRESS unset), over the real session graph and real Ray.

Two ``PHENOKG_HOME`` on one host each start their own head (every port free and on 127.0.0.1, the client
server off, its temp dir in a 0700 folder) and both run a real job to success at the same time; a job whose
submission or status read keeps failing ends ``failed`` with the reason after one warning; a rejected
submission leaves no folder.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from app.core.config import AppSettings
from app.services.jobs.configs import validate_config
from app.services.jobs.manager import JobManager
from app.services.jobs.ray_head import ENV_PORTS, PORT_OPTIONS, LocalRayHead
from kg.config import GraphSettings
from kg.errors import ValidationError
from kg.repo import jobs as J
from kg.store.embedded import free_port
from kg.store.graph import Graph, open_graph
from tests.helpers import clear_graph
from tests.integration.explore_data import build_mini_with_evidence

pytestmark = [pytest.mark.integration, pytest.mark.slow]
JOB_TIMEOUT_S = 300
RAY_DEFAULT_AGENT_PORT = 52365


@pytest.fixture(scope="module")
def mini_graph(graph: Graph, graph_settings: GraphSettings) -> Iterator[Graph]:
    build_mini_with_evidence(graph, graph_settings.home, graph_settings.home / "evidence-src")
    yield graph
    clear_graph(graph)


def _settings(home: Path, **extra: Any) -> AppSettings:
    env: dict[str, Any] = {"PHENOKG_HOME": str(home), "PHENOKG_JOBS_POLL_S": 0.3, "PHENOKG_RAY_NUM_CPUS": 1,
                           **extra}
    return AppSettings(**env)


def _knowledge_config(tiny_bert_dir: Path, **extra: Any) -> Any:
    return validate_config("knowledge-encoder", {
        "model_path": str(tiny_bert_dir), "batch_size": 4, "max_length": 16, "baseline": False, "device": "cpu",
        "held_out_fraction": 0.2, "checkpoint_every": 100_000, "max_steps": 4, **extra})


def _wait_terminal(graph: Graph, job_ids: list[str], timeout: float = JOB_TIMEOUT_S) -> dict[str, J.TrainingJob]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = {i: J.get_job(graph, i) for i in job_ids}
        if all(not j.live for j in jobs.values()):
            return jobs
        assert time.monotonic() < deadline, f"jobs never finished: {[(j.id, j.status, j.error) for j in jobs.values()]}"
        time.sleep(0.3)


def _listening(pid: int) -> list[tuple[str, int, str]]:
    """``(address, port, process name)`` of every TCP socket listening in ``pid``'s process tree."""
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    found = []
    for proc in procs:
        try:
            found += [(c.laddr.ip, c.laddr.port, proc.name()) for c in proc.net_connections(kind="tcp")
                      if c.status == psutil.CONN_LISTEN]
        except psutil.NoSuchProcess:
            continue
    return found


def test_two_homes_run_jobs_at_once_each_head_on_loopback(tiny_bert_dir: Path) -> None:
    """Each home is a whole phenokg: its own embedded database (the mini graph) and its own local Ray head."""
    homes = [Path(tempfile.mkdtemp(prefix="pk2h-")) for _ in range(2)]
    with contextlib.ExitStack() as stack:
        graphs = []
        for home in homes:
            graphs.append(g := stack.enter_context(open_graph(GraphSettings(  # type: ignore[call-arg]
                PHENOKG_HOME=home, PHENOKG_DB_HEAP="512m"))))
            build_mini_with_evidence(g, home, home / "evidence-src")
        managers = [JobManager(g, _settings(home)) for g, home in zip(graphs, homes, strict=True)]
        _two_heads_run_jobs(managers, tiny_bert_dir)
    for home in homes:
        shutil.rmtree(home, ignore_errors=True)


def _two_heads_run_jobs(managers: list[JobManager], tiny_bert_dir: Path) -> None:
    try:
        jobs = [m.submit(_knowledge_config(tiny_bert_dir)) for m in managers]
        for m in managers:
            m.start()
        for m, job in zip(managers, jobs, strict=True):
            final = _wait_terminal(m.graph, [job.id])[job.id]
            assert final.status == "succeeded", (final.error, final.log_tail)
            assert final.model_version
            assert Path(final.job_dir).is_relative_to(m.settings.home)
        heads = [m.ray.head for m in managers]
        assert all(h is not None and m.ray.started_head for h, m in zip(heads, managers, strict=True))
        ports = [h.ports() for h in heads if h is not None]
        assert all(set(p) == {*PORT_OPTIONS, *ENV_PORTS} for p in ports)  # no client server port: it is off
        assert not set(ports[0].values()) & set(ports[1].values())
        assert all(p["dashboard-agent-listen-port"] != RAY_DEFAULT_AGENT_PORT for p in ports)
        for head in heads:
            assert head is not None
            pid = head.pid()
            assert pid is not None
            listening = _listening(pid)
            assert {port for _, port, _ in listening} >= set(head.ports().values())
            assert [s for s in listening if s[0] not in ("127.0.0.1", "::ffff:127.0.0.1")] == []
            tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
            assert not any("ray.util.client.server" in " ".join(p.cmdline()) for p in tree)
            assert stat.S_IMODE(head.root.stat().st_mode) == 0o700
            assert stat.S_IMODE(head.temp_dir.parent.stat().st_mode) == 0o700  # Ray makes the temp dir 0777
        tree_pids = [p.pid for h in heads if h is not None and (pid := h.pid())
                     for p in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]]
    finally:
        for m in managers:
            m.close()
    time.sleep(1.0)  # workers leave once their raylet is gone
    assert [p for p in tree_pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE] == []
    assert all(J.get_job(m.graph, j.id).status == "succeeded"  # closing kept finished jobs
               for m, j in zip(managers, jobs, strict=True))


def test_a_submission_that_keeps_failing_fails_with_the_reason(
        mini_graph: Graph, tiny_bert_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there: every submission fails
    manager = JobManager(mini_graph, _settings(tmp_path, RAY_ADDRESS=nowhere, PHENOKG_JOBS_MAX_FAILURES=4))
    caplog.set_level(logging.INFO, logger="app.services.jobs")
    job = manager.submit(_knowledge_config(tiny_bert_dir))
    manager.start()
    try:
        final = _wait_terminal(mini_graph, [job.id], timeout=60)[job.id]
    finally:
        manager.close()
    assert final.status == "failed"
    assert final.error is not None and final.error.startswith("could not submit to Ray: ")
    assert "4 tries in" in final.error
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and job.id in r.getMessage()]
    assert len(warnings) == 1 and not warnings[0].exc_info  # one line for the streak, no traceback


def test_a_status_that_keeps_failing_fails_a_running_job(
        mini_graph: Graph, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    manager = JobManager(mini_graph, _settings(tmp_path, RAY_ADDRESS=nowhere, PHENOKG_JOBS_MAX_FAILURES=1000,
                                               PHENOKG_JOBS_MAX_FAILURE_S=2))
    job_dir = tmp_path / "jobs" / "job-lost"
    job_dir.mkdir(parents=True)
    recorded = J.create_job(mini_graph, J.TrainingJob(id="job-lost", kind="knowledge-encoder", job_dir=str(job_dir),
                                                      model_id="knowledge-encoder-lost"))
    J.update_job(mini_graph, recorded.evolve(status="running", ray_job_id="job-lost", started_at=J.now()))
    caplog.set_level(logging.INFO, logger="app.services.jobs")
    manager.start()
    try:
        deadline = time.monotonic() + 30
        while (during := J.get_job(mini_graph, "job-lost")).error is None:  # recorded while it retries
            assert time.monotonic() < deadline
            time.sleep(0.1)
        final = _wait_terminal(mini_graph, ["job-lost"], timeout=60)["job-lost"]
    finally:
        manager.close()
    assert during.error.startswith("retrying: could not read the job's state from Ray")
    assert final.status == "failed" and final.error is not None
    assert final.error.startswith("could not read the job's state from Ray: ")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "job-lost" in r.getMessage()]
    assert len(warnings) == 1


def test_a_rejected_submission_leaves_no_job_folder(mini_graph: Graph, tiny_bert_dir: Path, tmp_path: Path) -> None:
    manager = JobManager(mini_graph, _settings(tmp_path))
    with pytest.raises(ValidationError, match="gold"):
        manager.submit(_knowledge_config(tiny_bert_dir, gold=str(tmp_path / "no-such-gold.tsv")))
    with pytest.raises(ValidationError, match="live phenotype"):
        manager.submit(_knowledge_config(tiny_bert_dir, branch="HP:9999999"))
    assert list((tmp_path / "jobs").iterdir()) == []
    assert [j for j in J.list_jobs(mini_graph) if j.job_dir.startswith(str(tmp_path))] == []
    manager.close()


def test_the_client_server_runs_on_loopback_only_when_asked(tmp_path: Path) -> None:
    head = LocalRayHead(tmp_path / "ray", num_cpus=1, client_server=True)
    try:
        head.start()
        port = head.ports()["ray-client-server-port"]
        pid = head.pid()
        assert pid is not None
        deadline = time.monotonic() + 30
        while not (servers := [s for s in _listening(pid) if s[1] == port]):
            assert time.monotonic() < deadline, "the Ray client server never listened"
            time.sleep(0.3)
        assert [ip for ip, _, _ in servers] in (["127.0.0.1"], ["::ffff:127.0.0.1"])
        assert [s for s in _listening(pid) if s[0] not in ("127.0.0.1", "::ffff:127.0.0.1")] == []
    finally:
        head.stop()
