"""Dynamic micro-batching: requests from many threads run as one batch, each caller gets its own result.

A :class:`MicroBatcher` owns one worker thread. :meth:`MicroBatcher.submit` queues an item and returns a
:class:`concurrent.futures.Future`; the worker takes the first waiting item, keeps collecting until
``max_batch`` items are there or ``max_wait_s`` has passed since that first item, calls ``fn(items)`` once and
hands result ``i`` to the caller of item ``i``. With ``max_batch=1`` every item runs alone (no waiting).

The wait is paid only when there is traffic to share it: a lone item (nothing queued behind it, the previous
batch a single item) runs at once, so one client at a time sees no batching delay; as soon as items overlap
(some queue up while a batch runs), batches collect as above until a lone item shows the traffic has gone.

When ``fn`` raises for a batch of several items, each item is run again alone, so an error reaches only the
caller whose item causes it and the other callers still get their results. No torch here: ``fn`` is any
callable from a list of items to a list of results of the same length.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["BatchStats", "BatcherClosedError", "MicroBatcher"]

T = TypeVar("T")
R = TypeVar("R")


class BatcherClosedError(RuntimeError):
    """The batcher was closed before (or while) the item could run."""


@dataclass
class BatchStats:
    """Counters since start: batches run, items served, the largest batch."""

    batches: int = 0
    items: int = 0
    largest: int = 0
    sizes: dict[int, int] = field(default_factory=dict)


class MicroBatcher(Generic[T, R]):
    """Queue items from any thread; one worker runs them through ``fn`` in batches (see the module doc)."""

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], *, max_batch: int = 32, max_wait_s: float = 0.005,
                 name: str = "micro-batcher") -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must not be negative, not {max_wait_s}")
        self.fn = fn
        self.max_batch = int(max_batch)
        self.max_wait_s = float(max_wait_s)
        self.stats = BatchStats()
        self._queue: queue.Queue[tuple[T, Future[R]] | None] = queue.Queue()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._last_batch = 1
        self._worker = threading.Thread(target=self._run, name=name, daemon=True)
        self._worker.start()

    def submit(self, item: T) -> Future[R]:
        """Queue ``item``; the future holds its result, or the exception running it raised."""
        future: Future[R] = Future()
        with self._lock:  # no item may slip in after close() has drained the queue
            if self._closed.is_set():
                raise BatcherClosedError("the batcher is closed")
            self._queue.put((item, future))
        return future

    def __call__(self, item: T, timeout: float | None = None) -> R:
        """Submit and wait for the result (re-raises the item's exception)."""
        return self.submit(item).result(timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop the worker after the batch it is running; items still queued fail with BatcherClosedError."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
            self._queue.put(None)
        self._worker.join(timeout)
        while True:
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                break
            if entry is not None and entry[1].set_running_or_notify_cancel():
                entry[1].set_exception(BatcherClosedError("the batcher was closed before the item ran"))

    def _alone(self) -> bool:
        """Whether the item just taken is a lone one on an idle worker (see the module doc): no wait for it."""
        return self._last_batch == 1 and self._queue.empty()

    def _collect(self, first: tuple[T, Future[R]]) -> tuple[list[tuple[T, Future[R]]], bool]:
        batch = [first]
        if self._alone():
            return batch, False
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                entry = self._queue.get_nowait() if remaining <= 0 else self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if entry is None:
                return batch, True
            batch.append(entry)
        return batch, False

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._collect(first)
            live = [(item, fut) for item, fut in batch if fut.set_running_or_notify_cancel()]
            if live:
                self._run_batch(live)
            self._last_batch = len(batch)

    def _run_batch(self, batch: list[tuple[T, Future[R]]]) -> None:
        stats = self.stats
        stats.batches += 1
        stats.items += len(batch)
        stats.largest = max(stats.largest, len(batch))
        stats.sizes[len(batch)] = stats.sizes.get(len(batch), 0) + 1
        try:
            results = list(self.fn([item for item, _ in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(batch)} items")
        except Exception as exc:  # handed to the callers, never swallowed
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for item, fut in batch:  # find whose item fails: each alone
                try:
                    alone = list(self.fn([item]))
                    if len(alone) != 1:
                        raise RuntimeError(f"batch function returned {len(alone)} results for 1 item") from exc
                    fut.set_result(alone[0])
                except Exception as single:
                    fut.set_exception(single)
            return
        for (_, fut), result in zip(batch, results, strict=True):
            fut.set_result(result)
