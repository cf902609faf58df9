"""Dynamic batching: texts from many clients' requests gathered into onnxruntime batches, off the event loop.

>>> batcher = DynamicBatcher(predictor.run_rows, max_batch=32, max_wait=0.005, max_queue=1024, parallel=2)
>>> batcher.start()                                   # inside the running event loop
>>> probs = await batcher.submit(rows)                # one request's encoded rows → probs [len(rows), labels]

A batch closes when ``max_batch`` texts are queued or when the oldest queued text has waited
``max_wait`` seconds (Triton's ``max_queue_delay``). It holds the oldest text and, of the others
queued, those closest to it in length (ties: the oldest first), so a batch is padded little even
when every request mixes short and long texts; the texts of one request may run in different
batches, and the caller gets its probabilities, in its own order, once all have run. Every text
becomes the oldest in turn, so none waits for ever. ``run`` gets a batch's rows on a worker thread
(``OnnxPredictor.run_rows`` sorts them by length). Up to ``parallel`` batches run at once, on as
many threads (onnxruntime sessions are thread-safe); while all are busy, texts queue and the next
batch fills. At most ``max_queue`` texts wait: beyond it :meth:`submit` raises :class:`QueueFull`
at once, with a Retry-After estimate, instead of letting the queue (and memory) grow.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, List, Optional, Sequence, Set, Tuple

import numpy as np

BatchObserver = Callable[[int, int, float], None]
"""Called after each batch with (texts, requests, seconds of inference)."""


class QueueFull(Exception):
    """The queue holds ``max_queue`` texts; the client should retry after ``retry_after`` seconds."""

    def __init__(self, queued: int, max_queue: int, retry_after: int):
        super().__init__(f"the queue is full ({queued} texts waiting, max_queue {max_queue}); retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass
class BatchTiming:
    """Where one request's time went: queued until its first text's batch started, then in batches."""

    queued_at: float = field(default_factory=time.perf_counter)
    started_at: Optional[float] = None
    inference_seconds: float = 0.0

    @property
    def queue_seconds(self) -> float:
        """Seconds from :meth:`DynamicBatcher.submit` to the start of the request's first batch."""
        return (self.started_at or self.queued_at) - self.queued_at


@dataclass
class _Request:
    rows: Sequence[Any]
    future: "asyncio.Future[np.ndarray]"
    arrived: float = field(default_factory=time.monotonic)
    probs: Optional[np.ndarray] = None
    remaining: int = 0
    timing: BatchTiming = field(default_factory=BatchTiming)


@dataclass
class _Text:
    """One queued row: its request, its place there, and its length in tokens."""

    request: _Request
    index: int
    length: int


