"""MicroBatcher on its own: merging, grouping by key, splitting, errors, the loop never blocked."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from sail.serving.batching import (
    RECENT_BATCHES,
    BatcherClosed,
    DeadlineExceeded,
    ItemFailed,
    MicroBatcher,
    Overloaded,
)


class Recorder:
    """A runner that doubles numbers, records each batch, and fails on negative items."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.batches: list[tuple[object, list]] = []
        self.threads: set[str] = set()

    def __call__(self, key, items):
        self.batches.append((key, list(items)))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        return [ValueError(f"bad {x}") if x < 0 else 2 * x for x in items]


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_share_forward_passes():
    recorder = Recorder(delay=0.01)
    batcher = MicroBatcher(recorder, max_batch_size=64, max_wait_ms=50)

    async def main():
        return await asyncio.gather(*(batcher.submit("k", [i, i + 100]) for i in range(16)))

    results = run(main())
    batcher.close()
    assert results == [[2 * i, 2 * (i + 100)] for i in range(16)]
    assert batcher.stats.requests == 16 and batcher.stats.items == 32
    assert batcher.stats.forward_passes < 16
    assert batcher.stats.forward_passes == len(recorder.batches)
    assert recorder.threads == {"sail-batcher"}  # one worker thread runs every batch


def test_a_lone_client_is_not_kept_waiting_and_concurrent_ones_still_share_passes():
    recorder = Recorder(delay=0.02)
    batcher = MicroBatcher(recorder, max_batch_size=32, max_wait_ms=3000)

    async def one_at_a_time():
        began = time.monotonic()
        for i in range(3):
            await batcher.submit("k", [i])
        return time.monotonic() - began

    # nothing recent is larger than 1 item: no request waits the 3 s for company
    assert run(one_at_a_time()) < 2.0
    assert [len(items) for _, items in recorder.batches] == [1, 1, 1]

    async def clients(n):
        async def client(i):
            await asyncio.sleep(0.005 * i)  # arrivals spread over a few milliseconds
            return await batcher.submit("k", [i])

        return await asyncio.gather(*(client(i) for i in range(n)))

    recorder.batches.clear()
    batcher.stats.batch_sizes.append(8)  # as if 8 clients had been served together
    assert run(clients(8)) == [[2 * i] for i in range(8)]
    batcher.close()
    assert [len(items) for _, items in recorder.batches] == [8]  # waited for the other 7


def test_a_long_lived_batcher_keeps_only_the_recent_batch_sizes():
    batcher = MicroBatcher(Recorder(), max_batch_size=4, max_wait_ms=0)

    async def main():
        for i in range(3 * RECENT_BATCHES):
            await batcher.submit("k", [i] * (1 + i % 4))

    run(main())
    batcher.close()
    assert batcher.stats.forward_passes == 3 * RECENT_BATCHES
    assert list(batcher.stats.batch_sizes) == [
        1 + i % 4 for i in range(2 * RECENT_BATCHES, 3 * RECENT_BATCHES)
    ]
    assert batcher.stats.largest_batch == 4


def test_keys_never_share_a_batch():
    recorder = Recorder()
    batcher = MicroBatcher(recorder, max_batch_size=64, max_wait_ms=50)

    async def main():
        keys = ["a", "b"] * 6
        return await asyncio.gather(*(batcher.submit(k, [i]) for i, k in enumerate(keys)))

    results = run(main())
    batcher.close()
    assert results == [[2 * i] for i in range(12)]
    for key, items in recorder.batches:
        assert all((i % 2 == 0) == (key == "a") for i in items)
    assert len(recorder.batches) < 12


def test_batch_size_cap_and_split_of_a_large_request():
    recorder = Recorder()
    batcher = MicroBatcher(recorder, max_batch_size=4, max_wait_ms=20)
    result = run(batcher.submit("k", list(range(10))))
    batcher.close()
    assert result == [2 * i for i in range(10)]
    assert all(len(items) <= 4 for _, items in recorder.batches)
    assert batcher.stats.largest_batch <= 4 and batcher.stats.forward_passes >= 3


def test_batching_off_runs_each_item_alone():
    recorder = Recorder(delay=0.005)
    batcher = MicroBatcher(recorder, max_batch_size=1, max_wait_ms=0)

    async def main():
        return await asyncio.gather(*(batcher.submit("k", [i]) for i in range(8)))

    assert run(main()) == [[2 * i] for i in range(8)]
    batcher.close()
    assert batcher.stats.forward_passes == 8
    assert [len(items) for _, items in recorder.batches] == [1] * 8


def test_a_bad_item_fails_only_its_own_request():
    batcher = MicroBatcher(Recorder(), max_batch_size=16, max_wait_ms=30)

    async def main():
        return await asyncio.gather(
            batcher.submit("k", [1, 2]),
            batcher.submit("k", [3, -4, 5]),
            batcher.submit("k", [6]),
            return_exceptions=True,
        )

    good, bad, other = run(main())
    batcher.close()
    assert good == [2, 4] and other == [12]
    assert isinstance(bad, ItemFailed) and bad.index == 1
    assert str(bad.error) == "bad -4"


