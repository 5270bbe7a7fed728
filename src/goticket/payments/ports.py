"""The payments context's ports: a payment provider, the outcomes of payments (booking
implements them; app.py adapts), the processed webhook ids, and metrics.

A provider adapter is one small module: ``payments.fake`` is the built-in one; ``payments.stripe``
verifies ``Stripe-Signature``, maps Stripe's payment events to a ``PaymentNotice`` (the Stripe
event id as ``webhook_id``; the types it does not act on to an ``IgnoredNotice``), refunds through
Stripe's API and opens a Stripe Checkout Session for a hold (``HostedCheckout``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol
from uuid import UUID

from goticket.payments.domain import CheckoutSession, IgnoredNotice, PaymentDue, PaymentNotice


class PaymentProvider(Protocol):
    @property
    def name(self) -> str:
        """The provider's name in ``POST /payments/webhooks/{provider}`` and on the booking."""

    def checkout_url(self, payment_id: UUID) -> str:
        """Where the customer pays (a relative URL for the fake provider)."""

    async def refund(self, payment_id: UUID, amount: int, currency: str) -> None:
        """Give ``amount`` back to the payer; raises when the provider refuses (nothing done)."""

    def verify(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice | IgnoredNotice:
        """The notice of a webhook request (header names in lower case, the body's exact bytes):
        a payment's outcome, or a verified webhook about nothing we act on.

        Raises ``InvalidSignature`` (missing or wrong signature, timestamp out of tolerance),
        ``UnreadableNotice`` (a signed body that is not a JSON object) or ``InvalidInput``."""

    async def close(self) -> None:
        """Release what the adapter holds (connections); at the app's shutdown."""


class HostedCheckout(Protocol):
    """A provider whose customer pays on the provider's own page (Stripe Checkout)."""

    async def start_checkout(self, due: PaymentDue) -> CheckoutSession:
        """Open (or find again: one per payment) the provider's checkout page for ``due``.
        Raises ``ProviderUnavailable`` when the provider cannot be reached or refuses."""


class PaymentOutcomes(Protocol):
    """What a payment's outcome does to its booking: implemented by booking's checkout, wired by
    app.py. Every method is idempotent (a webhook may be processed twice after a crash) and
    commits before it returns; an unknown ``payment_id`` is no error: nothing happens."""

    async def payment_succeeded(self, payment_id: UUID, amount: int, currency: str) -> None: ...

    async def payment_failed(self, payment_id: UUID) -> None: ...

    async def payment(self, payment_id: UUID) -> PaymentDue | None:
        """The payment's payer, amount and currency, ``None`` if there is no such payment."""


class ProcessedWebhooks(Protocol):
    async def seen(self, provider: str, webhook_id: str) -> bool: ...

    async def remember(self, provider: str, webhook_id: str, at: datetime) -> bool:
        """Record the id as processed; False if it was already (nothing changes then)."""

    async def forget_before(self, before: datetime) -> int:
        """Drop ids received before ``before``; how many."""


class PaymentsUnitOfWork(Protocol):
    @property
    def webhooks(self) -> ProcessedWebhooks: ...

    async def commit(self) -> None: ...


UnitOfWorkFactory = Callable[..., AbstractAsyncContextManager[PaymentsUnitOfWork]]


class WebhookPoster(Protocol):
    """Sends a signed webhook to the service's own intake, as a provider would: the status."""

    async def post(self, path: str, headers: Mapping[str, str], body: bytes) -> int: ...


class PaymentMetrics(Protocol):
    """What the payments context reports (Prometheus in the app, nothing in unit tests)."""

    def payment(self, outcome: str) -> None: ...
    def webhook(self, result: str) -> None: ...


class NoMetrics:
    def payment(self, outcome: str) -> None:
        pass

    def webhook(self, result: str) -> None:
        pass
