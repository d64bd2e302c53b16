"""models.batching.MicroBatcher: concurrent callers share batches, each gets its own result or error."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from models.batching import BatcherClosedError, MicroBatcher


def test_concurrent_items_are_batched_and_routed_to_their_callers() -> None:
    seen: list[list[int]] = []
    gate = threading.Event()

    def square(items: list[int]) -> list[int]:
        gate.wait(5)  # the first batch waits, so the others queue up behind it
        seen.append(list(items))
        return [x * x for x in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(square, max_batch=8, max_wait_s=0.05)
    try:
        with ThreadPoolExecutor(32) as pool:
            futures = [pool.submit(batcher, i, 10) for i in range(64)]
            gate.set()
            results = [f.result() for f in futures]
        assert results == [i * i for i in range(64)]
        assert sorted(x for batch in seen for x in batch) == list(range(64))
        assert max(len(b) for b in seen) > 1 and all(len(b) <= 8 for b in seen)
        assert batcher.stats.items == 64 and batcher.stats.batches == len(seen)
    finally:
        batcher.close()


def test_an_error_reaches_only_the_caller_whose_item_fails() -> None:
    calls: list[list[int]] = []
    gate, entered = threading.Event(), threading.Event()

    def fragile(items: list[int]) -> list[str]:
        entered.set()
        gate.wait(5)
        calls.append(list(items))
        if 13 in items:
            raise ValueError("unlucky item")
        return [f"ok {x}" for x in items]

    batcher: MicroBatcher[int, str] = MicroBatcher(fragile, max_batch=16, max_wait_s=0.2)
    try:
        busy = batcher.submit(0)  # holds the worker until the gate opens ...
        assert entered.wait(5)
        futures = [batcher.submit(i) for i in range(10, 17)]  # ... so these queue up: one batch
        gate.set()
        assert busy.result(5) == "ok 0"
        with pytest.raises(ValueError, match="unlucky item"):
            futures[3].result(5)
        assert [f.result(5) for i, f in enumerate(futures) if i != 3] == [f"ok {x}" for x in (10, 11, 12, 14, 15, 16)]
        assert calls[1] == list(range(10, 17))  # tried as one batch, then item by item
        assert batcher(20, 5) == "ok 20"  # still serving
    finally:
        batcher.close()


def test_batch_of_one_does_not_wait_and_wrong_result_count_is_an_error() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: [x + 1 for x in items], max_batch=1, max_wait_s=10)
    try:
        assert [batcher(i, 2) for i in range(5)] == [1, 2, 3, 4, 5]  # max_batch=1: no 10 s wait
        assert batcher.stats.largest == 1
    finally:
        batcher.close()
    with pytest.raises(BatcherClosedError):
        batcher.submit(1)
    broken: MicroBatcher[int, int] = MicroBatcher(lambda items: [], max_batch=4, max_wait_s=0)
    try:
        with pytest.raises(RuntimeError, match="0 results for 1 item"):
            broken(1, 2)
    finally:
        broken.close()
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(lambda items: items, max_batch=0)


def test_a_lone_item_on_an_idle_batcher_does_not_wait() -> None:
    """One client at a time pays no batching delay; overlapping items still batch (first test)."""
    import time

    batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: [x * 2 for x in items], max_batch=8, max_wait_s=5)
    try:
        started = time.monotonic()
        assert [batcher(i, 10) for i in range(3)] == [0, 2, 4]
        assert time.monotonic() - started < 2.5  # not one 5 s wait, let alone three
    finally:
        batcher.close()


def test_concurrent_queries_share_one_inference_worker() -> None:
    """TextEmbedder.encode_queries: concurrent callers' misses go through one micro-batching worker, and each
    caller gets the same vectors as a direct encode()."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from models.embeddings import TextEmbedder

    embedder = TextEmbedder.load(None, backend="torch")
    texts = [f"abnormality of the finger {i}" for i in range(48)]
    expected = embedder.encode(texts)
    try:
        with ThreadPoolExecutor(16) as pool:
            got = list(pool.map(embedder.encode_query, texts))
        np.testing.assert_allclose(np.stack(got), expected, atol=1e-5)
        batcher = embedder._batcher
        assert batcher is not None
        assert batcher.stats.items == len(texts)
        assert batcher.stats.batches < len(texts)  # overlapping requests were batched together
    finally:
        embedder.close()
