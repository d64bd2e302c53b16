"""Handing freed memory back to the system after the start-up warm-up.

Loading the snapshot and the phenotype vectors allocates far more than it keeps (Bolt records, base64 blobs,
per-row tuples); CPython frees them, but glibc keeps the freed heap pages mapped, so the idle process would hold
the peak of its warm-up. ``malloc_trim(0)`` returns those pages (measured by ``benchmarks/footprint.py``)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable
from functools import cache

log = logging.getLogger(__name__)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


def release_freed_memory() -> bool:
    """Collect garbage, then give the C heap's free pages back to the system (glibc only). True if trimmed."""
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    return bool(trim(0))
