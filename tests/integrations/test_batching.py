"""The server's micro-batcher: shared calls, failures kept to their own request, backpressure."""

from __future__ import annotations

import asyncio
import threading

import pytest

from vbert.integrations.batching import MicroBatcher, OverloadedError


def upper(texts: list[str], query: bool) -> list[str]:
    if "bad" in texts:
        raise ValueError("bad input")
    prefix = "q:" if query else "d:"
    return [prefix + text.upper() for text in texts]


async def test_concurrent_requests_share_calls_and_keep_their_order():
    batcher = MicroBatcher(upper, max_wait=0.01)
    await batcher.start()
    try:
        results = await asyncio.gather(
            batcher.submit(["a", "b"]), batcher.submit(["c"]), batcher.submit(["d"], query=True)
        )
    finally:
        await batcher.stop()
    assert results == [["d:A", "d:B"], ["d:C"], ["q:D"]]
    assert batcher.stats.requests == 3 and batcher.stats.batches == 2  # documents together, queries apart


async def test_a_failing_input_fails_only_its_own_request():
    batcher = MicroBatcher(upper, max_wait=0.01)
    await batcher.start()
    try:
        results = await asyncio.gather(
            batcher.submit(["ok"]), batcher.submit(["bad"]), batcher.submit(["fine"]), return_exceptions=True
        )
    finally:
        await batcher.stop()
    assert results[0] == ["d:OK"] and results[2] == ["d:FINE"]
    assert isinstance(results[1], ValueError)


async def test_full_queue_is_refused_and_cancelled_requests_are_skipped():
    release = threading.Event()
    seen: list[str] = []

    def slow(texts: list[str], query: bool) -> list[str]:
        release.wait(10)
        seen.extend(texts)
        return texts

    batcher = MicroBatcher(slow, max_wait=0, max_pending=1, max_batch_texts=1)
    await batcher.start()
    try:
        running = asyncio.create_task(batcher.submit(["first"]))
        await asyncio.sleep(0.05)  # the worker is now blocked inside `slow`
        waiting = asyncio.create_task(batcher.submit(["second"]))
        await asyncio.sleep(0.01)
        with pytest.raises(OverloadedError):
            await batcher.submit(["third"])
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(waiting, 0.01)  # gives up before its turn
        release.set()
        assert await running == ["first"]
        assert await batcher.submit(["fourth"]) == ["fourth"]
    finally:
        release.set()
        await batcher.stop()
    assert seen == ["first", "fourth"]
