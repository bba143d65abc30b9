"""One worker that batches rows across requests and runs each batch as one routed forward.

Requests put rows (a text to classify, or a prompt to complete) on a queue and await one future
per row. The worker takes the first waiting row, waits at most `max_wait_ms` for more (up to
`max_batch_size` rows), then, on its single model thread:

1. splits the batch so that no part needs more than `max_resident` distinct adapters;
2. makes each part's adapters resident (`AdapterCache.ensure`); rows of an adapter whose load
   fails get that error, the other rows go on;
3. runs one forward per model instance (classification rows by label count, completion rows
   on the causal LM) with `adapter_names` giving each row its adapter;
4. resolves every row's future with its result or its own error.

Model work stays off the event loop, and the model is only ever used by that one thread;
`call(fn)` runs other model work (loading, deleting adapters) on it, in order.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..methods import BASE_NAME
from .cache import AdapterCache
from .errors import ServeError
from .metrics import Metrics
from .runner import Sampling, ServedBase

log = logging.getLogger("spadapt.serve")


@dataclass
class Row:
    """One unit of work: a text to classify or a prompt to complete."""

    adapter: str | None  # public adapter name; None = the base model (completions only)
    kind: str  # "classify" or "generate"
    text: str  # the text, or the prompt (already chat-templated when `chat`)
    chat: bool = False  # a templated chat prompt: tokenized without extra special tokens
    max_tokens: int = 0  # generate: most new tokens
    sampling: Sampling | None = None  # generate: None = greedy
    sink: Callable[[int], None] | None = field(default=None, repr=False)  # generate: gets
    #                                  each new token id, on the model thread (streaming)
    future: asyncio.Future = field(default=None, repr=False)


class Batcher:
    def __init__(self, base: ServedBase, cache: AdapterCache, metrics: Metrics,
                 max_batch_size: int, max_wait_ms: float, max_queued_rows: int) -> None:
        self.base, self.cache, self.metrics = base, cache, metrics
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queued_rows = max_queued_rows
        self._pending: collections.deque[Row] = collections.deque()
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spadapt-model")
        self._task: asyncio.Task | None = None

    # Lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for row in self._pending:
            if not row.future.done():
                row.future.set_exception(ServeError(503, "shutting_down", "server stopping"))
        self._pending.clear()
        self._executor.shutdown(wait=True)

    @property
    def queued(self) -> int:
        return len(self._pending)

    # Entry points ------------------------------------------------------------------------------
    async def submit(self, rows: list[Row]) -> list[Any]:
        """Queue `rows` and wait for their results (in order); the first row error is raised."""
        if len(self._pending) + len(rows) > self.max_queued_rows:
            raise ServeError(429, "overloaded", f"{len(self._pending)} rows are waiting "
                             f"(limit {self.max_queued_rows}); retry shortly")
        loop = asyncio.get_running_loop()
        for row in rows:
            row.future = loop.create_future()
            self._pending.append(row)
        self._arrived.set()
        try:
            return await asyncio.gather(*(row.future for row in rows))
        finally:  # a failed or abandoned request does not leave others' work behind
            for row in rows:
                if not row.future.done():
                    row.future.cancel()

    async def call(self, fn, *args):
        """Run `fn(*args)` on the model thread, after the work queued there before it."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # The worker --------------------------------------------------------------------------------
    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            deadline = loop.time() + self.max_wait
            while len(self._pending) < self.max_batch_size:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    break
            count = min(self.max_batch_size, len(self._pending))
            rows = [self._pending.popleft() for _ in range(count)]
            rows = [row for row in rows if not row.future.done()]  # abandoned requests
            if not rows:
                continue
            try:
                results = await loop.run_in_executor(self._executor, self._process, rows)
            except Exception as error:  # a bug in _process itself: fail this batch only
                log.exception("batch failed")
                results = [error] * len(rows)
            for row, result in zip(rows, results, strict=True):
                if row.future.done():
                    continue
                if isinstance(result, BaseException):
                    row.future.set_exception(result)
                else:
                    row.future.set_result(result)

    def _parts(self, rows: list[Row]) -> list[list[Row]]:
        """Consecutive runs of rows needing at most `max_resident` distinct adapters each."""
        parts, current, names = [], [], set()
        for row in rows:
            needs = row.adapter is not None and row.adapter not in names
            if needs and len(names) >= self.cache.max_resident:
                parts.append(current)
                current, names = [], set()
            if row.adapter is not None:
                names.add(row.adapter)
            current.append(row)
        return parts + [current] if current else parts

    def _process(self, rows: list[Row]) -> list[Any]:
        """Results (or exceptions) for `rows`, in order. Runs on the model thread."""
        results: dict[int, Any] = {}
        for part in self._parts(rows):
            pinned = {row.adapter for row in part if row.adapter is not None}
            entries, failed = {}, {}
            for name in pinned:
                try:
                    entries[name] = self.cache.ensure(name, pinned)
                except Exception as error:
                    failed[name] = error
            groups: dict[tuple[str, int], list[Row]] = {}
            for row in part:
                if row.adapter in failed:
                    results[id(row)] = failed[row.adapter]
                    continue
                head = entries[row.adapter].head if row.adapter is not None else 0
                groups.setdefault((row.kind, head), []).append(row)
            for (kind, head), group in groups.items():
                routes = [entries[r.adapter].internal if r.adapter is not None else BASE_NAME
                          for r in group]
                for row, output in self._forward(kind, head, group, routes, results):
                    results[id(row)] = output
        return [results[id(row)] for row in rows]

    def _forward(self, kind: str, head: int, group: list[Row], routes: list[str],
                 results: dict) -> list[tuple[Row, Any]]:
        """(row, output or error) after one forward over `group`.

        If the forward fails unexpectedly, each row is retried alone, so that one bad row
        cannot fail the requests it happened to share a batch with.
        """
        try:
            model = self.cache.model(head)
            if kind == "classify":
                outputs = self.base.classify(model, [r.text for r in group], routes)
                done = list(zip(group, outputs, strict=True))
            else:
                done = self._generate(model, group, routes, results)
        except ServeError as error:
            return [(row, error) for row in group]
        except Exception as error:
            if len(group) == 1:
                log.exception("forward failed")
                return [(group[0], error)]
            return [pair for row, route in zip(group, routes, strict=True)
                    for pair in self._forward(kind, head, [row], [route], results)]
        if done:
            self.metrics.observe_batch(len(done), len(set(routes) - {BASE_NAME}))
        return done

    def _generate(self, model, group: list[Row], routes: list[str], results: dict):
        """(row, Generated) for rows whose prompts fit; others get their error in `results`."""
        kept, prompts, kept_routes = [], [], []
        for row, route in zip(group, routes, strict=True):
            try:
                ids = self.base.prompt_ids(row.text, row.chat)
                if len(ids) + row.max_tokens > self.base.max_length:
                    raise ServeError(400, "context_length_exceeded", f"the prompt has "
                                     f"{len(ids)} tokens and max_tokens is {row.max_tokens}; "
                                     f"together they must be <= {self.base.max_length}")
            except ServeError as error:
                results[id(row)] = error
                continue
            kept.append(row)
            prompts.append(ids)
            kept_routes.append(route)
        if not kept:
            return []
        outputs = self.base.generate(model, prompts, kept_routes,
                                     [row.max_tokens for row in kept],
                                     [row.sampling or Sampling() for row in kept],
                                     [row.sink for row in kept])
        return list(zip(kept, outputs, strict=True))
