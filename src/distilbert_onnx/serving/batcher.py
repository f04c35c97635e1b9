"""Dynamic batching: rows of many requests merged into model calls on one worker thread.

A request is prepared (checked and tokenized) before it gets here; its rows enter a queue bounded
in rows (`max_queue`). One worker thread per model takes rows first in, first out, up to
`max_batch_tokens` tokens; `plan` groups them by length into model calls (the shortest first), and
each call's outputs go to their requests as soon as it has run, so answered clients come back while
the rest of the batch runs. A request is answered when its last row has run; a request of many rows
may be split over several batches. Each request gets its own outputs, in its own order.

The worker waits at most `max_wait_ms` for a batch to fill, where full means as many rows as its
last batch had (clients that got answers tend to come back) or `max_batch_tokens` tokens: an idle
server with one client runs each request at once, a busy one runs full batches. A request whose
client went away is cancelled: its rows still waiting are dropped, and outputs already on their
way are discarded, without touching the other requests of the batch.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

logger = logging.getLogger("distilbert_onnx.serve")


class QueueFull(Exception):
    """The queue has no room for the request's rows."""


@dataclass
class BatchStats:
    """What one model call held: rows, the tokens of those rows, and the requests they came from."""

    rows: int
    tokens: int
    requests: int


class Ticket:
    """One request's rows on their way through the queue, and the future its outputs arrive on."""

    def __init__(self, rows: Sequence, loop: asyncio.AbstractEventLoop):
        self.rows = list(rows)
        self.lengths = [row.length for row in self.rows]
        self.outputs: list = [None] * len(self.rows)
        self.remaining = len(self.rows)
        self.loop = loop
        self.future: asyncio.Future = loop.create_future()
        self.waiting = 0  # rows still in the queue (changed under the batcher's lock)
        self.cancelled = False
        if not self.rows:
            self.future.set_result([])

    def deliver(self, index: int, output) -> None:
        """A row's outputs (worker thread); the future is resolved when the last one is in."""
        if self.cancelled:
            return
        self.outputs[index] = output
        self.remaining -= 1
        if self.remaining == 0:
            self.loop.call_soon_threadsafe(_resolve, self.future, self.outputs, None)

    def fail(self, error: BaseException) -> None:
        self.loop.call_soon_threadsafe(_resolve, self.future, None, error)


def _resolve(future: asyncio.Future, result, error) -> None:
    if future.done():  # cancelled: the client went away, or an earlier row already failed
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def one_call(lengths: Sequence[int]) -> list[list[int]]:
    """Every row of a batch in one model call."""
    return [list(range(len(lengths)))]


class Batcher:
    """The queue and worker thread of one model. `run_rows(rows)` is one model call and returns each
    row's outputs; `plan(lengths)` groups a batch's rows (by index) into calls."""

    def __init__(
        self,
        run_rows: Callable[[list], list],
        max_batch_tokens: int,
        max_wait_ms: float,
        max_queue: int,
        on_batch: Callable[[BatchStats], None] = lambda stats: None,
        name: str = "model",
        plan: Callable[[Sequence[int]], list[list[int]]] = one_call,
    ):
        self.run_rows = run_rows
        self.plan = plan
        self.max_batch_tokens = max_batch_tokens
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self.on_batch = on_batch
        self._entries: deque[tuple[Ticket, int, float]] = deque()  # (ticket, row index, time queued)
        self._condition = threading.Condition()
        self._rows = 0
        self._tokens = 0
        self._last_batch_rows = 1
        self._closing = False
        self._thread = threading.Thread(target=self._work, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Rows waiting for the model."""
        return self._rows

    def submit(self, ticket: Ticket) -> None:
        """Queue the ticket's rows, or raise QueueFull. A request larger than the whole queue is
        still taken when the queue is empty, so that it can ever run."""
        count = len(ticket.rows)
        if not count:
            return
        now = time.monotonic()
        with self._condition:
            if self._closing:
                raise QueueFull("the server is shutting down")
            if self._rows and self._rows + count > self.max_queue:
                raise QueueFull(f"{self._rows} rows are waiting and this request adds {count} (--max-queue {self.max_queue})")
            self._entries.extend((ticket, index, now) for index in range(count))
            ticket.waiting = count
            self._rows += count
            self._tokens += sum(ticket.lengths)
            self._condition.notify()

    def cancel(self, ticket: Ticket) -> None:
        """Drop the ticket's rows that have not run yet; its future is cancelled."""
        with self._condition:
            if not ticket.cancelled:
                ticket.cancelled = True
                self._rows -= ticket.waiting
                self._tokens -= sum(ticket.lengths[index] for t, index, _ in self._entries if t is ticket)
                ticket.waiting = 0
        ticket.future.cancel()

    def close(self) -> None:
        """Run every row already queued, then stop the worker."""
        with self._condition:
            self._closing = True
            self._condition.notify()
        self._thread.join()

    def _work(self) -> None:
        while (batch := self._take()) is not None:
            for call in self.plan([ticket.lengths[index] for ticket, index in batch]):
                self._run_call([batch[position] for position in call])

    def _run_call(self, entries: list[tuple[Ticket, int]]) -> None:
        rows = [ticket.rows[index] for ticket, index in entries]
        try:
            outputs = self.run_rows(rows)
        except Exception as exc:  # a model failure answers every request of the call with it
            logger.exception("a model call of %d rows failed", len(rows))
            for ticket in {id(ticket): ticket for ticket, _ in entries}.values():
                ticket.fail(exc)
            return
        self.on_batch(BatchStats(len(rows), sum(row.length for row in rows), len({id(ticket) for ticket, _ in entries})))
        for (ticket, index), output in zip(entries, outputs):
            ticket.deliver(index, output)

    def _take(self) -> list[tuple[Ticket, int]] | None:
        """The next batch, once it is full or its oldest row has waited max_wait; None to stop."""
        with self._condition:
            while True:
                self._drop_cancelled()
                if not self._entries:
                    if self._closing:
                        return None
                    self._condition.wait()
                    continue
                wait = self._entries[0][2] + self.max_wait - time.monotonic()
                full = self._rows >= self._last_batch_rows or self._tokens >= self.max_batch_tokens
                if not (full or wait <= 0 or self._closing):
                    self._condition.wait(wait)
                elif batch := self._pop_batch():
                    self._last_batch_rows = len(batch)
                    return batch

    def _pop_batch(self) -> list[tuple[Ticket, int]]:
        """Rows from the front of the queue up to max_batch_tokens tokens (at least one row)."""
        batch, tokens = [], 0
        while self._entries:
            ticket, index, _ = self._entries[0]
            length = ticket.lengths[index]
            if batch and tokens + length > self.max_batch_tokens:
                break
            self._entries.popleft()
            if ticket.cancelled:
                continue
            ticket.waiting -= 1
            self._rows -= 1
            self._tokens -= length
            tokens += length
            batch.append((ticket, index))
        return batch

    def _drop_cancelled(self) -> None:
        while self._entries and self._entries[0][0].cancelled:
            self._entries.popleft()
