"""Stripe test helpers: events as Stripe sends them, signed as Stripe signs them (computed here,
independently of the library the provider verifies with), and the library's HTTP client
replaced by one that answers from memory: no request ever leaves the machine."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import stripe

STRIPE_SECRET = "whsec_test_goticket_stripe_endpoint_secret"  # Stripe's are whsec_ + 32 chars
OTHER_STRIPE_SECRET = "whsec_test_some_other_endpoint_secret_00"
API_KEY = "sk_test_goticket_not_a_real_key"
SUCCESS_URL = "https://tickets.example/bookings/{payment_id}?session={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://tickets.example/bookings/{payment_id}"


def stripe_signature(payload: bytes, secret: str = STRIPE_SECRET, at: float | None = None) -> str:
    """``Stripe-Signature`` as Stripe computes it: ``t=<unix>,v1=<hex HMAC-SHA256 of
    "{t}.{payload}" keyed with the whole secret>``."""
    timestamp = int(time.time() if at is None else at)
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def stripe_headers(
    payload: bytes, secret: str = STRIPE_SECRET, at: float | None = None
) -> dict[str, str]:
    return {
        "content-type": "application/json; charset=utf-8",
        "stripe-signature": stripe_signature(payload, secret, at),
    }


def stripe_event(kind: str, obj: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """An event as Stripe's webhook body (API version 2025+ snapshot event)."""
    return {
        "id": event_id or f"evt_{uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2025-10-29.clover",
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }


def payment_intent(
    payment_id: UUID | str | None,
    *,
    amount: int = 9000,
    currency: str = "eur",
    status: str = "succeeded",
    intent_id: str = "pi_3TestGoTicket0001",
) -> dict[str, Any]:
    metadata = {} if payment_id is None else {"goticket_payment_id": str(payment_id)}
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount if status == "succeeded" else 0,
        "currency": currency,
        "metadata": metadata,
        "status": status,
        "last_payment_error": None if status == "succeeded" else {"code": "card_declined"},
    }


def checkout_session(
    payment_id: UUID | str | None,
    *,
    amount: int = 9000,
    currency: str = "eur",
    payment_status: str = "paid",
    metadata: bool = True,
    intent_id: str = "pi_3TestGoTicket0002",
) -> dict[str, Any]:
    return {
        "id": "cs_test_a1GoTicket",
        "object": "checkout.session",
        "amount_total": amount,
        "currency": currency,
        "client_reference_id": None if payment_id is None else str(payment_id),
        "metadata": {"goticket_payment_id": str(payment_id)} if metadata and payment_id else {},
        "mode": "payment",
        "payment_intent": intent_id,
        "payment_status": payment_status,
        "status": "complete",
    }


def body_of(event: dict[str, Any]) -> bytes:
    return json.dumps(event, indent=2).encode()  # Stripe's bodies are pretty-printed


@dataclass
class Sent:
    method: str
    url: str
    headers: dict[str, str]
    body: str | None

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.url).query)

    @property
    def form(self) -> dict[str, str]:
        """The form-encoded body, one value per key (Stripe's bracketed names)."""
        return {key: values[0] for key, values in parse_qs(self.body or "").items()}


@dataclass
class Answer:
    status: int
    body: dict[str, Any]


def stripe_error(status: int, code: str, kind: str = "invalid_request_error") -> Answer:
    return Answer(status, {"error": {"type": kind, "code": code, "message": f"test: {code}"}})


@dataclass
class MemoryStripeHttp(stripe.HTTPClient):
    """The stripe library's HTTP client, answering each request with the next canned answer
    and writing the request down."""

    answers: list[Answer] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    name = "memory"

    def __post_init__(self) -> None:
        super().__init__()

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        self.sent.append(Sent(method, url, dict(headers), post_data))
        if not self.answers:
            raise AssertionError(f"an unexpected Stripe request: {method} {url}")
        answer = self.answers.pop(0)
        return json.dumps(answer.body).encode(), answer.status, {"request-id": "req_test"}

    def sleep_async(self, secs: float) -> Awaitable[None]:
        return asyncio.sleep(0)

    async def close_async(self) -> None:
        pass
