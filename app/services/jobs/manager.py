"""Training jobs: submission, the Ray → graph status sync, cancellation, registration of the result.

``POST /jobs`` validates the config (:mod:`app.services.jobs.configs`), exports the training data from the graph into
``$PHENOKG_HOME/jobs/<id>/`` (the views file of ``phenokg train export-views``, or the evidence of a dataset for
an image–text model), writes ``spec.json`` and records a queued ``TrainingJob`` (:mod:`kg.repo.jobs`). A background
thread then submits it to Ray (``python -m models.train.job_entry <dir>``, the project's interpreter) and reconciles
every live job each ``PHENOKG_JOBS_POLL_S``: Ray's status, progress and the metrics history from the run's
``metrics.jsonl``, the log tail; on success it registers the model directory as an inactive ``ModelVersion``
(as ``phenokg models register``) linked by ``PRODUCED``. A job Ray no longer knows (Ray restarted) is marked
failed with that reason unless it had finished and left its result. A job whose submission or status read
keeps failing (:mod:`app.services.jobs.failures`) is failed with the reason, one warning logged per streak.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import secrets
import shlex
import shutil
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from app.core.config import AppSettings
from app.services.jobs.configs import ClipOptions, JobConfig, KnowledgeOptions
from app.services.jobs.failures import FailureStreaks
from app.services.jobs.progress import MetricsFollower
from app.services.jobs.ray_client import RayJobs, RayUnavailableError
from kg.errors import NotFoundError, ValidationError
from kg.repo import jobs as J
from kg.store.graph import Graph
from models.train.job_entry import RESULT_FILE
from models.train.job_spec import JobSpec

log = logging.getLogger(__name__)

LOG_LINES: Final = 40
CLOSE_WAIT_S: Final = 2.0
"""How long :meth:`JobManager.close` waits for a poll round in flight (the thread is a daemon)."""
RETRYING: Final = "retrying: "
"""Prefix of the error a live job carries while its failure streak lasts."""


class JobConflictError(Exception):
    """The job is already finished (cancel of a terminal job)."""


def _iso_ms(ms: int | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _log_tail(text: str) -> list[str]:
    lines = [part.rstrip() for line in text.splitlines() for part in line.split("\r")[-1:]]
    return [line for line in lines if line.strip()][-LOG_LINES:]


def _headline(headline: Any) -> dict[str, float]:
    """Flatten a run's headline (``{"trained": {...}, "base": {...}}`` or flat) into ``{name: value}``."""
    out: dict[str, float] = {}
    for key, value in (headline or {}).items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": float(v) for k, v in value.items() if isinstance(v, (int, float))})
        elif isinstance(value, (int, float)):
            out[str(key)] = float(value)
    return out


