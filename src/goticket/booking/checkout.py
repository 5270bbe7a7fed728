"""Checkout use cases: what a payment's outcome does to its hold, and the expiry of holds.

Every change here follows the booking path's discipline: the event's inventory row is locked
first, then the booking is read again and decided, so a payment, the sweeper, a cancellation and
the reservation engine never decide the same spots twice, in any process."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from uuid import UUID

from goticket.booking.domain import (
    Booking,
    BookingStatus,
    SettlementAction,
    payment_failed,
    settle_payment,
)
from goticket.booking.ports import (
    BookingMetrics,
    NoMetrics,
    Refunds,
    Reserver,
    UnitOfWorkFactory,
    log,
    report,
)
from goticket.kit.clock import Clock
from goticket.kit.errors import Unavailable


@dataclass(frozen=True, slots=True)
class PaymentDue:
    """What the payment of a hold is for: who pays, how much."""

    payer: UUID
    amount: int
    currency: str
    provider: str


class CheckoutService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        reserver: Reserver,
        refunds: Refunds,
        clock: Clock,
        *,
        metrics: BookingMetrics | None = None,
        sweep_batch: int = 5000,
    ) -> None:
        self._uow = uow
        self._reserver = reserver
        self._refunds = refunds
        self._clock = clock
        self._metrics: BookingMetrics = metrics or NoMetrics()
        self._sweep_batch = sweep_batch

    async def payment(self, payment_id: UUID) -> PaymentDue | None:
        """The hold a payment id belongs to, as its provider's checkout needs it; None if none."""
        async with self._uow(readonly=True) as uow:
            booking = await uow.bookings.by_payment(payment_id)
        if booking is None or booking.payment_provider is None:
            return None
        return PaymentDue(
            booking.user_id, booking.total_price, booking.currency, booking.payment_provider
        )

    async def payment_succeeded(self, payment_id: UUID, amount: int, currency: str) -> None:
        """Confirm the hold the payment is for (its tickets are issued in the same commit), or,
        when it cannot be confirmed, refund the payment. An unknown payment changes nothing;
        a second notice of the same payment changes nothing."""
        async with self._uow() as uow:
            repo = uow.bookings
            found = await repo.by_payment(payment_id)
            if found is None:
                # Not ours, or its booking went with its event: nothing to apply. Money taken
                # for a booking that no longer exists needs a person (the provider's dashboard).
                log.warning("a payment succeeded for no known booking", payment_id=str(payment_id))
                return
            available = await repo.lock_inventory(found.event_id)
            booking = await repo.by_payment(payment_id)  # again, under the lock
            if available is None or booking is None:
                return  # the event (and with it the booking) was deleted meanwhile
            terms = (await uow.events.terms([booking.event_id])).get(booking.event_id)
            limit = terms.max_per_user if terms is not None else None
            user_active = 0
            if limit is not None and booking.status is BookingStatus.EXPIRED:
                pair = (booking.event_id, booking.user_id)
                user_active = (await repo.active_quantities([pair])).get(pair, 0)
            settlement = settle_payment(
                booking,
                amount=amount,
                currency=currency,
                available=available,
                user_active=user_active,
                max_per_user=limit,
                now=self._clock.now(),
            )
            if settlement.action is SettlementAction.NOTHING:
                return
            if settlement.action is SettlementAction.REFUND:
                # What was paid goes back, whatever the hold's price was.
                await refund(self._refunds, booking, amount, currency)
            await repo.save_status(settlement.booking)
            if settlement.spots_taken:
                await repo.set_available(booking.event_id, available - settlement.spots_taken)
            await uow.commit()
        if settlement.action is SettlementAction.REFUND:
            report(self._metrics.refunded, _refund_reason(booking))
        else:
            report(self._metrics.holds, "converted")
        log.info(
            "payment settled",
            booking_id=str(booking.id),
            action=settlement.action.value,
            status=settlement.booking.status.value,
        )

    async def payment_failed(self, payment_id: UUID) -> None:
        """A failed attempt: the hold stays until it expires, and the buyer may pay again."""
        async with self._uow() as uow:
            repo = uow.bookings
            found = await repo.by_payment(payment_id)
            if found is None or payment_failed(found, self._clock.now()) is None:
                return
            # Under the row lock, like every decision: a success may be landing right now.
            await repo.lock_inventory(found.event_id)
            booking = await repo.by_payment(payment_id)
            failed = payment_failed(booking, self._clock.now()) if booking else None
            if failed is None:
                return
            await repo.save_status(failed)
            await uow.commit()

    # -- expiry ------------------------------------------------------------------------------

    async def expire_due(self) -> int:
        """Expire up to one batch of due holds, in ONE transaction, if no other process is
        sweeping right now; how many expired. Their events' rows are locked in event id order,
        as the booking writer locks them, so a sweep and a batch never wait in a cycle."""
        async with self._uow() as uow:
            repo = uow.bookings
            if not await repo.try_sweeper_lock():
                return 0
            now = self._clock.now()
            due = await repo.due_holds(now, self._sweep_batch)
            if not due:
                return 0
            await repo.lock_inventories(sorted({event_id for event_id, _ in due}))
            returned = await repo.expire([booking_id for _, booking_id in due], now)
            await uow.commit()
        count = sum(holds for holds, _ in returned.values())
        report(self._metrics.holds, "expired", count)
        for event_id in returned:
            self._reserver.released(event_id)
        return count

    async def sweep_every(self, period: float = 1.0) -> None:
        """The sweeper loop of a worker: every ``period`` seconds, expire due holds in batches
        until none is left (one process at a time does it; the others find the lock taken)."""
        while True:
            await self.sweep()
            await asyncio.sleep(period)

    async def sweep(self) -> int:
        """Expire batches of due holds until a batch comes up short; how many expired. Never
        raises: the next period tries again."""
        total = 0
        try:
            # A full batch means more may be due (50,000 holds of one second): go on, letting
            # the worker's requests in between two batches.
            while (count := await self.expire_due()) > 0:
                total += count
                if count < self._sweep_batch:
                    break
                await asyncio.sleep(0)
        except Unavailable as exc:
            # The database is away, or a hot event's row stayed locked past lock_timeout: the
            # next period tries again, but an operator should see holds running late.
            log.warning("the hold sweeper could not finish; it retries", error=str(exc))
        except Exception:  # noqa: BLE001 -- whatever broke, the next period sweeps again
            log.exception("the hold sweeper failed; it retries in a moment")
        return total


async def refund(
    refunds: Refunds, booking: Booking, amount: int | None = None, currency: str | None = None
) -> None:
    """Give a booking's payment back (inside the transaction that decides it): what was paid,
    the booking's price unless told otherwise."""
    if booking.payment_id is None or booking.payment_provider is None:
        return
    await refunds.refund(
        booking.payment_id,
        booking.payment_provider,
        booking.total_price if amount is None else amount,
        booking.currency if currency is None else currency,
    )


def _refund_reason(booking: Booking) -> str:
    """Why a payment went back, from the booking it was for (as it was before the refund)."""
    if booking.is_active:
        return "mismatch"  # the amount or currency did not match the hold
    return "late" if booking.status is BookingStatus.EXPIRED else "cancelled"
