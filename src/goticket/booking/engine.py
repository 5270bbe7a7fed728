"""The reservation engine: group commit per hot event.

Every event being booked has a lane: a queue of waiting requests and at most one task draining
it. The task takes every request that arrived while the previous transaction was committing and
runs ONE transaction for all of them (``BatchWriter``). There is no timer: with light traffic a
batch is a single request and pays no extra latency; under a stampede the batch grows by itself,
so the inventory row sees a few transactions per commit cycle instead of one per buyer.

Across processes nothing changes: each process batches its own arrivals and the inventory row
lock arbitrates between them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from goticket.booking.domain import Booking, BookRequest, Outcome, SoldOut
from goticket.booking.service import BatchWriter, BookingMetrics, NoMetrics
from goticket.kit.errors import DomainError, Unavailable
from goticket.kit.logging import get_logger

log = get_logger("goticket.engine")


class Overloaded(Unavailable):
    code = "overloaded"
    title = "Overloaded"


@dataclass(slots=True, eq=False)
class _Ticket:
    request: BookRequest
    future: asyncio.Future[Booking]
    abandoned: bool = False


@dataclass(slots=True, eq=False)
class _Lane:
    pending: deque[_Ticket] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None
    sold_out_until: float = 0.0
    releases: int = 0  # how many times spots came back: a batch decided before one is stale


class ReservationEngine:
    def __init__(
        self,
        writer: BatchWriter,
        *,
        queue_limit: int = 10_000,
        max_batch: int = 1_000,
        deadline: float = 5.0,
        sold_out_ttl: float = 1.0,
        metrics: BookingMetrics | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._writer = writer
        self._metrics: BookingMetrics = metrics or NoMetrics()
        self._queue_limit = queue_limit
        self._max_batch = max_batch
        self._deadline = deadline
        self._sold_out_ttl = sold_out_ttl
        self._monotonic = monotonic
        self._lanes: dict[UUID, _Lane] = {}

    async def reserve(self, request: BookRequest) -> Booking:
        lane = self._lanes.get(request.event_id)
        if lane is None:
            lane = self._lanes[request.event_id] = _Lane()
        if request.idempotency_key is None and lane.sold_out_until > self._monotonic():
            # Known sold out: refused from memory. A keyed request still goes to the database:
            # it may be the retry of a booking that is committing elsewhere right now, and it
            # must get that booking, not "sold out".
            self._metrics.refused_from_memory()
            raise SoldOut("sold out", available=0)
        if len(lane.pending) >= self._queue_limit:
            self._metrics.shedding("queue-full")
            raise Overloaded("too many requests are waiting for this event; retry shortly")
        loop = asyncio.get_running_loop()
        ticket = _Ticket(request, loop.create_future())
        lane.pending.append(ticket)
        if lane.task is None:
            lane.task = asyncio.create_task(self._drain(request.event_id, lane))
        # One timer per request (cheaper than wait_for + shield on the hot path). A batch
        # only answers tickets that are not done yet, so whichever comes first wins.
        timer = loop.call_later(self._deadline, self._expire, ticket)
        try:
            return await ticket.future
        finally:
            timer.cancel()

    def _expire(self, ticket: _Ticket) -> None:
        if ticket.future.done():
            return
        # Still queued: it will be skipped. Already in a transaction: it may commit, and a
        # retry with the Idempotency-Key then returns it; either way the answer is 503.
        ticket.abandoned = True
        self._metrics.shedding("deadline")
        ticket.future.set_exception(
            Unavailable(
                "the booking could not be confirmed in time; retry with the same Idempotency-Key"
            )
        )

    async def close(self, grace: float = 5.0) -> None:
        """Let the batches in flight finish (bounded), so that shutdown strands nobody."""
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)

    def queued(self) -> int:
        """Requests waiting for a transaction, all events together."""
        return sum(len(lane.pending) for lane in self._lanes.values())

    def released(self, event_id: UUID) -> None:
        lane = self._lanes.get(event_id)
        if lane is not None:
            lane.sold_out_until = 0.0
            lane.releases += 1

    async def _drain(self, event_id: UUID, lane: _Lane) -> None:
        try:
            while lane.pending:
                batch: list[_Ticket] = []
                while lane.pending and len(batch) < self._max_batch:
                    ticket = lane.pending.popleft()
                    if not ticket.abandoned:
                        batch.append(ticket)
                if batch:
                    await self._run(event_id, lane, batch)
        finally:
            lane.task = None
            if not lane.pending and lane.sold_out_until <= self._monotonic():
                self._lanes.pop(event_id, None)

    async def _run(self, event_id: UUID, lane: _Lane, batch: list[_Ticket]) -> None:
        try:
            await self._decide(event_id, lane, batch)
        finally:
            # Whatever went wrong above, no caller of this batch is left waiting.
            for ticket in batch:
                if not ticket.future.done():
                    ticket.future.set_exception(Unavailable("the booking failed; retry shortly"))
                    if ticket.abandoned:
                        ticket.future.exception()  # nobody awaits it: mark it retrieved

    async def _decide(self, event_id: UUID, lane: _Lane, batch: list[_Ticket]) -> None:
        requests = [ticket.request for ticket in batch]
        releases = lane.releases
        try:
            outcomes = await self._writer.commit(event_id, requests)
        except Unavailable as error:
            # The transaction failed or its outcome is unknown: every request of this batch,
            # and only of this batch, is told to retry with its key.
            outcomes = [Unavailable(error.detail, retry_after=error.retry_after) for _ in batch]
        except Exception:
            log.exception("batch failed; deciding its requests one by one", size=len(batch))
            outcomes = [await self._alone(event_id, ticket) for ticket in batch]
        sold_out = False
        for ticket, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, SoldOut) and outcome.extra.get("available") == 0:
                sold_out = True
            if ticket.abandoned or ticket.future.done():
                continue
            if isinstance(outcome, Booking):
                ticket.future.set_result(outcome)
            else:
                ticket.future.set_exception(outcome)
        if sold_out and lane.releases == releases:
            # Unless spots came back (a cancellation) while the batch was out: then its
            # "sold out" is already stale and must not hide them.
            lane.sold_out_until = self._monotonic() + self._sold_out_ttl

    async def _alone(self, event_id: UUID, ticket: _Ticket) -> Outcome:
        """A poisoned request fails alone, not its batch."""
        try:
            (outcome,) = await self._writer.commit(event_id, [ticket.request])
        except DomainError as error:
            return error
        except Exception:
            log.exception("a booking request failed on its own", event_id=str(event_id))
            return Unavailable("the booking failed; retry shortly")
        return outcome
