"""One BLAS thread per request thread in the server.

Request threads run numpy (semantic search's ``query @ matrix.T``, ranking) at the same time. With OpenBLAS's
default of one thread per core, every concurrent call starts its own threads and they spin against each other:
on 2 cores a matrix-vector product ran at 50 calls/s from one thread and 12 from 16 threads (2 from 64). One
BLAS thread per call keeps the cores for the callers: 79 / 85 / 80 calls/s (/tmp/blas_test.py-style check in
docs/benchmarks/api-latency.md). Concurrency comes from the request threads, not from inside one call.
"""

from __future__ import annotations

from typing import Any

from threadpoolctl import threadpool_limits


def limit_blas_threads(threads: int = 1) -> Any:
    """Limit every loaded BLAS library (numpy's OpenBLAS, MKL) to ``threads`` for the rest of the process;
    returns the limiter (its ``restore_original_limits()`` undoes it)."""
    return threadpool_limits(limits=threads, user_api="blas")
