"""Payments test helpers: a ``PaymentOutcomes`` that writes down every call, and webhook signing
done the way a provider does it (the ``standardwebhooks`` library, with our test secret)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from standardwebhooks.webhooks import Webhook

from goticket.payments.domain import PaymentDue

SECRET = "whsec_" + base64.b64encode(b"payments-test-secret-32-bytes!!!").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"not-the-secret-of-this-service!!").decode()


@dataclass
class RecordingOutcomes:
    """A ``PaymentOutcomes`` that knows the payments it is given and writes down every call."""

    due: dict[UUID, PaymentDue] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    fail_next: Exception | None = None

    def add(self, payer: UUID, amount: int = 9000, currency: str = "EUR") -> PaymentDue:
        due = PaymentDue(uuid4(), payer, amount, currency)
        self.due[due.payment_id] = due
        return due

    async def payment_succeeded(self, payment_id: UUID, amount: int, currency: str) -> None:
        self._maybe_fail()
        self.calls.append(("succeeded", payment_id, amount, currency))

    async def payment_failed(self, payment_id: UUID) -> None:
        self._maybe_fail()
        self.calls.append(("failed", payment_id))

    async def payment(self, payment_id: UUID) -> PaymentDue | None:
        return self.due.get(payment_id)

    def _maybe_fail(self) -> None:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error


def webhook_body(
    payment_id: UUID | str,
    event: str = "payment.succeeded",
    amount: int = 9000,
    currency: str = "EUR",
) -> bytes:
    data = {"paymentId": str(payment_id), "amount": amount, "currency": currency}
    return json.dumps({"type": event, "data": data}).encode()


def signed(
    body: bytes,
    *,
    webhook_id: str | None = None,
    at: datetime | None = None,
    secret: str = SECRET,
) -> dict[str, str]:
    """Standard Webhooks headers for ``body``, signed at ``at`` (now by default)."""
    webhook_id = webhook_id or f"msg_{uuid4().hex}"
    at = at or datetime.now(UTC)
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, at, body),
    }


def minutes_ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)
