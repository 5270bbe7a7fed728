"""The reservation engine: group commit per hot event, and across quiet ones.

Every event being booked has a lane: a queue of waiting requests. A drain task takes every
request that arrived while the previous transaction was committing and runs ONE transaction for
all of them (``BatchWriter``). There is no timer: with light traffic a batch is a single request
and pays no extra latency; under a stampede the batch grows by itself, so the inventory row sees
a few transactions per commit cycle instead of one per buyer.

A drain takes the waiting requests of every lane that no other drain is working on, so a
thousand events with a request each share one transaction too. A lane belongs to one drain at
a time (its requests stay in arrival order); a lane held up by a slow transaction does not hold
up the others: a request for an idle lane starts another drain (at most ``max_drains``).

Across processes nothing changes: each process batches its own arrivals and the inventory row
locks arbitrate between them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from goticket.booking.domain import (
    Booking,
    BookingFailed,
    BookRequest,
    DeadlinePassed,
    Outcome,
    Overloaded,
    SoldOut,
)
from goticket.booking.ports import BatchCommitter, BookingMetrics, NoMetrics, report
from goticket.kit.errors import DomainError, Unavailable
from goticket.kit.logging import get_logger

log = get_logger("goticket.engine")


@dataclass(slots=True, eq=False)
class _Ticket:
    request: BookRequest
    future: asyncio.Future[Booking]
    abandoned: bool = False


@dataclass(slots=True, eq=False)
class _Lane:
    pending: deque[_Ticket] = field(default_factory=deque)
    busy: bool = False  # a drain's transaction holds this lane's requests
    sold_out_until: float = 0.0
    releases: int = 0  # how many times spots came back: a batch decided before one is stale


class ReservationEngine:
    def __init__(
        self,
        writer: BatchCommitter,
        *,
        queue_limit: int = 10_000,
        max_batch: int = 1_000,
        deadline: float = 5.0,
        sold_out_ttl: float = 1.0,
        metrics: BookingMetrics | None = None,
        max_drains: int = 4,
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
        self._max_drains = max_drains
        self._drains: set[asyncio.Task[None]] = set()
        self._drain_starting = False  # a drain was created and has not taken its batch yet
        self._queued = 0

    async def reserve(self, request: BookRequest) -> Booking:
        lane = self._lanes.get(request.event_id)
        if lane is None:
            lane = self._lanes[request.event_id] = _Lane()
        if request.idempotency_key is None and lane.sold_out_until > self._monotonic():
            # Known sold out: refused from memory. A keyed request still goes to the database:
            # it may be the retry of a booking that is committing elsewhere right now, and it
            # must get that booking, not "sold out".
            report(self._metrics.refused_from_memory)
            raise SoldOut("sold out", available=0)
        if len(lane.pending) >= self._queue_limit:
            raise Overloaded("too many requests are waiting for this event; retry shortly")
        loop = asyncio.get_running_loop()
        ticket = _Ticket(request, loop.create_future())
        lane.pending.append(ticket)
        self._queued += 1
        if not lane.busy and not self._drain_starting and len(self._drains) < self._max_drains:
            self._drain_starting = True
            drain = asyncio.create_task(self._drain())
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        # One timer per request (cheaper than wait_for + shield on the hot path). A batch
        # only answers tickets that are not done yet, so whichever comes first wins.
        timer = loop.call_later(self._deadline, self._expire, ticket)
        try:
            return await ticket.future
        except asyncio.CancelledError:
            # The caller is gone (its task was cancelled, which cancelled the future too): like
            # an expired ticket, a queued one is skipped; one in a transaction may still commit.
            ticket.abandoned = True
            raise
        finally:
            timer.cancel()

    def _expire(self, ticket: _Ticket) -> None:
        if ticket.future.done():
            return
        # Still queued: it will be skipped. Already in a transaction: it may commit, and a
        # retry with the Idempotency-Key then returns it; either way the answer is 503.
        ticket.abandoned = True
        ticket.future.set_exception(
            DeadlinePassed(
                "the booking could not be confirmed in time; retry with the same Idempotency-Key"
            )
        )

    async def close(self, grace: float = 5.0) -> None:
        """Let the batches in flight finish (bounded), so that shutdown strands nobody."""
        if self._drains:
            await asyncio.wait(set(self._drains), timeout=grace)

    def queued(self) -> int:
        """Requests waiting for a transaction, all events together."""
        return self._queued

    def released(self, event_id: UUID) -> None:
        lane = self._lanes.get(event_id)
        if lane is not None:
            lane.sold_out_until = 0.0
            lane.releases += 1

    def _take(self) -> dict[UUID, list[_Ticket]]:
        """The waiting requests of every lane no other drain holds, oldest lanes first, up to
        ``max_batch`` requests; their lanes are now this drain's."""
        batch: dict[UUID, list[_Ticket]] = {}
        room = self._max_batch
        now = self._monotonic()
        idle: list[UUID] = []
        for event_id, lane in self._lanes.items():
            if room == 0:
                break
            if not lane.busy and not lane.pending and lane.sold_out_until <= now:
                idle.append(event_id)
                continue
            if lane.busy or not lane.pending:
                continue
            tickets: list[_Ticket] = []
            while lane.pending and room:
                ticket = lane.pending.popleft()
                self._queued -= 1
                if not ticket.abandoned:
                    tickets.append(ticket)
                    room -= 1
            if tickets:
                lane.busy = True
                batch[event_id] = tickets
            elif not lane.pending and lane.sold_out_until <= now:
                idle.append(event_id)  # every ticket had expired
        for event_id in idle:
            del self._lanes[event_id]
        for event_id in batch:
            # To the back of the line: the next take starts with the lanes that waited.
            self._lanes[event_id] = self._lanes.pop(event_id)
        return batch

    async def _drain(self) -> None:
        self._drain_starting = False
        try:
            while batch := self._take():
                try:
                    await self._run(batch)
                except Exception:
                    log.exception("a drain's batch failed; the drain goes on")
                finally:
                    now = self._monotonic()
                    for event_id in batch:
                        lane = self._lanes[event_id]
                        lane.busy = False
                        if not lane.pending and lane.sold_out_until <= now:
                            del self._lanes[event_id]
        finally:
            # In the same step as the empty take: a request arriving from now on sees one
            # drain less and starts its own (the done callback would come an iteration late).
            self._drains.discard(asyncio.current_task())

    async def _run(self, batch: dict[UUID, list[_Ticket]]) -> None:
        try:
            await self._decide(batch)
        finally:
            # Whatever went wrong above, no caller of this batch is left waiting.
            for tickets in batch.values():
                for ticket in tickets:
                    if not ticket.future.done():
                        self._fail(ticket, BookingFailed("the booking failed; retry shortly"))
                        if ticket.abandoned:
                            ticket.future.exception()  # nobody awaits it: mark it retrieved

    async def _decide(self, batch: dict[UUID, list[_Ticket]]) -> None:
        releases = {event_id: self._lanes[event_id].releases for event_id in batch}
        pending = batch
        free_only = len(batch) > 1  # first the events whose rows are free, then the others
        while pending:
            groups = {
                event_id: [t.request for t in tickets] for event_id, tickets in pending.items()
            }
            deferred: list[UUID] = []
            try:
                if free_only:
                    outcomes, deferred = await self._writer.commit_free(groups)
                else:
                    outcomes = await self._writer.commit_many(groups)
            except Unavailable as error:
                outcomes = {
                    event_id: [Unavailable(error.detail, retry_after=error.retry_after) for _ in ts]
                    for event_id, ts in pending.items()
                }
            except Exception:
                log.exception(
                    "batch failed; deciding it event by event, request by request",
                    events=len(pending),
                    size=sum(len(tickets) for tickets in pending.values()),
                )
                outcomes = {
                    event_id: await self._event_alone(event_id, tickets, split=len(pending) > 1)
                    for event_id, tickets in pending.items()
                }
            self._answer({e: pending[e] for e in outcomes}, outcomes, releases)
            pending = {event_id: pending[event_id] for event_id in deferred}
            free_only = False

    def _answer(
        self,
        batch: dict[UUID, list[_Ticket]],
        outcomes: dict[UUID, list[Outcome]],
        releases: dict[UUID, int],
    ) -> None:
        for event_id, tickets in batch.items():
            sold_out = False
            for ticket, outcome in zip(tickets, outcomes[event_id], strict=True):
                if isinstance(outcome, SoldOut) and outcome.extra.get("available") == 0:
                    sold_out = True
                if ticket.abandoned or ticket.future.done():
                    continue
                if isinstance(outcome, Booking):
                    ticket.future.set_result(outcome)
                else:
                    self._fail(ticket, outcome)
            lane = self._lanes[event_id]
            if sold_out and lane.releases == releases[event_id]:
                lane.sold_out_until = self._monotonic() + self._sold_out_ttl

    def _fail(self, ticket: _Ticket, error: DomainError) -> None:
        # Counted by the caller (``BookingService.book``), once per answer: a ticket answered
        # at its deadline is skipped above and never counted twice.
        ticket.future.set_exception(error)

    async def _event_alone(
        self, event_id: UUID, tickets: list[_Ticket], *, split: bool
    ) -> list[Outcome]:
        """A poisoned event fails alone, not the events batched with it; within it, a
        poisoned request fails alone, not its neighbours."""
        if split:
            try:
                return await self._writer.commit(event_id, [t.request for t in tickets])
            except Unavailable as error:
                return [Unavailable(error.detail, retry_after=error.retry_after) for _ in tickets]
            except Exception:
                log.exception("an event's batch failed on its own", event_id=str(event_id))
        return [await self._alone(event_id, ticket) for ticket in tickets]

    async def _alone(self, event_id: UUID, ticket: _Ticket) -> Outcome:
        """A poisoned request fails alone, not its batch."""
        try:
            (outcome,) = await self._writer.commit(event_id, [ticket.request])
        except DomainError as error:
            return error
        except Exception:
            log.exception("a booking request failed on its own", event_id=str(event_id))
            return BookingFailed("the booking failed; retry shortly")
        return outcome
