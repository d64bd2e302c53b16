"""What the benchmark scripts share: the machine they ran on, load averages, percentiles, free ports, and a
timestamped progress line on stderr (stdout carries the results)."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from kg.store.embedded import free_port

__all__ = ["cpu_model", "free_port", "load_average", "machine_line", "percentile", "progress", "stop_child"]


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a phenokg child process on ``home``: no inherited database settings, offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_") and k not in
           ("PHENOKG_BOLT_PORT", "PHENOKG_HTTP_PORT")}
    env.update({"PHENOKG_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **extra})
    return env


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's processor string elsewhere)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, as ``uptime`` prints them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_line() -> str:
    """One line for docs/benchmarks.md: CPU, cores, Python."""
    return f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0–1) with linear interpolation; NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def progress(name: str) -> Callable[[str], None]:
    """A ``say(message)`` that prints ``[name HH:MM:SS] message`` to stderr."""

    def say(message: str) -> None:
        print(f"[{name} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    return say


def stop_child(proc: subprocess.Popen[bytes], say: Callable[[str], None], timeout: float = 30) -> None:
    """Stop a server this script started: SIGINT (uvicorn shuts down, ``phenokg serve`` stops its JVM), then
    SIGKILL if it has not exited within ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        say(f"the server did not stop within {timeout:.0f} s; killing it")
        proc.kill()
        proc.wait(timeout=10)
