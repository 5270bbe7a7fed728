"""On-sale time (``salesStartAt``): one rule, ``check_on_sale``, decides both the early refusal
(from the process's copy of the event, no database) and the batch under the row lock.

Precedence, as decided here and documented in the README: a replay of an existing key first
(the answer already given), then ended (final: no retry can help), then not started, then the
per-user limit and the stock (a buyer is not told "sold out" before the sale opens)."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta
from uuid import UUID

import msgspec
import pytest

from goticket.booking.direct import DirectReserver
from goticket.booking.domain import (
    Booking,
    BookingTerms,
    BookRequest,
    EventEnded,
    PerUserLimitExceeded,
    SalesNotStarted,
    SoldOut,
    check_on_sale,
    new_booking,
    plan_batch,
)
from goticket.booking.service import BookingService
from goticket.booking.writer import BatchWriter
from goticket.kit.auth import Principal, Role
from goticket.kit.problems import domain_reply
from tests.unit.fakes import NOW, FakeBookingUow, FakeCatalog, FakeClock

EVENT_ID = uuid.UUID("00000000-0000-4000-8000-0000000000e1")
ORGANIZER_ID = uuid.UUID("00000000-0000-4000-8000-0000000000f0")
USER_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
SECOND = timedelta(seconds=1)
TINY = timedelta(microseconds=1)


def terms(
    *, sales_start_at: datetime | None, ended: bool = False, max_per_user: int | None = None
) -> BookingTerms:
    end_at = NOW - SECOND if ended else NOW + timedelta(days=1)
    return BookingTerms(
        EVENT_ID, ORGANIZER_ID, end_at, 2500, "EUR", max_per_user, sales_start_at=sales_start_at
    )


def decide(
    event_terms: BookingTerms,
    *,
    available: int = 10,
    held: int = 0,
    key: str | None = None,
    existing: dict[tuple[UUID, str], Booking] | None = None,
) -> Booking | Exception:
    counter = itertools.count(1)
    plan = plan_batch(
        event_terms,
        [BookRequest(EVENT_ID, USER_ID, 1, key)],
        available=available,
        user_active={USER_ID: held},
        existing=existing or {},
        now=NOW,
        new_id=lambda: uuid.UUID(int=next(counter)),
    )
    return plan.outcomes[0]


# (salesStartAt relative to now or None, ended, available, held with maxPerUser 1) -> outcome
@pytest.mark.parametrize(
    ("start", "ended", "available", "held", "outcome"),
    [
        (None, False, 10, 0, Booking),  # no on-sale time: no restriction (v1)
        (SECOND, False, 10, 0, SalesNotStarted),  # before
        (TINY, False, 10, 0, SalesNotStarted),  # a microsecond before
        (timedelta(0), False, 10, 0, Booking),  # at salesStartAt: on sale
        (-SECOND, False, 10, 0, Booking),  # after
        (SECOND, True, 10, 0, EventEnded),  # ended and never started: ended wins (final)
        (-SECOND, True, 10, 0, EventEnded),  # ended after the sale opened
        (SECOND, False, 0, 0, SalesNotStarted),  # not started wins over sold out
        (-SECOND, False, 0, 0, SoldOut),  # on sale, nothing left
        (SECOND, False, 10, 1, SalesNotStarted),  # not started wins over the per-user limit
        (-SECOND, False, 10, 1, PerUserLimitExceeded),
        (None, True, 0, 0, EventEnded),  # v1 order unchanged: ended before sold out
    ],
)
def test_the_sale_window_rule(
    start: timedelta | None, ended: bool, available: int, held: int, outcome: type
) -> None:
    event_terms = terms(
        sales_start_at=None if start is None else NOW + start, ended=ended, max_per_user=1
    )
    assert isinstance(decide(event_terms, available=available, held=held), outcome)
    # The early check is the same rule (it knows no stock): it refuses what the window refuses.
    if outcome in (SalesNotStarted, EventEnded):
        with pytest.raises(outcome):
            check_on_sale(event_terms, NOW)
    else:
        check_on_sale(event_terms, NOW)


def test_a_replay_comes_before_the_window() -> None:
    """A booking made while on sale, then ``salesStartAt`` moved later: the retry with its key
    gets that booking, not a refusal."""
    request = BookRequest(EVENT_ID, USER_ID, 1, "k")
    made = new_booking(uuid.uuid4(), request, terms(sales_start_at=None), NOW - SECOND)
    later = terms(sales_start_at=NOW + timedelta(hours=1))
    assert decide(later, key="k", existing={(USER_ID, "k"): made}) == made
    assert isinstance(decide(later, key="other"), SalesNotStarted)


def test_the_problem_carries_sales_start_at_in_camel_case() -> None:
    start = NOW.replace(hour=13, minute=0, second=0, microsecond=0) + timedelta(days=1)
    outcome = decide(terms(sales_start_at=start))
    assert isinstance(outcome, SalesNotStarted)
    reply = domain_reply(outcome)
    body = msgspec.json.decode(reply.body)
    assert reply.status == 409
    assert body["type"] == "https://goticket.dev/problems/sales-not-started"
    assert datetime.fromisoformat(body["salesStartAt"]) == start
    assert body["salesStartAt"].endswith(("Z", "+00:00"))
    assert "sales_start_at" not in body


class EarlyCheck:
    """The service with a "database" catalog (read by the transaction) and a process copy (the
    read cache's), which a test may set apart to show which one decides."""

    def __init__(self) -> None:
        self.catalog = FakeCatalog()
        self.uow = FakeBookingUow(self.catalog)
        self.copy: dict[UUID, BookingTerms] = {}
        self.service = BookingService(
            self.uow,
            self.catalog,
            DirectReserver(BatchWriter(self.uow, FakeClock())),
            FakeClock(),
            cached_terms=self.copy.get,
        )
        self.uow.bookings.available[EVENT_ID] = 10
        self.fan = Principal(USER_ID, Role.USER)

    def both(self, event_terms: BookingTerms) -> None:
        self.catalog.terms[EVENT_ID] = self.copy[EVENT_ID] = event_terms


async def test_the_early_check_refuses_without_a_transaction() -> None:
    early = EarlyCheck()
    early.both(terms(sales_start_at=NOW + SECOND))
    with pytest.raises(SalesNotStarted):
        await early.service.book(early.fan, EVENT_ID, 1)
    assert early.uow.log.opened == []  # no unit of work: no database round trip


async def test_a_keyed_request_goes_to_the_transaction_which_refuses_it_too() -> None:
    early = EarlyCheck()
    early.both(terms(sales_start_at=NOW + SECOND))
    with pytest.raises(SalesNotStarted):
        await early.service.book(early.fan, EVENT_ID, 1, "key-1")
    assert early.uow.log.opened == [False]


async def test_a_sale_moved_later_is_refused_under_the_lock_whatever_the_copy_says() -> None:
    early = EarlyCheck()
    early.copy[EVENT_ID] = terms(sales_start_at=None)  # the copy predates the edit
    early.catalog.terms[EVENT_ID] = terms(sales_start_at=NOW + timedelta(hours=1))
    with pytest.raises(SalesNotStarted):
        await early.service.book(early.fan, EVENT_ID, 1)
    assert early.uow.bookings.available[EVENT_ID] == 10


async def test_without_a_copy_the_transaction_decides() -> None:
    early = EarlyCheck()
    early.catalog.terms[EVENT_ID] = terms(sales_start_at=NOW - SECOND)
    booking = await early.service.book(early.fan, EVENT_ID, 1)
    assert (booking.quantity, early.uow.bookings.available[EVENT_ID]) == (1, 9)
