"""``BatchWriter``: decides batches of booking requests, one transaction per batch."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from uuid import UUID

from goticket.booking.domain import (
    BatchPlan,
    Booking,
    BookingStatus,
    BookingTerms,
    BookRequest,
    EventNotFound,
    Outcome,
    plan_batch,
)
from goticket.booking.ports import BookingMetrics, NoMetrics, UnitOfWorkFactory, report
from goticket.kit.clock import Clock
from goticket.kit.errors import Unavailable


class BatchWriter:
    """ONE transaction for a batch of requests on one or many events: lock the events' inventory
    rows (in event id order, so that two batches never wait on each other in a cycle), read the
    terms and the per-user totals the batch needs, decide every event's requests in arrival
    order, insert all new bookings and set every ``available`` with one statement, commit.

    The row locks serialise every writer of an event (across processes too), which is what makes
    the per-user limit and the idempotency check race-free: the reads happen after they are
    granted. Many events in one transaction share its round trips and its commit: a thousand
    quiet events cost what one hot event costs.
    """

    _ATTEMPTS = 4  # the first one does not read idempotency keys

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        metrics: BookingMetrics | None = None,
        *,
        payment_provider: str = "fake",
    ) -> None:
        self._uow = uow
        self._payment_provider = payment_provider  # the provider a new hold's payment goes to
        self._clock = clock
        self.metrics: BookingMetrics = metrics or NoMetrics()

    async def commit(self, event_id: UUID, requests: Sequence[BookRequest]) -> list[Outcome]:
        return (await self.commit_many({event_id: requests}))[event_id]

    async def commit_many(
        self, groups: Mapping[UUID, Sequence[BookRequest]]
    ) -> dict[UUID, list[Outcome]]:
        outcomes, _ = await self._commit(groups, skip_locked=False)
        return outcomes

    async def commit_free(
        self, groups: Mapping[UUID, Sequence[BookRequest]]
    ) -> tuple[dict[UUID, list[Outcome]], list[UUID]]:
        """Decide the events whose inventory rows are free now (SKIP LOCKED); the others are
        returned undecided, for a transaction of their own that waits for their rows: a hot
        event locked by another process neither holds up nor fails the quiet ones."""
        return await self._commit(groups, skip_locked=True)

    async def _commit(
        self, groups: Mapping[UUID, Sequence[BookRequest]], *, skip_locked: bool
    ) -> tuple[dict[UUID, list[Outcome]], list[UUID]]:
        size = sum(len(requests) for requests in groups.values())
        started = time.perf_counter()
        deferred: list[UUID] = []
        # Rejections and 503s are counted where each answer leaves (``BookingService.book``):
        # an engine's caller may already have had its answer, at its deadline.
        for attempt in range(self._ATTEMPTS):
            outcomes, deferred = await self._attempt(
                groups, read_keys=attempt > 0, skip_locked=skip_locked
            )
            if outcomes is not None:
                break
        else:
            raise Unavailable("idempotency keys kept colliding; retry shortly")
        report(self.metrics.batch, size, time.perf_counter() - started)
        return outcomes, deferred

    async def _attempt(
        self,
        groups: Mapping[UUID, Sequence[BookRequest]],
        *,
        read_keys: bool,
        skip_locked: bool = False,
    ) -> tuple[dict[UUID, list[Outcome]] | None, list[UUID]]:
        """One transaction. Idempotency keys are almost always new, so the first attempt does
        not read them before deciding (one round trip less while holding the locks): a key
        that was taken makes the insert come up short, and the next attempt reads them all.
        A keyed request the plan refuses is never answered unread: it may be the retry of a
        booking that was made, and it must get that booking."""
        async with self._uow() as uow:
            repo = uow.bookings
            stock = await repo.lock_inventories(sorted(groups), skip_locked=skip_locked)
            deferred: list[UUID] = []
            if skip_locked:
                # A row not returned is held elsewhere or does not exist: decided by the second
                # (waiting) transaction either way.
                deferred = [event_id for event_id in groups if event_id not in stock]
                groups = {e: r for e, r in groups.items() if e in stock}
            # The terms (end time, price, limit) are read in this transaction, after the locks:
            # an edit takes the same lock, so none can slip in before the commit.
            terms = await uow.events.terms(list(stock)) if stock else {}
            outcomes: dict[UUID, list[Outcome]] = {}
            live: dict[UUID, BookingTerms] = {}
            for event_id, requests in groups.items():
                if event_id in stock and event_id in terms:
                    live[event_id] = terms[event_id]
                else:
                    outcomes[event_id] = [EventNotFound("no such event") for _ in requests]
            limited = list(
                {
                    (event_id, r.user_id)
                    for event_id, event_terms in live.items()
                    if event_terms.max_per_user is not None
                    for r in groups[event_id]
                }
            )
            held = await repo.active_quantities(limited) if limited else {}
            active: dict[UUID, dict[UUID, int]] = {}
            for (event_id, user_id), quantity in held.items():
                active.setdefault(event_id, {})[user_id] = quantity
            slots = list(
                {
                    (r.user_id, r.idempotency_key)
                    for event_id in live
                    for r in groups[event_id]
                    if r.idempotency_key
                }
            )
            existing = await repo.by_keys(slots) if slots and read_keys else {}
            now = self._clock.now()

            def plan_all() -> dict[UUID, BatchPlan]:
                decided: dict[tuple[UUID, str], Outcome] = {}  # one key, one decision per batch
                return {
                    event_id: plan_batch(
                        event_terms,
                        groups[event_id],
                        available=stock[event_id],
                        user_active=active.get(event_id, {}),
                        existing=existing,
                        now=now,
                        new_id=uuid.uuid4,
                        decided=decided,
                        payment_provider=self._payment_provider,
                    )
                    for event_id, event_terms in live.items()
                }

            plans = plan_all()
            if (
                slots
                and not read_keys
                and any(
                    _refuses_a_keyed_request(groups[event_id], plan.outcomes)
                    for event_id, plan in plans.items()
                )
            ):
                existing = await repo.by_keys(slots)
                plans = plan_all()
            created = [booking for plan in plans.values() for booking in plan.created]
            if created:
                after = {
                    event_id: plan.available for event_id, plan in plans.items() if plan.created
                }
                if await repo.add_many(created, stock=after) < len(created):
                    # A key was just used by the same user on another event whose lock we do
                    # not hold: the unique constraint caught it, and the insert waited for that
                    # transaction to commit. Roll back and decide again: it is visible now.
                    return None, deferred
                await uow.commit()
                # Decided and durable: from here on nothing may turn the outcome into an error
                # (the engine would decide these requests again: a second booking, or 409).
                report(self.metrics.committed, len(created), sum(b.quantity for b in created))
                if holds := sum(1 for b in created if b.status is BookingStatus.PENDING):
                    report(self.metrics.holds, "created", holds)
        for event_id, plan in plans.items():
            outcomes[event_id] = plan.outcomes
        return outcomes, deferred


def _refuses_a_keyed_request(requests: Sequence[BookRequest], outcomes: Sequence[Outcome]) -> bool:
    return any(
        r.idempotency_key is not None and not isinstance(o, Booking)
        for r, o in zip(requests, outcomes, strict=True)
    )
