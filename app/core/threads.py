"""One BLAS thread per request thread in the server.

Request threads run numpy (semantic search's ``query @ matrix.T``, ranking) at the same time. With OpenBLAS's
default of one thread per core, every concurrent call starts its own threads and they spin against each other:
on 2 cores a matrix-vector product ran at 51 calls/s from one thread, 7 from 16 threads and 2 from 64; with one
BLAS thread per call 144 / 121 / 141 (``benchmarks/blas_concurrency.py``, docs/benchmarks/api-latency.md).
Concurrency comes from the request threads, not from inside one call.
"""

from __future__ import annotations

from typing import Any

from threadpoolctl import threadpool_limits


def limit_blas_threads(threads: int = 1) -> Any:
    """Limit every loaded BLAS library (numpy's OpenBLAS, MKL) to ``threads`` for the rest of the process;
    returns the limiter (its ``restore_original_limits()`` undoes it)."""
    return threadpool_limits(limits=threads, user_api="blas")