class JobManager:
    """One per API process: submits jobs to Ray and keeps their graph records in sync."""

    def __init__(self, graph: Graph, settings: AppSettings) -> None:
        self.graph = graph
        self.settings = settings
        self.ray = RayJobs(settings.ray_address, settings.home / "ray", num_cpus=settings.ray_num_cpus,
                           num_gpus=settings.ray_num_gpus, client_server=settings.ray_client_server)
        self.streaks = FailureStreaks(settings.jobs_max_failures, settings.jobs_max_failure_s)
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._followers: dict[str, MetricsFollower] = {}  # live job id → its metrics.jsonl, read incrementally
        self._specs: dict[str, JobSpec] = {}  # live job id → its spec.json, read once

    # ---- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="phenokg-jobs")
        self._thread.start()

    def close(self) -> None:
        """Stop the poller; a local Ray head this process started is stopped, its live jobs marked failed.

        Quick (a few seconds): a head still starting is abandoned, a poll round in flight is not waited for
        beyond :data:`CLOSE_WAIT_S`, and the head gets a short grace before it is killed.
        """
        self._stop.set()
        self._wake.set()
        if self.ray.head is not None:
            self.ray.head.cancel()
        if self._thread is not None:
            self._thread.join(timeout=CLOSE_WAIT_S)
        if self.ray.started_head or (self.ray.head is not None and self.ray.head.spawned):
            with contextlib.suppress(Exception):
                for job in J.list_jobs(self.graph):
                    if job.live:
                        self._finish(job, "failed", error="interrupted: the API stopped the local Ray head "
                                                          "it had started")
        self.ray.close()

    def _loop(self) -> None:
        failing = False  # one warning per streak of failed rounds (e.g. the graph is down), not one per poll
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # the next round retries
                if not failing and not self._stop.is_set():
                    log.warning("training-job sync failed (retrying every %.1f s): %s", self.settings.jobs_poll_s,
                                exc, exc_info=not isinstance(exc, RayUnavailableError))
                failing = True
            else:
                if failing:
                    log.info("training-job sync works again")
                failing = False
            self._wake.wait(self.settings.jobs_poll_s)
            self._wake.clear()

    def poll_once(self) -> None:
        """Submit queued jobs Ray has not seen and reconcile the others (one round)."""
        live = [j for j in J.list_jobs(self.graph) if j.live]
        for job in sorted(live, key=lambda j: j.created_at):
            if self._stop.is_set():
                return
            with self._lock:
                current = J.get_job_or_none(self.graph, job.id)
                if current is None or not current.live:
                    continue
                try:
                    if current.ray_job_id is None:
                        self._submit_to_ray(current)
                    else:
                        self.reconcile(current)
                except Exception as exc:  # whatever it was, the job's record says so
                    if not self._stop.is_set():
                        self._round_failed(current, exc)
                else:
                    self._round_succeeded(current)

    def _round_failed(self, job: J.TrainingJob, exc: Exception) -> None:
        """Count the failure; log the first of a streak, record it on the job, fail the job when exhausted."""
        from_ray = isinstance(exc, RayUnavailableError)
        what = ("could not submit to Ray" if job.ray_job_id is None else "could not read the job's state from Ray"
                ) if from_ray else "the job sync failed"
        error = f"{what}: {exc if from_ray else f'{type(exc).__name__}: {exc}'}"
        streak, exhausted = self.streaks.failed(job.id, error)
        s = self.settings
        if streak.first:  # a traceback only for errors of our own, not for Ray being unreachable
            log.warning("job %s: %s (retrying; the job fails after %d failures or %.0f s)", job.id, error,
                        s.jobs_max_failures, s.jobs_max_failure_s, exc_info=not from_ray)
        try:
            current = J.get_job_or_none(self.graph, job.id) or job  # as the failed round may have left it
            if exhausted:
                self._finish(current, "failed", error=f"{error} ({streak.count} tries in "
                                                      f"{self.streaks.elapsed(streak):.0f} s)")
            elif current.live:
                J.update_job(self.graph, current.evolve(error=f"{RETRYING}{error}"))
        except Exception as write_exc:  # the graph is down too: the next round tries again
            log.debug("job %s: the failure could not be recorded: %s", job.id, write_exc)

    def _round_succeeded(self, job: J.TrainingJob) -> None:
        """End the job's failure streak, if any, and clear the error it recorded."""
        if self.streaks.succeeded(job.id) is None:
            return
        log.info("job %s: Ray answers again", job.id)
        current = J.get_job_or_none(self.graph, job.id)
        if current is not None and current.live and (current.error or "").startswith(RETRYING):
            J.update_job(self.graph, current.evolve(error=None))

    # ---- submission --------------------------------------------------------------------------------------

    def submit(self, config: JobConfig) -> J.TrainingJob:
        """Export the data, write the spec and record the job (queued); the poller hands it to Ray."""
        from models.registry import new_model_id

        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        job_id = f"job-{stamp}-{secrets.token_hex(3)}"
        model_id = new_model_id(config.kind)
        job_dir = self.settings.home / "jobs" / job_id
        job_dir.mkdir(parents=True, exist_ok=False)
        try:
            job = self._prepare(config, job_id, model_id, job_dir)
        except BaseException:  # rejected (or failed) before it was recorded: no folder left behind
            self._specs.pop(job_id, None)
            shutil.rmtree(job_dir, ignore_errors=True)
            raise
        self._wake.set()
        return job

    def _prepare(self, config: JobConfig, job_id: str, model_id: str, job_dir: Path) -> J.TrainingJob:
        """Export the data into ``job_dir``, write the spec and record the job."""
        out_dir = self.settings.models_dir / config.kind / model_id
        if config.kind == "knowledge-encoder":
            data_file, info, config = self._export_knowledge(config, job_dir)
        else:
            data_file, info, config = self._export_clip(config, job_dir)
        spec = JobSpec(job_id=job_id, kind=config.kind, model_id=model_id, out_dir=str(out_dir),
                       data_file=str(data_file), train=dataclasses.asdict(config.train),
                       options=config.options.model_dump(mode="json"))
        spec.write(job_dir)
        self._specs[job_id] = spec
        total = int(getattr(config.train, "max_steps", None) or 0)
        return J.create_job(self.graph, J.TrainingJob(
            id=job_id, kind=config.kind, config=config.to_dict(), job_dir=str(job_dir), model_id=model_id,
            total_steps=total, hpo_release=info.get("hpo_release"), graph_stamp=info.get("graph_stamp")))

    def _export_knowledge(self, config: JobConfig, job_dir: Path) -> tuple[Path, dict[str, Any], JobConfig]:
        from app.services.training import knowledge_views
        from models.views import write_views_file

        options = config.options
        assert isinstance(options, KnowledgeOptions)
        branch = None if options.branch.lower() == "all" else options.branch
        views, redirects, info = knowledge_views(self.graph, branch)
        if len(views) < 2:
            raise ValidationError(f"the graph holds {len(views)} live phenotype(s) under {options.branch}: "
                                  "build it first")
        if options.gold and not Path(options.gold).expanduser().is_file():
            raise ValidationError(f"gold: {options.gold} is not a file on the server")
        path = write_views_file(job_dir / "views.json.gz", views, redirects, info)
        return path, info, config

    def _export_clip(self, config: JobConfig, job_dir: Path) -> tuple[Path, dict[str, Any], JobConfig]:
        from app.services.training import load_clip_data, resolve_text_model
        from kg.ingest.build import current_release
        from models.train.job_entry import write_clip_data_file

        options = config.options
        assert isinstance(options, ClipOptions)
        try:
            text_path, text_desc = resolve_text_model(self.graph, options.text_model)
            split = None if options.split in (None, "all") else options.split
            train = load_clip_data(self.graph, options.source, split, blob_root=self.settings.blob_dir)
            eval_data = None
            if options.eval_split not in (None, "none"):
                with contextlib.suppress(ValueError):  # no evidence in that split: no evaluation
                    eval_data = load_clip_data(self.graph, options.source, options.eval_split,
                                               blob_root=self.settings.blob_dir)
            train.dataset(None)  # at least one image on this machine, or a clear error now
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        train.info["text_model"] = text_desc
        path = write_clip_data_file(job_dir / "clip-data.json.gz", train, eval_data)
        release = current_release(self.graph) or {}
        info = {"graph_stamp": train.info.get("graph_stamp"), "hpo_release": release.get("version")}
        return path, info, dataclasses.replace(config, train=dataclasses.replace(config.train, text_model=text_path))

    def _submit_to_ray(self, job: J.TrainingJob) -> None:
        spec = self._spec(job)
        python = self.settings.job_python or sys.executable
        entrypoint = f"{shlex.quote(python)} -m models.train.job_entry {shlex.quote(job.job_dir)}"
        gpus = spec.gpus if spec is not None else 0
        env = {"PHENOKG_HOME": str(self.settings.home), "RAY_USAGE_STATS_ENABLED": "0",
               "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
        ray_id = self.ray.submit(job.id, entrypoint, env=env, num_cpus=1, num_gpus=gpus,
                                 metadata={"phenokg_job": job.id, "kind": job.kind})
        J.update_job(self.graph, job.evolve(ray_job_id=ray_id))
        log.info("job %s submitted to Ray as %s", job.id, ray_id)

    # ---- status sync -------------------------------------------------------------------------------------

    def _result(self, job: J.TrainingJob) -> dict[str, Any] | None:
        try:
            data = json.loads((Path(job.job_dir) / RESULT_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def reconcile(self, job: J.TrainingJob) -> J.TrainingJob:
        """Bring one live job's record in line with Ray and its files."""
        assert job.ray_job_id is not None
        state = self.ray.state(job.ray_job_id)
        follower = self._followers.get(job.id)
        if follower is None:  # the run's directory is read from spec.json once per job, not every poll
            follower = self._followers[job.id] = MetricsFollower(Path(self._out_dir(job)) / "metrics.jsonl")
        seen = follower.read()
        step, total = seen.step, seen.total_steps or job.total_steps
        updated = job.evolve(step=step, total_steps=total, metrics=seen.metrics or job.metrics,
                             history=seen.history or job.history,
                             progress=min(1.0, step / total) if total else job.progress)
        if state is not None:
            tail = _log_tail(self.ray.logs(job.ray_job_id))
            updated = updated.evolve(log_tail=tail or job.log_tail,
                                     started_at=job.started_at or _iso_ms(state.start_time_ms))
        result = self._result(job)
        if state is None:
            if result and result.get("status") == "succeeded":
                return self._succeed(updated, result)
            return self._finish(updated, "failed", error=f"the Ray job {job.ray_job_id} no longer exists (Ray was "
                                                         "restarted or the job was removed) before it finished")
        finished = _iso_ms(state.end_time_ms)
        if state.status == "PENDING":
            return self._write(updated.evolve(status="queued"))
        if state.status == "RUNNING":
            return self._write(updated.evolve(status="running", started_at=updated.started_at or J.now()))
        if state.status == "SUCCEEDED":
            if result and result.get("status") == "succeeded":
                return self._succeed(updated, result, finished)
            return self._finish(updated, "failed", error="the job finished without a result", finished=finished)
        if state.status == "STOPPED":
            return self._finish(updated, "cancelled", error=None, finished=finished)
        error = (result or {}).get("error") or state.message or f"Ray reports {state.status}"
        return self._finish(updated, "failed", error=str(error), finished=finished)

    def _spec(self, job: J.TrainingJob) -> JobSpec | None:
        """The job's spec, read from ``spec.json`` once per job (``None`` when it is missing or malformed)."""
        spec = self._specs.get(job.id)
        if spec is None:
            try:
                spec = self._specs[job.id] = JobSpec.read(Path(job.job_dir))
            except ValidationError as exc:
                log.warning("job %s: %s", job.id, exc)
        return spec

    def _out_dir(self, job: J.TrainingJob) -> str:
        spec = self._spec(job)
        return spec.out_dir if spec is not None else str(self.settings.models_dir / job.kind / job.model_id)

    def _write(self, job: J.TrainingJob) -> J.TrainingJob:
        written = J.update_job(self.graph, job) or J.get_job(self.graph, job.id)
        if not written.live:
            self._followers.pop(job.id, None)
            self._specs.pop(job.id, None)
        return written

    def _finish(self, job: J.TrainingJob, status: str, *, error: str | None,
                finished: str | None = None) -> J.TrainingJob:
        log.info("job %s %s%s", job.id, status, f": {error}" if error else "")
        return self._write(job.evolve(status=status, error=error, finished_at=finished or J.now()))

    def _succeed(self, job: J.TrainingJob, result: dict[str, Any], finished: str | None = None) -> J.TrainingJob:
        from app.services.training import model_version_from_dir
        from kg.repo.registry import get_model, register_model

        try:
            version = model_version_from_dir(Path(str(result["out_dir"])))
            try:
                registered = get_model(self.graph, version.id)  # registered by an earlier, interrupted round
            except NotFoundError:
                registered = register_model(self.graph, version)
            J.link_model(self.graph, job.id, registered.id)
        except (OSError, ValueError, KeyError, ValidationError) as exc:
            return self._finish(job, "failed", error=f"the model could not be registered: {exc}", finished=finished)
        metrics = {**job.metrics, **_headline(result.get("headline"))}
        return self._write(job.evolve(status="succeeded", progress=1.0, metrics=metrics, error=None,
                                      data_hash=str(result.get("data_hash") or "") or None,
                                      finished_at=finished or J.now(), model_version=registered.id))

    # ---- cancel ------------------------------------------------------------------------------------------

    def cancel(self, job_id: str, wait_s: float = 5.0) -> J.TrainingJob:
        """Stop a live job (Ray sends SIGTERM, then SIGKILL); :class:`JobConflictError` if it has finished."""
        import time

        with self._lock:
            job = J.get_job(self.graph, job_id)
            if not job.live:
                raise JobConflictError(f"training job {job_id} already {job.status}")
            if job.ray_job_id is None:
                return self._finish(job, "cancelled", error=None)
            self.ray.stop(job.ray_job_id)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            with self._lock:
                job = J.get_job(self.graph, job_id)
                if not job.live:
                    return job
                state = self.ray.state(job.ray_job_id) if job.ray_job_id else None
                if state is None or state.status not in ("PENDING", "RUNNING"):
                    return self.reconcile(job)
            time.sleep(0.25)
        return J.get_job(self.graph, job_id)
