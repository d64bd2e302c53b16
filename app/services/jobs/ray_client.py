"""Ray Jobs, as phenokg uses them: one :class:`RayJobs` per API process.

With ``RAY_ADDRESS`` set, jobs go to that cluster (a dashboard address such as ``http://head:8265``, as the Ray
Jobs CLI takes it); unset, to the local head of :mod:`app.services.jobs.ray_head`, started on first use (and stopped by
:meth:`RayJobs.close` if this process started it). Ray is imported only when a job needs it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.services.jobs.ray_head import LocalRayHead

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

log = logging.getLogger(__name__)


class RayUnavailableError(RuntimeError):
    """Ray's Jobs API could not be reached (or the local head could not be started)."""


@dataclass(frozen=True)
class RayJobState:
    """What Ray says about one job: ``status`` is Ray's (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED)."""

    status: str
    message: str | None
    start_time_ms: int | None
    end_time_ms: int | None


class RayJobs:
    """Submit, watch and stop Ray jobs; ``None`` from :meth:`state` means Ray does not know the job."""

    def __init__(self, address: str | None, head_root: Path, *, num_cpus: int = 2,
                 num_gpus: int | None = None, client_server: bool = False) -> None:
        self.address = address
        self.head = (LocalRayHead(head_root, num_cpus=num_cpus, num_gpus=num_gpus, client_server=client_server)
                     if not address else None)
        self.started_head = False
        self._closed = False
        self._client: JobSubmissionClient | None = None
        self._lock = threading.Lock()

    @property
    def local(self) -> bool:
        return self.head is not None

    def client(self) -> JobSubmissionClient:
        """The Jobs API client (starting or reusing the local head first when there is no ``RAY_ADDRESS``)."""
        with self._lock:
            if self._client is not None:
                return self._client
            if self._closed:
                raise RayUnavailableError("the job manager is shutting down")
            try:
                from ray.job_submission import JobSubmissionClient

                address = self.address
                if self.head is not None:
                    address, started = self.head.ensure()
                    self.started_head = self.started_head or started
                self._client = JobSubmissionClient(address)
            except (OSError, RuntimeError, ValueError) as exc:  # ValueError: RAY_ADDRESS is no address
                raise RayUnavailableError(f"Ray is not reachable at {self.address or 'the local head'}: {exc}"
                                          ) from exc
            return self._client

    def _reset(self) -> None:
        with self._lock:
            self._client = None

    def _call(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        client = self.client()
        try:
            return getattr(client, fn)(*args, **kwargs)
        except OSError as exc:  # requests' ConnectionError is an OSError: the head went away
            self._reset()
            raise RayUnavailableError(f"Ray is not reachable: {exc}") from exc

    def submit(self, submission_id: str, entrypoint: str, *, env: dict[str, str], num_cpus: float = 1,
               num_gpus: float = 0, metadata: dict[str, str] | None = None) -> str:
        """Submit ``entrypoint`` as job ``submission_id`` (an existing job of that id is taken as is)."""
        if self.state(submission_id) is not None:
            return submission_id
        try:
            return str(self._call("submit_job", entrypoint=entrypoint, submission_id=submission_id,
                                  runtime_env={"env_vars": env}, entrypoint_num_cpus=num_cpus,
                                  entrypoint_num_gpus=num_gpus or None, metadata=metadata or {}))
        except RuntimeError as exc:  # the Jobs API answered with an error (e.g. "No available agent …")
            if isinstance(exc, RayUnavailableError):
                raise
            raise RayUnavailableError(f"Ray refused the job: {exc}") from exc

    def state(self, submission_id: str) -> RayJobState | None:
        try:
            info = self._call("get_job_info", submission_id)
        except RayUnavailableError:
            raise
        except RuntimeError as exc:
            if "404" in str(exc) or "does not exist" in str(exc):
                return None
            raise RayUnavailableError(str(exc)) from exc
        status = getattr(info.status, "value", info.status)
        return RayJobState(str(status), info.message, info.start_time, info.end_time)

    def logs(self, submission_id: str) -> str:
        try:
            return str(self._call("get_job_logs", submission_id))
        except RuntimeError:
            return ""

    def stop(self, submission_id: str) -> bool:
        try:
            return bool(self._call("stop_job", submission_id))
        except RuntimeError:
            return False

    def close(self) -> None:
        """Stop the local head if this process started it (also one still starting); no new start after this."""
        self._closed = True
        if self.head is not None:
            self.head.cancel()  # a start in progress gives up (and kills what it started)
            if self.started_head or self.head.spawned:
                log.info("stopping the local Ray head this API started")
                self.head.stop()
            self.started_head = False
        with self._lock:
            self._client = None
