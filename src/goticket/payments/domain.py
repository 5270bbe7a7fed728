"""Payments: what a provider's webhook tells us, and the rules for reading it (pure: no I/O).

A provider's webhook says that a payment succeeded or failed. Its signature is checked by the
provider's adapter (``payments.fake``, ``payments.stripe``); this module turns the fake's
verified, decoded JSON into a ``PaymentNotice`` or lists every reason it cannot (422). A
provider that sends events we have no use for (Stripe sends dozens of types) answers those with
an ``IgnoredNotice``: acknowledged, nothing changes. A body that is not a JSON object is
``UnreadableNotice`` (400). Either way nothing is recorded: the provider's next delivery of the
same webhook (if it sends a good one) is processed as if it were the first.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any, ClassVar
from uuid import UUID

from goticket.kit.errors import (
    AuthenticationFailed,
    DomainError,
    FieldError,
    InvalidInput,
    NotFound,
    Unavailable,
)

CURRENCY_PATTERN = r"^[A-Z]{3}$"
AMOUNT_MAX = 10**13  # a booking's total: price (≤ 10^12) times a quantity of at most 10
WEBHOOK_ID_MAX = 255
_CURRENCY = re.compile(CURRENCY_PATTERN)


class PaymentEvent(enum.StrEnum):
    SUCCEEDED = "payment.succeeded"
    FAILED = "payment.failed"


class Outcome(enum.StrEnum):
    """What the customer did at the provider's checkout (the fake checkout's request)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def event(self) -> PaymentEvent:
        return PaymentEvent.SUCCEEDED if self is Outcome.SUCCEEDED else PaymentEvent.FAILED


@dataclass(frozen=True, slots=True)
class PaymentNotice:
    """One verified webhook: ``webhook_id`` identifies the delivery (retries repeat it)."""

    webhook_id: str
    event: PaymentEvent
    payment_id: UUID
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class IgnoredNotice:
    """A verified webhook about something we do not act on (another event type, a payment that
    is not ours): 200 ``ignored``, nothing changes and its id is not remembered."""

    webhook_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    """A hosted checkout page opened at the provider for one payment."""

    payment_id: UUID
    session_id: str
    url: str


@dataclass(frozen=True, slots=True)
class PaymentDue:
    """A payment as its booking knows it: who pays, and how much."""

    payment_id: UUID
    payer: UUID
    amount: int
    currency: str


class WebhookResult(enum.StrEnum):
    ACCEPTED = "accepted"  # verified, its outcome committed (an unknown payment: nothing to do)
    DUPLICATE = "duplicate"  # this webhook id was processed before: nothing changes
    IGNORED = "ignored"  # verified, but about nothing we act on: nothing changes


class InvalidSignature(AuthenticationFailed):
    code = "invalid-signature"
    title = "Invalid webhook signature"
    # Not a bearer token: the credential is the Standard Webhooks signature of the body.
    challenge: ClassVar[str] = 'Standard-Webhooks realm="goticket-payments"'


class UnreadableNotice(DomainError):
    """A correctly signed body that is not a JSON object (the error table's default: 400)."""

    code = "bad-request"
    title = "Bad request"


class UnknownProvider(NotFound):
    """No provider of that name is configured (its webhook intake does not exist)."""


class PaymentNotFound(NotFound):
    """No such payment, or one the caller does not pay (its existence does not leak)."""


class ProviderUnavailable(Unavailable):
    """A payment's provider is not configured here (a refund cannot be issued)."""


def is_webhook_id(value: str) -> bool:
    return 0 < len(value) <= WEBHOOK_ID_MAX and value.isprintable()


def parse_notice(webhook_id: str, data: Any) -> PaymentNotice:
    """The notice in a decoded webhook body, or ``InvalidInput`` listing every bad member.

    Members the provider may add later are ignored (a new field must never make us refuse a
    payment); the ones we read are checked strictly. A number with no fractional part is an
    integer, as in JSON Schema.
    """
    if not isinstance(data, dict):
        raise UnreadableNotice("the webhook body must be a JSON object")
    errors: list[FieldError] = []
    event: PaymentEvent | None = None
    raw_type = data.get("type")
    if "type" not in data:
        errors.append(FieldError("type", "required"))
    elif not isinstance(raw_type, str) or raw_type not in set(PaymentEvent):
        errors.append(FieldError("type", "must be payment.succeeded or payment.failed"))
    else:
        event = PaymentEvent(raw_type)
    payload = data.get("data")
    if not isinstance(payload, dict):
        errors.append(FieldError("data", "required" if payload is None else "must be an object"))
        raise InvalidInput(errors)
    payment_id = _payment_id(payload.get("paymentId"), "data.paymentId", errors)
    amount = _amount(payload.get("amount"), "data.amount", errors)
    currency = _currency(payload.get("currency"), "data.currency", errors)
    if errors or event is None or payment_id is None or amount is None or currency is None:
        raise InvalidInput(errors)
    return PaymentNotice(webhook_id, event, payment_id, amount, currency)


def checked_notice(
    webhook_id: str,
    event: PaymentEvent,
    *,
    payment_id: tuple[str, Any],
    amount: tuple[str, Any],
    currency: tuple[str, Any],
) -> PaymentNotice:
    """A provider adapter's notice from the three members it read, each given as (its name in
    the provider's body, for the 422; its value): the payment id (a UUID string), the amount
    (minor units) and the currency (ISO 4217, upper case). ``InvalidInput`` lists every bad one.
    """
    errors: list[FieldError] = []
    checked_id = _payment_id(payment_id[1], payment_id[0], errors)
    checked_amount = _amount(amount[1], amount[0], errors)
    checked_currency = _currency(currency[1], currency[0], errors)
    if errors or checked_id is None or checked_amount is None or checked_currency is None:
        raise InvalidInput(errors)
    return PaymentNotice(webhook_id, event, checked_id, checked_amount, checked_currency)


def _payment_id(raw: Any, name: str, errors: list[FieldError]) -> UUID | None:
    if raw is None:
        errors.append(FieldError(name, "required"))
        return None
    try:
        if not isinstance(raw, str):
            raise ValueError
        return UUID(raw)
    except ValueError:
        errors.append(FieldError(name, "must be a UUID"))
        return None


def _amount(raw: Any, name: str, errors: list[FieldError]) -> int | None:
    if raw is None:
        errors.append(FieldError(name, "required"))
        return None
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    # bool is an int in Python, not in JSON.
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= AMOUNT_MAX:
        errors.append(FieldError(name, f"must be an integer from 0 to {AMOUNT_MAX}"))
        return None
    return raw


def _currency(raw: Any, name: str, errors: list[FieldError]) -> str | None:
    if raw is None:
        errors.append(FieldError(name, "required"))
        return None
    if not isinstance(raw, str) or not _CURRENCY.fullmatch(raw):
        errors.append(FieldError(name, "must be 3 uppercase letters (ISO 4217)"))
        return None
    return raw


def notice_body(
    event: PaymentEvent, payment_id: UUID, amount: int, currency: str
) -> dict[str, Any]:
    """A webhook body as the fake provider sends it (the shape ``parse_notice`` reads)."""
    return {
        "type": event.value,
        "data": {"paymentId": str(payment_id), "amount": amount, "currency": currency},
    }