def test_a_runner_crash_fails_the_batch_and_the_batcher_keeps_serving():
    calls = []

    def flaky(key, items):
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("forward pass exploded")
        return items

    batcher = MicroBatcher(flaky, max_batch_size=8, max_wait_ms=0)
    with pytest.raises(RuntimeError, match="exploded"):
        run(batcher.submit("k", [1]))
    assert run(batcher.submit("k", [7])) == [7]
    batcher.close()


def test_the_event_loop_runs_while_the_model_works():
    batcher = MicroBatcher(Recorder(delay=0.3), max_batch_size=8, max_wait_ms=0)

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        result = await batcher.submit("k", [1])
        task.cancel()
        return result, ticks

    result, ticks = run(main())
    batcher.close()
    assert result == [2]
    assert ticks >= 10  # the loop ticked during the 0.3 s forward pass


def test_closed_batcher_refuses_work():
    batcher = MicroBatcher(Recorder())
    assert run(batcher.submit("k", [1])) == [2]
    batcher.close()
    with pytest.raises(BatcherClosed):
        run(batcher.submit("k", [1]))


class Gate:
    """A runner that holds every batch until `open` is set."""

    def __init__(self):
        self.open = threading.Event()

    def __call__(self, key, items):
        self.open.wait(10)
        return [2 * x for x in items]


def test_a_full_queue_sheds_load_and_recovers():
    gate = Gate()
    batcher = MicroBatcher(gate, max_batch_size=4, max_wait_ms=0, max_queued_items=5)

    async def main():
        first = asyncio.ensure_future(batcher.submit("k", [1, 2, 3]))
        while batcher.waiting_items < 3:
            await asyncio.sleep(0.01)
        with pytest.raises(Overloaded, match="3 items are waiting.*at most 5"):
            await batcher.submit("k", [4, 5, 6])
        second = asyncio.ensure_future(batcher.submit("k", [7, 8]))  # 3 + 2 fits
        await asyncio.sleep(0.05)
        gate.open.set()
        return await first, await second

    assert run(main()) == ([2, 4, 6], [14, 16])
    assert batcher.waiting_items == 0
    assert run(batcher.submit("k", list(range(9)))) == [2 * x for x in range(9)]  # alone: runs
    batcher.close()


def test_bad_settings():
    with pytest.raises(ValueError):
        MicroBatcher(Recorder(), max_batch_size=0)
    with pytest.raises(ValueError):
        MicroBatcher(Recorder(), max_wait_ms=-1)
    with pytest.raises(ValueError):
        MicroBatcher(Recorder(), max_queued_items=0)
    with pytest.raises(ValueError):
        MicroBatcher(Recorder(), max_queued_cost=0)


def test_alive_until_the_worker_thread_stops():
    def dies(key, items):
        raise SystemExit  # not an Exception: the worker thread ends

    batcher = MicroBatcher(dies, max_batch_size=8, max_wait_ms=0)
    assert batcher.alive  # not started yet: the first submit starts it
    with pytest.raises(asyncio.TimeoutError):
        run(asyncio.wait_for(batcher.submit("k", [1]), 1.0))
    assert not batcher.alive
    healthy = MicroBatcher(Recorder(), max_batch_size=8, max_wait_ms=0)
    assert run(healthy.submit("k", [1])) == [2] and healthy.alive
    healthy.close()
    assert not healthy.alive


def test_the_queue_bound_weighs_items_by_their_cost():
    gate = Gate()
    batcher = MicroBatcher(gate, max_batch_size=4, max_wait_ms=0, max_queued_cost=100, cost=abs)

    async def main():
        first = asyncio.ensure_future(batcher.submit("k", [60]))
        while batcher.waiting_cost < 60:
            await asyncio.sleep(0.01)
        with pytest.raises(Overloaded, match="60 cost units.*adds 50.*at most 100"):
            await batcher.submit("k", [50])  # one item, far under any item bound
        second = asyncio.ensure_future(batcher.submit("k", [10, 30]))  # 60 + 40 fits
        await asyncio.sleep(0.05)
        gate.open.set()
        return await first, await second

    assert run(main()) == ([120], [20, 60])
    assert (batcher.waiting_items, batcher.waiting_cost) == (0, 0)
    assert run(batcher.submit("k", [500])) == [1000]  # alone: runs, whatever it costs
    batcher.close()


def test_a_request_past_its_deadline_fails_and_its_queued_items_never_run():
    started, recorder = threading.Event(), Recorder()
    gate = Gate()

    def held(key, items):
        started.set()
        gate(key, items)
        return recorder(key, items)

    batcher = MicroBatcher(held, max_batch_size=4, max_wait_ms=0)

    async def main():
        first = asyncio.ensure_future(batcher.submit("k", [1]))
        while not started.is_set():
            await asyncio.sleep(0.01)
        began = time.monotonic()
        with pytest.raises(DeadlineExceeded, match="deadline of 0.2 s"):
            await batcher.submit("k", [7, 8, 9, 10, 11], timeout_s=0.2)
        waited = time.monotonic() - began
        gate.open.set()
        return await first, waited

    result, waited = run(main())
    assert result == [2] and 0.2 <= waited < 2
    assert run(batcher.submit("k", [3], timeout_s=5)) == [6]  # the worker carries on
    batcher.close()
    assert [items for _, items in recorder.batches] == [[1], [3]]
    assert batcher.stats.skipped_items == 5
    assert batcher.waiting_items == 0
