"""A small asyncio micro-batcher: concurrent requests share one encoder call.

Requests arrive one by one on the event loop; the batcher waits a few milliseconds after the
first, takes every request queued by then (up to ``max_batch_texts`` texts), and runs them as
one call on a single worker thread, so the model sees full batches and is only ever used by
one thread. A request that fails inside a shared call is retried on its own, so one bad
input fails only its own request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from vbert.errors import ResourceError

EncodeFn = Callable[[list[str], bool], Any]


class OverloadedError(ResourceError):
    """More requests are waiting than the server accepts; try again later."""


@dataclass
class _Job:
    texts: list[str]
    query: bool
    future: asyncio.Future = field(repr=False)


@dataclass
class BatcherStats:
    requests: int = 0
    batches: int = 0
    texts: int = 0
    largest_batch: int = 0


class MicroBatcher:
    """Queue ``submit(texts, query)`` calls and run them in batches through ``encode(texts, query)``.

    ``encode`` returns a list (or array) with one row per text, in order; ``submit`` gives
    back the rows of its own texts.
    """

    def __init__(
        self,
        encode: Callable[[list[str], bool], list],
        *,
        max_batch_texts: int = 64,
        max_wait: float = 0.005,
        max_pending: int = 1024,
    ) -> None:
        if max_batch_texts < 1 or max_pending < 1 or max_wait < 0:
            raise ValueError("max_batch_texts and max_pending must be positive and max_wait not negative")
        self._encode = encode
        self.max_batch_texts = max_batch_texts
        self.max_wait = max_wait
        self.max_pending = max_pending
        self.stats = BatcherStats()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vbert-encoder")
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done()

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run(), name="vbert-micro-batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the encoder thread (for anything else that touches the model)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def submit(self, texts: list[str], query: bool = False) -> list:
        """The encoder's rows for ``texts``; cancelling the wait drops the request if it has not run."""
        if self._queue is None or not self.running:
            raise ResourceError("the encoder is not running")
        if self._queue.qsize() >= self.max_pending:
            raise OverloadedError(f"{self._queue.qsize()} requests are already waiting; retry shortly")
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(list(texts), query, future))
        self.stats.requests += 1
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            jobs = [await self._queue.get()]
            if self.max_wait:
                await asyncio.sleep(self.max_wait)
            size = len(jobs[0].texts)
            while size < self.max_batch_texts and not self._queue.empty():
                job = self._queue.get_nowait()
                jobs.append(job)
                size += len(job.texts)
            for query in (False, True):
                group = [job for job in jobs if job.query is query and not job.future.done()]
                if group:
                    await self._run_group(group, query)

    async def _run_group(self, jobs: list[_Job], query: bool) -> None:
        texts = [text for job in jobs for text in job.texts]
        self.stats.batches += 1
        self.stats.texts += len(texts)
        self.stats.largest_batch = max(self.stats.largest_batch, len(texts))
        try:
            rows = await self.call(self._encode, texts, query)
        except Exception as err:
            if len(jobs) == 1:
                _settle(jobs[0].future, error=err)
                return
            for job in jobs:  # find whose input failed: each request on its own
                if not job.future.done():
                    await self._run_group([job], query)
            return
        start = 0
        for job in jobs:
            _settle(job.future, result=rows[start : start + len(job.texts)])
            start += len(job.texts)


def _settle(future: asyncio.Future, result: Any = None, error: BaseException | None = None) -> None:
    if future.done():  # the client gave up (timeout or disconnect)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
