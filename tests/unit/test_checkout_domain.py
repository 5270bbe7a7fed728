"""The checkout rules, pure: a hold's shape, what a payment does to it, failed attempts, expiry,
cancellation with refund."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from goticket.booking.domain import (
    Booking,
    BookingStatus,
    PaymentStatus,
    SettlementAction,
    new_booking,
    payment_failed,
    plan_batch,
    settle_payment,
)
from tests.unit.test_booking_domain import NOW, make_request, make_terms

LATER = NOW + timedelta(minutes=3)


def make_hold(quantity: int = 2, **changes: Any) -> Booking:
    terms = make_terms(price=4500, currency="EUR", hold_seconds=600)
    hold = new_booking(
        uuid.uuid4(), make_request(quantity=quantity), terms, NOW, payment_provider="fake"
    )
    return replace(hold, **changes)


def test_a_hold_is_pending_with_its_deadline_and_a_payment_to_make() -> None:
    hold = make_hold(quantity=2)
    assert hold.status is BookingStatus.PENDING
    assert hold.expires_at == NOW + timedelta(seconds=600)
    assert hold.confirmed_at is None  # no tickets yet
    assert (hold.payment_id, hold.payment_provider, hold.payment_status) == (
        hold.id,
        "fake",
        PaymentStatus.REQUIRES_PAYMENT,
    )
    assert hold.total_price == 9000
    assert hold.is_active
    assert not hold.is_confirmed
    assert not hold.is_paid


def test_an_instant_booking_has_no_hold_and_no_payment() -> None:
    booking = new_booking(uuid.uuid4(), make_request(), make_terms(), NOW)
    assert booking.status is BookingStatus.CONFIRMED
    assert booking.confirmed_at == NOW
    assert (booking.expires_at, booking.payment_id, booking.payment_status) == (None, None, None)


def test_a_batch_of_holds_counts_pending_spots_against_the_stock_and_the_limit() -> None:
    terms = make_terms(hold_seconds=60, max_per_user=3)
    user = uuid.uuid4()
    requests = [
        make_request(user_id=user, quantity=2),
        make_request(user_id=user, quantity=2),  # 4 > 3 for this user
        make_request(quantity=1),
        make_request(quantity=1),  # nothing left
    ]
    plan = plan_batch(
        terms,
        requests,
        available=3,
        user_active={},
        existing={},
        now=NOW,
        new_id=uuid.uuid4,
        payment_provider="fake",
    )
    kinds = [
        type(o).__name__ if not isinstance(o, Booking) else o.status.value for o in plan.outcomes
    ]
    assert kinds == ["pending", "PerUserLimitExceeded", "pending", "SoldOut"]
    assert plan.available == 0


def settle(booking: Booking, **overrides: Any) -> tuple[SettlementAction, Booking, int]:
    arguments: dict[str, Any] = {
        "amount": booking.total_price,
        "currency": booking.currency,
        "available": 0,
        "user_active": 0,
        "max_per_user": None,
        "now": LATER,
    }
    arguments.update(overrides)
    settlement = settle_payment(booking, **arguments)
    return settlement.action, settlement.booking, settlement.spots_taken


def test_a_paid_hold_is_confirmed_without_taking_spots_again() -> None:
    action, booking, taken = settle(make_hold())
    assert (action, booking.status, booking.payment_status, taken) == (
        SettlementAction.CONFIRM,
        BookingStatus.CONFIRMED,
        PaymentStatus.SUCCEEDED,
        0,
    )
    assert booking.confirmed_at == LATER
    assert booking.expires_at == NOW + timedelta(seconds=600)


def test_a_hold_past_its_deadline_but_not_yet_swept_is_still_confirmed() -> None:
    # Its spots are still taken: confirming it oversells nothing.
    action, booking, _ = settle(make_hold(), now=NOW + timedelta(hours=1))
    assert (action, booking.status) == (SettlementAction.CONFIRM, BookingStatus.CONFIRMED)


def test_a_failed_attempt_then_a_success_confirms() -> None:
    failed = payment_failed(make_hold(), LATER)
    assert failed is not None
    assert failed.payment_status is PaymentStatus.FAILED
    assert failed.status is BookingStatus.PENDING  # the hold stays
    action, booking, _ = settle(failed)
    assert (action, booking.status) == (SettlementAction.CONFIRM, BookingStatus.CONFIRMED)


@pytest.mark.parametrize(
    ("available", "user_active", "max_per_user", "action"),
    [
        (2, 0, None, SettlementAction.RETAKE),  # exactly enough spots again
        (5, 0, None, SettlementAction.RETAKE),
        (1, 0, None, SettlementAction.REFUND),  # sold meanwhile: never oversell
        (0, 0, None, SettlementAction.REFUND),
        (5, 2, 4, SettlementAction.RETAKE),  # 2 + 2 = 4 within the limit
        (5, 3, 4, SettlementAction.REFUND),  # 3 + 2 > 4: the limit holds too
    ],
)
def test_a_late_payment_takes_the_spots_again_or_is_refunded(
    available: int, user_active: int, max_per_user: int | None, action: SettlementAction
) -> None:
    expired = make_hold(quantity=2).expired(LATER)
    got, booking, taken = settle(
        expired, available=available, user_active=user_active, max_per_user=max_per_user
    )
    assert got is action
    if action is SettlementAction.RETAKE:
        assert (booking.status, booking.payment_status, taken) == (
            BookingStatus.CONFIRMED,
            PaymentStatus.SUCCEEDED,
            2,
        )
    else:
        assert (booking.status, booking.payment_status, taken) == (
            BookingStatus.EXPIRED,
            PaymentStatus.REFUNDED,
            0,
        )
        assert booking.confirmed_at is None


def test_a_payment_for_a_cancelled_hold_is_refunded() -> None:
    cancelled = make_hold().cancelled(LATER)
    action, booking, _ = settle(cancelled, available=10)
    assert (action, booking.status, booking.payment_status) == (
        SettlementAction.REFUND,
        BookingStatus.CANCELLED,
        PaymentStatus.REFUNDED,
    )


@pytest.mark.parametrize("wrong", [{"amount": 8999}, {"amount": 9001}, {"currency": "USD"}])
def test_a_payment_that_does_not_match_the_hold_is_refunded_not_trusted(
    wrong: dict[str, Any],
) -> None:
    action, booking, _ = settle(make_hold(quantity=2), **wrong)
    assert (action, booking.status, booking.payment_status) == (
        SettlementAction.REFUND,
        BookingStatus.PENDING,
        PaymentStatus.REFUNDED,
    )


def test_a_second_notice_changes_nothing() -> None:
    _, confirmed, _ = settle(make_hold())
    assert settle(confirmed)[0] is SettlementAction.NOTHING
    _, refunded, _ = settle(make_hold().expired(LATER))
    assert refunded.payment_status is PaymentStatus.REFUNDED
    assert settle(refunded, available=10)[0] is SettlementAction.NOTHING


def test_a_failure_changes_nothing_once_the_hold_is_decided() -> None:
    _, confirmed, _ = settle(make_hold())
    assert payment_failed(confirmed, LATER) is None
    assert payment_failed(make_hold().expired(LATER), LATER) is None
    already = payment_failed(make_hold(), LATER)
    assert already is not None
    assert payment_failed(already, LATER) is None
    instant = new_booking(uuid.uuid4(), make_request(), make_terms(), NOW)
    assert payment_failed(instant, LATER) is None


def test_cancelling_a_paid_booking_refunds_it_and_a_hold_just_ends() -> None:
    _, paid, _ = settle(make_hold())
    cancelled = paid.cancelled(LATER)
    assert (cancelled.status, cancelled.payment_status) == (
        BookingStatus.CANCELLED,
        PaymentStatus.REFUNDED,
    )
    unpaid = make_hold().cancelled(LATER)
    assert unpaid.payment_status is PaymentStatus.REQUIRES_PAYMENT


def test_a_hold_is_due_at_its_deadline_and_only_while_pending() -> None:
    hold = make_hold()
    deadline = NOW + timedelta(seconds=600)
    assert not hold.is_due(deadline - timedelta(microseconds=1))
    assert hold.is_due(deadline)
    assert not hold.expired(deadline).is_due(deadline + timedelta(days=1))
    assert not settle(hold)[1].is_due(deadline + timedelta(days=1))
