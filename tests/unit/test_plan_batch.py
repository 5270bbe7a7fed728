"""``plan_batch``: a batch decided in arrival order, exactly as if each request had run alone.

Each row of a table is a batch on one event: the stock before it, what users already hold, the
bookings that already carry idempotency keys, the requests in arrival order, the outcome of each
and the stock after it. Outcomes are written compactly:

- ``"new"``: a new confirmed booking for that request;
- ``"sold-out N"``: ``SoldOut`` telling that ``N`` spots were left when it was decided;
- ``"limit"``, ``"ended"``, ``"reused"``: ``PerUserLimitExceeded``, ``EventEnded``,
  ``IdempotencyKeyReused``;
- ``"replay K"``: the existing booking made earlier with key ``K``;
- ``"as I"``: the very same outcome (booking or error) as request number ``I`` of the batch.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from goticket.booking.domain import (
    BatchPlan,
    Booking,
    BookingStatus,
    BookingTerms,
    BookRequest,
    EventEnded,
    IdempotencyKeyReused,
    PerUserLimitExceeded,
    SoldOut,
    new_booking,
    plan_batch,
)
from goticket.kit.errors import DomainError

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
EVENT_ID = uuid.UUID("00000000-0000-4000-8000-0000000000e1")
OTHER_EVENT_ID = uuid.UUID("00000000-0000-4000-8000-0000000000e2")
ORGANIZER_ID = uuid.UUID("00000000-0000-4000-8000-0000000000f0")
USERS = {name: uuid.UUID(f"00000000-0000-4000-8000-00000000000{i}") for i, name in enumerate("abc")}

# A request: (user, quantity) or (user, quantity, idempotency key).
Req = tuple[str, int] | tuple[str, int, str]
# An existing keyed booking: key -> (user, quantity) on this event, or (user, quantity, event).
Existing = dict[str, tuple[str, int] | tuple[str, int, UUID]]


@dataclass(frozen=True)
class Case:
    requests: list[Req]
    outcomes: list[str]
    available_after: int
    available: int = 10
    max_per_user: int | None = None
    held: dict[str, int] = field(default_factory=dict)  # confirmed spots before the batch
    existing: Existing = field(default_factory=dict)
    ended: bool = False


def terms(max_per_user: int | None, *, ended: bool = False) -> BookingTerms:
    end_at = NOW - timedelta(seconds=1) if ended else NOW + timedelta(days=1)
    return BookingTerms(EVENT_ID, ORGANIZER_ID, end_at, 2500, "EUR", max_per_user)


def request(spec: Req) -> BookRequest:
    user, quantity, *key = spec
    return BookRequest(EVENT_ID, USERS[user], quantity, key[0] if key else None)


def existing_bookings(existing: Existing) -> dict[tuple[UUID, str], Booking]:
    bookings: dict[tuple[UUID, str], Booking] = {}
    for key, (user, quantity, *event) in existing.items():
        made = BookRequest(event[0] if event else EVENT_ID, USERS[user], quantity, key)
        booking = new_booking(uuid.uuid4(), made, terms(None), NOW - timedelta(hours=1))
        bookings[(USERS[user], key)] = booking
    return bookings


def sequential_ids() -> Callable[[], UUID]:
    counter = itertools.count(1)
    return lambda: uuid.UUID(int=next(counter))


def plan(case: Case) -> tuple[BatchPlan, list[BookRequest], dict[tuple[UUID, str], Booking]]:
    requests = [request(spec) for spec in case.requests]
    existing = existing_bookings(case.existing)
    result = plan_batch(
        terms(case.max_per_user, ended=case.ended),
        requests,
        available=case.available,
        user_active={USERS[user]: spots for user, spots in case.held.items()},
        existing=existing,
        now=NOW,
        new_id=sequential_ids(),
    )
    return result, requests, existing


def check_outcomes(
    result: BatchPlan,
    requests: Sequence[BookRequest],
    existing: dict[tuple[UUID, str], Booking],
    expected: Sequence[str],
) -> None:
    assert len(result.outcomes) == len(requests) == len(expected)
    for number, (outcome, req, want) in enumerate(
        zip(result.outcomes, requests, expected, strict=True)
    ):
        where = f"request {number}: expected {want!r}, got {outcome!r}"
        kind, _, arg = want.partition(" ")
        if kind == "new":
            assert isinstance(outcome, Booking), where
            assert outcome in result.created, where
            assert (outcome.user_id, outcome.quantity, outcome.idempotency_key) == (
                req.user_id,
                req.quantity,
                req.idempotency_key,
            ), where
            assert outcome.event_id == EVENT_ID, where
            assert outcome.status is BookingStatus.CONFIRMED, where
            assert outcome.total_price == 2500 * req.quantity, where
            assert outcome.request_hash == req.request_hash, where
            assert outcome.created_at == outcome.updated_at == NOW, where
        elif kind == "sold-out":
            assert isinstance(outcome, SoldOut), where
            assert outcome.extra == {"available": int(arg)}, where
        elif kind == "limit":
            assert isinstance(outcome, PerUserLimitExceeded), where
        elif kind == "ended":
            assert isinstance(outcome, EventEnded), where
        elif kind == "reused":
            assert isinstance(outcome, IdempotencyKeyReused), where
        elif kind == "replay":
            assert outcome is existing[(req.user_id, arg)], where
            assert outcome not in result.created, where
        elif kind == "as":
            assert outcome is result.outcomes[int(arg)], where
        else:
            raise AssertionError(f"unknown outcome {want!r} in the table")


CASES: dict[str, Case] = {
    # ---------------------------------------------------------------- arrival order and stock
    "all fit": Case(
        requests=[("a", 2), ("b", 3), ("c", 1)],
        outcomes=["new", "new", "new"],
        available_after=4,
    ),
    "arrival order gets the last spots": Case(
        available=2,
        requests=[("a", 1), ("b", 1), ("c", 1)],
        outcomes=["new", "new", "sold-out 0"],
        available_after=0,
    ),
    "the first to arrive wins the last spot, whoever asks after": Case(
        available=1,
        requests=[("c", 1), ("a", 1), ("b", 1)],
        outcomes=["new", "sold-out 0", "sold-out 0"],
        available_after=0,
    ),
    "exactly the stock": Case(
        available=5,
        requests=[("a", 2), ("b", 3)],
        outcomes=["new", "new"],
        available_after=0,
    ),
    "too big for what is left, a smaller one after still fits": Case(
        available=5,
        requests=[("a", 3), ("b", 3), ("c", 2)],
        outcomes=["new", "sold-out 2", "new"],
        available_after=0,
    ),
    "sold-out tells what is left at that point of the batch": Case(
        available=7,
        requests=[("a", 4), ("b", 4), ("c", 2), ("a", 2), ("b", 1)],
        outcomes=["new", "sold-out 3", "new", "sold-out 1", "new"],
        available_after=0,
    ),
    "more than the whole stock in one request": Case(
        available=3,
        requests=[("a", 4), ("b", 3)],
        outcomes=["sold-out 3", "new"],
        available_after=0,
    ),
    "nothing left at all": Case(
        available=0,
        requests=[("a", 1), ("b", 2)],
        outcomes=["sold-out 0", "sold-out 0"],
        available_after=0,
    ),
    "an empty batch changes nothing": Case(
        available=4,
        requests=[],
        outcomes=[],
        available_after=4,
    ),
    # ------------------------------------------------------------------- the per-user limit
    "limit counts earlier requests of the same batch": Case(
        max_per_user=4,
        requests=[("a", 2), ("a", 2), ("a", 1)],
        outcomes=["new", "new", "limit"],
        available_after=6,
    ),
    "limit counts what the user already held": Case(
        max_per_user=4,
        held={"a": 3},
        requests=[("a", 2), ("a", 1), ("a", 1)],
        outcomes=["limit", "new", "limit"],
        available_after=9,
    ),
    "limit is per user, several users in one batch": Case(
        max_per_user=3,
        held={"b": 2},
        requests=[("a", 2), ("b", 1), ("a", 2), ("c", 3), ("b", 1), ("a", 1), ("c", 1)],
        outcomes=["new", "new", "limit", "new", "limit", "new", "limit"],
        available_after=3,
    ),
    "a refused request does not count toward the limit": Case(
        max_per_user=4,
        available=3,
        requests=[("a", 4), ("a", 3), ("a", 1)],
        outcomes=["sold-out 3", "new", "sold-out 0"],
        available_after=0,
    ),
    "over the limit and sold out: the limit is reported": Case(
        max_per_user=2,
        available=2,
        requests=[("a", 2), ("a", 1), ("b", 1)],
        outcomes=["new", "limit", "sold-out 0"],
        available_after=0,
    ),
    "other users' spots do not count toward one's limit": Case(
        max_per_user=2,
        held={"b": 2, "c": 2},
        requests=[("a", 2), ("b", 1)],
        outcomes=["new", "limit"],
        available_after=8,
    ),
    # ------------------------------------------------------------ replays of existing keys
    "a replay returns its booking and takes no stock": Case(
        available=1,
        existing={"k1": ("a", 3)},
        requests=[("a", 3, "k1"), ("b", 1)],
        outcomes=["replay k1", "new"],
        available_after=0,
    ),
    "a replay is returned even when sold out": Case(
        available=0,
        existing={"k1": ("a", 2)},
        requests=[("b", 1), ("a", 2, "k1")],
        outcomes=["sold-out 0", "replay k1"],
        available_after=0,
    ),
    "a replay is returned even over the limit": Case(
        max_per_user=2,
        held={"a": 2},
        existing={"k1": ("a", 2)},
        requests=[("a", 2, "k1"), ("a", 1)],
        outcomes=["replay k1", "limit"],
        available_after=10,
    ),
    "a key reused for another quantity is refused and takes no stock": Case(
        available=2,
        existing={"k1": ("a", 2)},
        requests=[("a", 1, "k1"), ("b", 2)],
        outcomes=["reused", "new"],
        available_after=0,
    ),
    "a key reused for another event is refused": Case(
        existing={"k1": ("a", 1, OTHER_EVENT_ID)},
        requests=[("a", 1, "k1")],
        outcomes=["reused"],
        available_after=10,
    ),
    "the same key of another user is another booking": Case(
        existing={"k1": ("a", 2)},
        requests=[("b", 2, "k1"), ("a", 2, "k1")],
        outcomes=["new", "replay k1"],
        available_after=8,
    ),
    "new keys and replays mixed": Case(
        available=3,
        existing={"k1": ("a", 2), "k2": ("b", 1)},
        requests=[("c", 2, "k3"), ("a", 2, "k1"), ("b", 1, "k2"), ("a", 2, "k4"), ("b", 1)],
        outcomes=["new", "replay k1", "replay k2", "sold-out 1", "new"],
        available_after=0,
    ),
    # ----------------------------------------------------- the same key twice in one batch
    "the same key twice: the second gets the first one's booking": Case(
        requests=[("a", 2, "k1"), ("b", 1), ("a", 2, "k1")],
        outcomes=["new", "new", "as 0"],
        available_after=7,
    ),
    "the same key three times takes the stock once": Case(
        available=2,
        requests=[("a", 2, "k1"), ("a", 2, "k1"), ("a", 2, "k1"), ("b", 1)],
        outcomes=["new", "as 0", "as 0", "sold-out 0"],
        available_after=0,
    ),
    "the same key twice with another quantity: the second is refused": Case(
        requests=[("a", 2, "k1"), ("a", 3, "k1")],
        outcomes=["new", "reused"],
        available_after=8,
    ),
    "the same key twice after a sold-out: the second gets the same error": Case(
        available=1,
        requests=[("a", 2, "k1"), ("b", 1), ("a", 2, "k1")],
        outcomes=["sold-out 1", "new", "as 0"],
        available_after=0,
    ),
    "the same key twice over the limit: the second gets the same error": Case(
        max_per_user=2,
        held={"a": 2},
        requests=[("a", 1, "k1"), ("a", 1, "k1")],
        outcomes=["limit", "as 0"],
        available_after=10,
    ),
    "the same existing key twice: both replay": Case(
        existing={"k1": ("a", 1)},
        requests=[("a", 1, "k1"), ("a", 1, "k1")],
        outcomes=["replay k1", "replay k1"],
        available_after=10,
    ),
    "the same key of two users in one batch: two bookings": Case(
        requests=[("a", 1, "k1"), ("b", 1, "k1")],
        outcomes=["new", "new"],
        available_after=8,
    ),
    # ------------------------------------------------------------------------ event ended
    "ended: every new request is refused": Case(
        ended=True,
        requests=[("a", 1), ("b", 2, "k9"), ("c", 1)],
        outcomes=["ended", "ended", "ended"],
        available_after=10,
    ),
    "ended: replays still replay": Case(
        ended=True,
        existing={"k1": ("a", 2)},
        requests=[("b", 1), ("a", 2, "k1"), ("a", 1, "k2")],
        outcomes=["ended", "replay k1", "ended"],
        available_after=10,
    ),
    "ended: a reused key is still refused as reused": Case(
        ended=True,
        existing={"k1": ("a", 2)},
        requests=[("a", 3, "k1")],
        outcomes=["reused"],
        available_after=10,
    ),
    "ended wins over sold out and the limit": Case(
        ended=True,
        available=0,
        max_per_user=1,
        held={"a": 1},
        requests=[("a", 1)],
        outcomes=["ended"],
        available_after=0,
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_plan_batch(case: Case) -> None:
    result, requests, existing = plan(case)

    check_outcomes(result, requests, existing, case.outcomes)
    assert result.available == case.available_after
    # The rows to insert are exactly the new bookings, once each, in arrival order.
    new = [o for o, want in zip(result.outcomes, case.outcomes, strict=True) if want == "new"]
    assert result.created == new
    assert len({b.id for b in result.created}) == len(result.created)
    # Stock is conserved: what the batch took is what it created.
    assert case.available - result.available == sum(b.quantity for b in result.created)
    assert result.available >= 0


def test_new_ids_are_drawn_only_for_the_bookings_made() -> None:
    drawn: list[UUID] = []
    ids = sequential_ids()

    def new_id() -> UUID:
        drawn.append(ids())
        return drawn[-1]

    result = plan_batch(
        terms(None),
        [request(("a", 5)), request(("b", 9)), request(("c", 5))],
        available=10,
        user_active={},
        existing={},
        now=NOW,
        new_id=new_id,
    )

    assert [b.id for b in result.created] == drawn == [UUID(int=1), UUID(int=2)]


def test_the_inputs_are_not_modified() -> None:
    held = {USERS["a"]: 1}
    existing = existing_bookings({"k1": ("b", 1)})
    before = (dict(held), dict(existing))

    plan_batch(
        terms(4),
        [request(("a", 2)), request(("a", 1, "k2")), request(("b", 1, "k1"))],
        available=10,
        user_active=held,
        existing=existing,
        now=NOW,
        new_id=uuid.uuid4,
    )

    assert (held, existing) == before


@pytest.mark.parametrize("size", [1, 2, 10, 100])
def test_a_batch_decides_like_requests_one_at_a_time(size: int) -> None:
    """The batch and the same requests decided alone, one after the other, agree."""
    specs: list[Req] = [("abc"[i % 3], 1 + i % 4) for i in range(size)]
    batch, _, _ = plan(Case(requests=specs, outcomes=[], available_after=0, max_per_user=6))

    available, held = 10, dict[UUID, int]()
    for spec, outcome in zip(specs, batch.outcomes, strict=True):
        alone = plan_batch(
            terms(6),
            [request(spec)],
            available=available,
            user_active=held,
            existing={},
            now=NOW,
            new_id=uuid.uuid4,
        )
        (single,) = alone.outcomes
        if isinstance(single, Booking):
            assert isinstance(outcome, Booking)
            assert (outcome.user_id, outcome.quantity) == (single.user_id, single.quantity)
            held[single.user_id] = held.get(single.user_id, 0) + single.quantity
        else:
            assert isinstance(outcome, DomainError)
            assert (type(outcome), outcome.extra) == (type(single), single.extra)
        available = alone.available
    assert batch.available == available
