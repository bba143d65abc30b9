"""Streamed completions: server-sent events in OpenAI's chunk format, ending `data: [DONE]`.

The rows of one request go to the batcher like any others (they still share forwards with
other requests' rows); each row's `sink` gets its new token ids on the model thread, where
`IncrementalText` decodes them (the tokenizer stays on that thread) and hands the new text to
the event loop. A delta is held back while it might be the start of a stop string or ends in
half a character. The stream's last chunk per choice carries the rest of the text the
non-streamed answer has, and its finish reason, so the streamed text equals the answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

from .batcher import Row

DONE = "data: [DONE]\n\n"


def event(data: dict) -> str:
    return f"data: {json.dumps(data)}\n\n"


class IncrementalText:
    """One choice's text as its tokens arrive: what may be sent so far."""

    def __init__(self, tokenizer, stops: list[str], max_tokens: int) -> None:
        self.tokenizer, self.stops, self.max_tokens = tokenizer, stops, max_tokens
        self.ids: list[int] = []
        self.sent = ""
        self.done = False

    def add(self, token: int) -> str:
        """The text that may be sent after `token` (may be empty)."""
        if self.done or len(self.ids) >= self.max_tokens:
            return ""
        if token == self.tokenizer.eos_token_id:
            self.done = True
            return ""
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        cuts = [text.find(s) for s in self.stops if s and s in text]
        if cuts:
            text, self.done = text[: min(cuts)], True
        else:
            text = text.rstrip("\ufffd")  # half a character: wait for the rest
            for stop in self.stops:  # a stop string may be starting: wait
                for size in range(min(len(stop) - 1, len(text)), 0, -1):
                    if text.endswith(stop[:size]):
                        text = text[:-size]
                        break
        if not text.startswith(self.sent) or len(text) <= len(self.sent):
            return ""
        delta, self.sent = text[len(self.sent):], text
        return delta

    def rest(self, final: str) -> str:
        """What the answer `final` has beyond what was sent."""
        return final[len(self.sent):] if final.startswith(self.sent) else ""


async def stream(batcher, rows: list[Row], texts: list[IncrementalText],
                 chunk: Callable[[int, str, str | None], dict],
                 finish: Callable[[object], tuple[str, str]]) -> AsyncIterator[str]:
    """Submit `rows` and return the events of their stream. Waits for the first token or
    the end first, so that an error before any text is raised here (an HTTP error), not
    sent in the stream. `chunk(index, text, finish_reason)` builds one chunk; `finish(output)`
    gives a row's final (text, finish_reason)."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()

    def sink_for(index: int):
        def sink(token: int) -> None:  # on the model thread
            delta = texts[index].add(token)
            if delta:
                loop.call_soon_threadsafe(events.put_nowait, (index, delta))
        return sink

    for index, row in enumerate(rows):
        row.sink = sink_for(index)
    task = asyncio.ensure_future(batcher.submit(rows))
    task.add_done_callback(lambda _: events.put_nowait(None))
    first = await events.get()
    if first is None and task.exception() is not None:
        raise task.exception()
    return _events(first, events, task, texts, chunk, finish)


async def _events(first, events: asyncio.Queue, task: asyncio.Future,
                  texts: list[IncrementalText], chunk, finish) -> AsyncIterator[str]:
    item = first
    try:
        while item is not None:
            index, delta = item
            yield event(chunk(index, delta, None))
            item = await events.get()
        error = task.exception()
        if error is not None:  # after text was sent: the error goes in the stream
            status = getattr(error, "status", 500)
            kind = getattr(error, "type", "internal_error")
            yield event({"error": {"message": str(getattr(error, "message", error)),
                                   "type": kind, "param": None, "code": status}})
            return
        for index, output in enumerate(task.result()):
            text, reason = finish(output)
            yield event(chunk(index, texts[index].rest(text), reason))
        yield DONE
    finally:
        if not task.done():
            task.cancel()