class DynamicBatcher:
    """Gathers submitted rows into batches for ``run`` (rows → probabilities ``[len(rows), labels]``)."""

    def __init__(self, run: Callable[[List[Any]], np.ndarray], max_batch: int, max_wait: float, max_queue: int,
                 parallel: int = 1, on_batch: Optional[BatchObserver] = None):
        self.run = run
        self.parallel = parallel
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.on_batch = on_batch
        self.queued = 0
        """Texts waiting for a batch (not counting the batch running)."""
        self.cancelled_texts = 0
        """Queued texts dropped because their caller went away."""
        self._texts: Deque[_Text] = deque()
        self._executor = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="fewshot-inference")
        self._wakeup: Optional[asyncio.Event] = None
        self._free: Optional[asyncio.Semaphore] = None
        self._worker: Optional["asyncio.Task[None]"] = None
        self._running: Set["asyncio.Task[None]"] = set()
        self._flushing = False
        self._seconds_per_text = 0.0

    def start(self) -> None:
        """Start gathering batches on the running event loop."""
        self._wakeup = asyncio.Event()
        self._free = asyncio.Semaphore(self.parallel)
        self._worker = asyncio.get_running_loop().create_task(self._gather_forever(), name="fewshot-batcher")

    @property
    def alive(self) -> bool:
        """Whether batches are being gathered (started, and its task has not died)."""
        return self._worker is not None and not self._worker.done()

    def submit(self, rows: Sequence[Any]) -> "asyncio.Future[np.ndarray]":
        """Queue one request's rows; the future resolves to their probabilities. ``QueueFull`` when no room."""
        return self.submit_timed(rows)[0]

    def submit_timed(self, rows: Sequence[Any]) -> Tuple["asyncio.Future[np.ndarray]", BatchTiming]:
        """:meth:`submit`, and the request's :class:`BatchTiming`, filled in as its batches run.
        Cancelling the future (the client went away) takes its texts off the queue at once."""
        if not self.alive:
            raise RuntimeError("the batcher is not running")
        if self.queued + len(rows) > self.max_queue:
            raise QueueFull(self.queued, self.max_queue, self.retry_after())
        future: "asyncio.Future[np.ndarray]" = asyncio.get_running_loop().create_future()
        request = _Request(rows, future, remaining=len(rows))
        self._texts.extend(_Text(request, index, len(row["input_ids"])) for index, row in enumerate(rows))
        self.queued += len(rows)
        future.add_done_callback(lambda done: self._forget(request) if done.cancelled() else None)
        self._wakeup.set()
        return future, request.timing

    def _forget(self, request: _Request) -> None:
        """Drop the queued texts of a cancelled request (those already in a running batch still run)."""
        kept = deque(text for text in self._texts if text.request is not request)
        self.cancelled_texts += len(self._texts) - len(kept)
        self._texts = kept
        self.queued = len(kept)

    def retry_after(self) -> int:
        """Whole seconds until the queued texts are likely done, at the recent speed (at least 1)."""
        return max(1, math.ceil(self.queued * self._seconds_per_text / self.parallel))

    def flush(self) -> None:
        """Stop waiting for batches to fill: run what is queued at once (on shutdown)."""
        self._flushing = True
        if self._wakeup is not None:
            self._wakeup.set()

    async def close(self) -> None:
        """Finish every queued request, then stop the worker thread."""
        self.flush()
        while self._texts or self._running:
            await asyncio.sleep(0.01)
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)

    async def _gather_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._free.acquire()
            while not self._texts:
                self._wakeup.clear()
                await self._wakeup.wait()
            deadline = self._texts[0].request.arrived + self.max_wait
            while self.queued < self.max_batch and not self._flushing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            batch = self._take()
            if not batch:
                self._free.release()
                continue
            task = loop.create_task(self._run(loop, batch))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: "asyncio.Task[None]") -> None:
        self._running.discard(task)
        self._free.release()

    def _take(self) -> List[_Text]:
        """The oldest queued text and the ``max_batch - 1`` others closest to it in length; texts whose
        caller went away are dropped."""
        live = [text for text in self._texts if not text.request.future.done()]
        if len(live) > self.max_batch:
            target = live[0].length
            nearest = sorted(range(len(live)), key=lambda i: (abs(live[i].length - target), i))[: self.max_batch]
            chosen = set(nearest)
            batch = [live[i] for i in sorted(chosen)]
            live = [text for i, text in enumerate(live) if i not in chosen]
        else:
            batch, live = live, []
        self._texts = deque(live)
        self.queued = len(live)
        return batch

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: List[_Text]) -> None:
        rows = [text.request.rows[text.index] for text in batch]
        start = time.perf_counter()
        requests = {id(text.request): text.request for text in batch}.values()
        for request in requests:
            if request.timing.started_at is None:
                request.timing.started_at = start
        try:
            probs = await loop.run_in_executor(self._executor, self.run, rows)
        except Exception as exc:  # the model failed: every caller in this batch gets the error, the server goes on
            for text in batch:
                if not text.request.future.done():
                    text.request.future.set_exception(exc)
            return
        seconds = time.perf_counter() - start
        self._seconds_per_text = seconds / len(rows)
        for request in requests:
            request.timing.inference_seconds += seconds
        for text, row in zip(batch, probs):
            request = text.request
            if request.future.done():
                continue
            if request.probs is None:
                request.probs = np.empty((len(request.rows), probs.shape[1]), dtype=probs.dtype)
            request.probs[text.index] = row
            request.remaining -= 1
            if request.remaining == 0:
                request.future.set_result(request.probs)
        if self.on_batch is not None:
            self.on_batch(len(rows), len(requests), seconds)
