"""Micro-batching: concurrent requests share forward passes, run in one thread off the event loop.

`MicroBatcher(run, max_batch_size=32, max_wait_ms=5.0)`

- `await batcher.submit(key, items) -> list` returns one result per item, in order. Requests with
  the same `key` (for the embedder: the output size and the instruction) may share a batch;
  different keys never do.
- `run(key, items) -> list` is called in the batcher's single worker thread, with at most
  `max_batch_size` items of one key; it returns, per item, its result or the exception that item
  raised (so one bad item fails only its own request). An exception raised by `run` itself fails
  every request in that batch. Each call is one model forward pass.
- The worker takes the first queued request and every one queued behind it (up to
  `max_batch_size` items). It then waits, at most `max_wait_ms`, only while the batch is smaller
  than the largest of the last `RECENT_BATCHES` batches: the concurrency the traffic has shown. A
  lone client is answered without waiting; concurrent clients' requests, which reach the queue a
  few milliseconds apart, still share passes. A request larger than `max_batch_size` is split
  into several batches.
- `max_batch_size=1` switches batching off (one item per forward pass, never merged);
  `max_wait_ms=0` merges only what is already queued. Both are for benchmarks.
- `max_queued_items` bounds the items waiting for the model (submitted, not yet answered), and
  `max_queued_cost` the sum of their `cost(item)` (default: 1 each; the server weighs items by
  what they decode to, `sail.serving.cost`): a request that would go past either raises
  Overloaded at once (the server answers 503), unless nothing is waiting. None: unbounded.
- `submit(..., timeout_s=...)` gives the request a deadline: past it, the request raises
  DeadlineExceeded (the server answers 504) and the worker skips its items that have not run yet,
  as it skips those of a cancelled request (`stats.skipped_items` counts them); a batch already
  running is not interrupted.
- Results are handed back with `loop.call_soon_threadsafe`, so the event loop never blocks on the
  model. `stats` counts requests, items and forward passes; `close()` stops the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

RunBatch = Callable[[Hashable, list[Any]], list[Any]]
RECENT_BATCHES = 8  # the batches whose largest size sets how many items the next one waits for


class BatcherClosed(RuntimeError):
    """The batcher was closed before the request ran."""


class Overloaded(RuntimeError):
    """Too many items are waiting for the model; the client should retry later."""


class DeadlineExceeded(RuntimeError):
    """The request was not answered before its deadline; the client may retry later."""


class ItemFailed(Exception):
    """One item of a request failed: `index` is its position in the request, `error` the cause."""

    def __init__(self, index: int, error: BaseException):
        super().__init__(f"item {index}: {error}")
        self.index = index
        self.error = error


@dataclass
class BatcherStats:
    """Counters since the batcher was made: requests submitted, items, forward passes (`run`
    calls), the largest batch, the sizes of the last RECENT_BATCHES batches, and the items
    skipped unrun as their request had gone (its deadline passed, or its caller cancelled)."""

    requests: int = 0
    items: int = 0
    forward_passes: int = 0
    largest_batch: int = 0
    batch_sizes: deque[int] = field(default_factory=lambda: deque(maxlen=RECENT_BATCHES))
    skipped_items: int = 0

    def snapshot(self) -> BatcherStats:
        return BatcherStats(
            self.requests,
            self.items,
            self.forward_passes,
            self.largest_batch,
            deque(self.batch_sizes, maxlen=RECENT_BATCHES),
            self.skipped_items,
        )


@dataclass
class _Job:
    key: Hashable
    items: list[Any]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    deadline: float | None = None

    def expired(self, now: float) -> bool:
        """Its caller has gone, or its deadline (time.monotonic) has passed."""
        return self.future.cancelled() or (self.deadline is not None and now >= self.deadline)


_STOP = object()


class MicroBatcher:
    """Collects concurrent requests' items into batches for one worker thread (see module doc)."""

    def __init__(
        self,
        run: RunBatch,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        name: str = "sail-batcher",
        on_batch: Callable[[int], None] | None = None,
        max_queued_items: int | None = None,
        max_queued_cost: int | None = None,
        cost: Callable[[Any], int] | None = None,
    ):
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        for bound in (max_queued_items, max_queued_cost):
            if bound is not None and bound < 1:
                raise ValueError("the queue bounds must be at least 1 (or None)")
        if max_wait_ms < 0:
            raise ValueError("max_wait_ms must be 0 or more")
        self.run = run
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.name = name
        self.on_batch = on_batch
        self.max_queued_items = max_queued_items
        self.max_queued_cost = max_queued_cost
        self.cost = cost or _one
        self.waiting_items = 0
        self.waiting_cost = 0
        self.stats = BatcherStats()
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def batching(self) -> bool:
        return self.max_batch_size > 1

    @property
    def alive(self) -> bool:
        """False once the worker thread has stopped (closed, or killed by an error the worker
        does not catch); True before it starts, as the first submit starts it."""
        thread = self._thread
        return not self._closed and (thread is None or thread.is_alive())

    def start(self) -> None:
        """Start the worker thread (submit starts it too)."""
        with self._lock:
            if self._closed:
                raise BatcherClosed("the batcher is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._thread.start()

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop the worker after the batch it is running; queued requests fail with
        BatcherClosed."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._queue.put(_STOP)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    async def submit(
        self, key: Hashable, items: Sequence[Any], timeout_s: float | None = None
    ) -> list[Any]:
        """Run `items` under `key`; returns their results in order, or raises ItemFailed for the
        first item whose result is an exception, Overloaded when too much is waiting, and
        DeadlineExceeded when `timeout_s` passes first."""
        items = list(items)
        if not items:
            return []
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self.start()
        cost = sum(self.cost(item) for item in items)
        loop = asyncio.get_running_loop()
        chunks = [
            items[start : start + self.max_batch_size]
            for start in range(0, len(items), self.max_batch_size)
        ]
        jobs = [_Job(key, chunk, loop.create_future(), loop, deadline) for chunk in chunks]
        with self._lock:
            if self._closed:
                raise BatcherClosed("the server is shutting down")
            self._check_room(len(items), cost)
            self.waiting_items += len(items)
            self.waiting_cost += cost
            self.stats.requests += 1
            self.stats.items += len(items)
            for job in jobs:
                self._queue.put(job)
        try:
            parts = await asyncio.wait_for(asyncio.gather(*(job.future for job in jobs)), timeout_s)
        except (TimeoutError, DeadlineExceeded):
            raise DeadlineExceeded(
                f"not answered within the request deadline of {timeout_s:g} s: retry later"
            ) from None
        finally:
            for job in jobs:
                job.future.cancel()  # a no-op for the jobs that ran
            with self._lock:
                self.waiting_items -= len(items)
                self.waiting_cost -= cost
        results = [result for part in parts for result in part]
        for index, result in enumerate(results):
            if isinstance(result, BaseException):
                raise ItemFailed(index, result) from result
        return results

    def _check_room(self, items: int, cost: int) -> None:
        """Raise Overloaded if the request would take the waiting work past a bound (with the
        lock held); a request arriving when nothing waits always has room."""
        if not self.waiting_items:
            return
        if self.max_queued_items is not None and self.waiting_items + items > self.max_queued_items:
            raise Overloaded(
                f"{self.waiting_items} items are waiting for the model and this request adds "
                f"{items}; at most {self.max_queued_items} may wait: retry later"
            )
        if self.max_queued_cost is not None and self.waiting_cost + cost > self.max_queued_cost:
            raise Overloaded(
                f"work of {self.waiting_cost:,} cost units is waiting for the model and this "
                f"request adds {cost:,}; at most {self.max_queued_cost:,} may wait: retry later"
            )

    # --- worker thread -------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                break
            pending, stop = self._collect(first)
            for batch in self._pack(pending):
                self._run_batch(batch)
            if stop:
                break
        self._fail_queued()

    def _collect(self, first: _Job) -> tuple[list[_Job], bool]:
        """The first job plus whatever is queued already, and what arrives within the wait while
        the batch is smaller than the recent largest."""
        pending = [first]
        if not self.batching:
            return pending, False
        total = len(first.items)
        with self._lock:
            expected = max(self.stats.batch_sizes, default=1)
        deadline = time.monotonic() + self.max_wait_s
        while total < self.max_batch_size:
            remaining = deadline - time.monotonic()
            try:
                job = (
                    self._queue.get(timeout=remaining)
                    if total < expected and remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if job is _STOP:
                return pending, True
            if self._skip_expired([job]):
                pending.append(job)
                total += len(job.items)
        return pending, False

    def _skip_expired(self, jobs: list[_Job]) -> list[_Job]:
        """The jobs still wanted; the others are resolved with DeadlineExceeded, unrun (a
        cancelled caller ignores it)."""
        now = time.monotonic()
        wanted, gone = [], []
        for job in jobs:
            (gone if job.expired(now) else wanted).append(job)
        if gone:
            with self._lock:
                self.stats.skipped_items += sum(len(job.items) for job in gone)
            for job in gone:
                _resolve(job, error=DeadlineExceeded("the request's deadline passed"))
        return wanted

    def _pack(self, jobs: list[_Job]) -> list[list[_Job]]:
        """Group jobs by key, in arrival order, into batches of at most max_batch_size items."""
        groups: dict[Hashable, list[list[_Job]]] = {}
        for job in jobs:
            batches = groups.setdefault(job.key, [[]])
            current = batches[-1]
            if (
                current
                and sum(len(j.items) for j in current) + len(job.items) > self.max_batch_size
            ):
                batches.append(current := [])
            current.append(job)
        return [batch for batches in groups.values() for batch in batches if batch]

    def _run_batch(self, batch: list[_Job]) -> None:
        batch = self._skip_expired(batch)
        if not batch:
            return
        items = [item for job in batch for item in job.items]
        with self._lock:
            self.stats.forward_passes += 1
            self.stats.largest_batch = max(self.stats.largest_batch, len(items))
            self.stats.batch_sizes.append(len(items))
        if self.on_batch is not None:
            try:
                self.on_batch(len(items))
            except Exception:  # metrics must never break serving
                logger.exception("batch callback failed")
        try:
            results = self.run(batch[0].key, items)
            if len(results) != len(items):
                raise RuntimeError(f"run returned {len(results)} results for {len(items)} items")
        except Exception as error:  # handed to the waiting requests
            logger.exception("batch of %d item(s) failed", len(items))
            for job in batch:
                _resolve(job, error=error)
            return
        start = 0
        for job in batch:
            _resolve(job, result=results[start : start + len(job.items)])
            start += len(job.items)

    def _fail_queued(self) -> None:
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not _STOP:
                _resolve(job, error=BatcherClosed("the server is shutting down"))


def _one(_item: Any) -> int:
    return 1


def _resolve(job: _Job, result: Any = None, error: BaseException | None = None) -> None:
    def settle() -> None:
        if job.future.done():  # the caller went away
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
        job.loop.call_soon_threadsafe(settle)
