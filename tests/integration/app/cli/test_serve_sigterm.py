"""`phenokg serve` as a real subprocess: SIGTERM while a training job runs on the local Ray head it started.

The server exits within 5 s through its cleanup: the job poller stops, the Ray head it started is stopped (its
running job recorded as interrupted), the embedded database is shut down; none of its processes is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from kg.config import GraphSettings
from kg.repo import jobs as J
from kg.store.embedded import free_port
from kg.store.graph import open_graph
from tests.helpers import REPO_ROOT
from tests.integration.explore_data import build_mini_with_evidence

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOKEN = "test-token-0123456789"
EXIT_WITHIN_S = 5.0


def _request(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Authorization": f"Bearer {TOKEN}",
                                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _wait_for(what: str, check: Any, timeout: float, server: subprocess.Popen[bytes], log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"phenokg serve exited: {log.read_text(errors='replace')[-3000:]}"
        try:
            value = check()
        except (urllib.error.URLError, OSError):
            value = None
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} not within {timeout} s: {log.read_text(errors='replace')[-3000:]}")


def _alive(pids: list[int]) -> list[str]:
    left = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{pid} {' '.join(proc.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            continue
    return left


def test_sigterm_stops_serve_its_ray_head_and_database_quickly(tmp_path: Path, tiny_bert_dir: Path) -> None:
    home = tmp_path / "home"
    with open_graph(GraphSettings(PHENOKG_HOME=home)) as graph:  # type: ignore[call-arg]
        build_mini_with_evidence(graph, home, tmp_path / "evidence-src")
    port = free_port()
    env = {**os.environ, "PHENOKG_HOME": str(home), "PHENOKG_API_TOKEN": TOKEN, "PHENOKG_JOBS_POLL_S": "0.3",
           "PHENOKG_WARM_SNAPSHOT": "false", "PHENOKG_RAY_NUM_CPUS": "1", "PHENOKG_DB_HEAP": "512m"}
    for key in ("RAY_ADDRESS", "NEO4J_URI"):
        env.pop(key, None)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "app.cli.main", "serve", "--port", str(port), "--no-build"],
                                  cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for("the API", lambda: _request(f"{base}/health/live")[0] == 200, 240, server, log)
        status, job = _request(f"{base}/jobs", {"kind": "knowledge-encoder", "config": {
            "model_path": str(tiny_bert_dir), "batch_size": 4, "max_length": 16, "baseline": False,
            "device": "cpu", "held_out_fraction": 0.2, "checkpoint_every": 100_000, "max_steps": 100_000}})
        assert status == 202, job
        _wait_for("the job running", lambda: _request(f"{base}/jobs/{job['id']}")[1]["status"] == "running", 240,
                  server, log)
        tree = [p.pid for p in psutil.Process(server.pid).children(recursive=True)]
        names = " ".join(" ".join(psutil.Process(p).cmdline()) for p in tree if psutil.pid_exists(p))
        assert "gcs_server" in names and "ArcadeDBServer" in names  # Ray and the database both run

        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        took = time.monotonic() - started
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    output = log.read_text(errors="replace")
    assert took <= EXIT_WITHIN_S, f"took {took:.1f} s: {output[-3000:]}"
    assert server.returncode == -signal.SIGTERM  # ends as a SIGTERM'd process, after its cleanup
    assert "Traceback" not in output, output[-3000:]
    deadline = time.monotonic() + 2.0  # Ray workers and the job's process leave once their raylet is gone
    while _alive(tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive(tree) == []
    assert not (home / "db" / "server.json").exists()  # the database was shut down, not left running

    with open_graph(GraphSettings(PHENOKG_HOME=home)) as graph:  # type: ignore[call-arg]
        final = J.get_job(graph, job["id"])
    assert final.status == "failed" and final.error is not None and "interrupted" in final.error
