"""Payment use cases: take a provider's webhook, open a hosted provider's checkout, play the
customer at the fake checkout, refund, and forget old webhook ids."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID, uuid4

import msgspec

from goticket.kit.auth import Principal
from goticket.kit.clock import Clock
from goticket.kit.errors import InvalidInput
from goticket.kit.logging import get_logger
from goticket.payments.domain import (
    CheckoutSession,
    IgnoredNotice,
    InvalidSignature,
    Outcome,
    PaymentEvent,
    PaymentNotFound,
    PaymentNotice,
    ProviderUnavailable,
    UnknownProvider,
    UnreadableNotice,
    WebhookResult,
    notice_body,
)
from goticket.payments.ports import (
    HostedCheckout,
    NoMetrics,
    PaymentMetrics,
    PaymentOutcomes,
    PaymentProvider,
    UnitOfWorkFactory,
    WebhookPoster,
)

FAKE = "fake"
WEBHOOK_PATH = "/payments/webhooks/{provider}"
# Processed webhook ids are kept at least this long (the contract asks for 24 h: a provider
# retries for days at most, and a week of ids is a small table).
WEBHOOK_RETENTION = timedelta(days=7)
# The fake provider's waits before its second and third attempt at a delivery.
DELIVERY_WAITS: Sequence[float] = (0.25, 1.0)

log = get_logger("goticket.payments")


class WebhookSigner(Protocol):
    """Signs an outgoing webhook (the fake provider)."""

    def signed_headers(self, webhook_id: str, body: bytes, at: datetime) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class FakeDelivery:
    """A webhook the fake provider owes the service: the same id on every attempt."""

    webhook_id: str
    payment_id: UUID
    outcome: Outcome
    body: bytes


class PaymentService:
    def __init__(
        self,
        provider: PaymentProvider,
        outcomes: PaymentOutcomes,
        uow: UnitOfWorkFactory,
        clock: Clock,
        *,
        fake: WebhookSigner | None = None,
        hosted: HostedCheckout | None = None,
        poster: WebhookPoster | None = None,
        metrics: PaymentMetrics | None = None,
        delivery_waits: Sequence[float] = DELIVERY_WAITS,
    ) -> None:
        self._provider = provider
        self._outcomes = outcomes
        self._uow = uow
        self._clock = clock
        # The fake checkout exists only while the fake provider is the configured one.
        self._fake = fake if provider.name == FAKE else None
        self._hosted = hosted
        self._poster = poster
        self._metrics = metrics or NoMetrics()
        self._waits = tuple(delivery_waits)

    # -- webhook intake ------------------------------------------------------------------

    async def receive(
        self, provider: str, headers: Mapping[str, str], body: bytes
    ) -> WebhookResult:
        """Verify and apply one webhook. ``ACCEPTED`` only once its outcome is committed.

        Order, for crash safety: the outcome commits first, then the id is remembered. A crash
        in between leaves the id unknown, so the provider's retry applies the outcome again,
        which changes nothing (the booking's transitions are idempotent). The other order could
        remember an id whose outcome never committed: a lost payment.
        """
        if provider != self._provider.name:
            raise UnknownProvider("no such payment provider")
        try:
            notice = self._provider.verify(headers, body)
        except InvalidSignature:
            self._metrics.webhook("invalid-signature")
            raise
        except (UnreadableNotice, InvalidInput):
            self._metrics.webhook("invalid-body")
            raise
        if isinstance(notice, IgnoredNotice):
            # Nothing to apply, nothing to remember: a retry of it is ignored again.
            log.info("webhook ignored", webhook_id=notice.webhook_id, reason=notice.reason)
            self._metrics.webhook(WebhookResult.IGNORED.value)
            return WebhookResult.IGNORED
        async with self._uow(readonly=True) as uow:
            if await uow.webhooks.seen(provider, notice.webhook_id):
                self._metrics.webhook(WebhookResult.DUPLICATE.value)
                return WebhookResult.DUPLICATE
        await self._apply(notice)
        async with self._uow() as uow:
            first = await uow.webhooks.remember(provider, notice.webhook_id, self._clock.now())
            await uow.commit()
        # Two deliveries of one id at once may both apply it (harmless, see above); the one
        # that did not insert the id counts as the duplicate.
        result = WebhookResult.ACCEPTED if first else WebhookResult.DUPLICATE
        self._metrics.webhook(result.value)
        if first:
            self._metrics.payment(
                "succeeded" if notice.event is PaymentEvent.SUCCEEDED else "failed"
            )
        return result

    async def _apply(self, notice: PaymentNotice) -> None:
        if notice.event is PaymentEvent.SUCCEEDED:
            await self._outcomes.payment_succeeded(
                notice.payment_id, notice.amount, notice.currency
            )
        else:
            await self._outcomes.payment_failed(notice.payment_id)

    async def forget_webhooks(self) -> int:
        """Forget processed webhook ids older than the retention (for a periodic sweeper)."""
        async with self._uow() as uow:
            forgotten = await uow.webhooks.forget_before(self._clock.now() - WEBHOOK_RETENTION)
            await uow.commit()
        return forgotten

    async def forget_webhooks_every(self, period: float = 3600.0) -> None:
        """The retention loop of a worker: any worker may run it (deleting is idempotent)."""
        while True:
            await asyncio.sleep(period)
            try:
                await self.forget_webhooks()
            except Exception as exc:  # noqa: BLE001 -- the next period tries again
                log.warning("could not forget old webhook ids", error=repr(exc))

    # -- refunds (booking's ``Refunds`` port, through app.py) ----------------------------

    async def refund(self, payment_id: UUID, provider: str, amount: int, currency: str) -> None:
        if provider != self._provider.name:
            raise ProviderUnavailable(f"the payment provider {provider!r} is not configured")
        await self._provider.refund(payment_id, amount, currency)
        self._metrics.payment("refunded")

    @property
    def provider(self) -> str:
        return self._provider.name

    # -- a hosted provider's checkout (Stripe Checkout) ----------------------------------

    async def start_checkout(
        self, actor: Principal, provider: str, payment_id: UUID
    ) -> CheckoutSession:
        """The provider's checkout page for the caller's own payment (anyone else's, or a
        provider that is not the configured hosted one: 404)."""
        hosted = self._hosted if provider == self._provider.name else None
        if hosted is None:
            raise PaymentNotFound(f"no {provider} checkout: another provider is configured")
        due = await self._outcomes.payment(payment_id)
        if due is None or due.payer != actor.user_id:
            raise PaymentNotFound("no such payment")
        return await hosted.start_checkout(due)

    async def close(self) -> None:
        await self._provider.close()

    # -- the fake provider's checkout ----------------------------------------------------

    def ensure_fake_checkout(self) -> None:
        if self._fake is None:
            raise PaymentNotFound("the fake checkout is off: another provider is configured")

    async def complete_fake(
        self, actor: Principal, payment_id: UUID, outcome: Outcome
    ) -> FakeDelivery:
        """The customer paid (or failed to) at the fake checkout: the webhook the fake owes."""
        self.ensure_fake_checkout()
        due = await self._outcomes.payment(payment_id)
        if due is None or due.payer != actor.user_id:
            raise PaymentNotFound("no such payment")
        body = msgspec.json.encode(notice_body(outcome.event, payment_id, due.amount, due.currency))
        return FakeDelivery(f"msg_{uuid4().hex}", payment_id, outcome, body)

    async def deliver(self, delivery: FakeDelivery) -> bool:
        """POST the webhook to the service's own intake until it answers 2xx, a few times at
        most; each attempt is signed afresh (a new timestamp, the same id)."""
        if self._fake is None or self._poster is None:
            raise RuntimeError("the fake provider cannot deliver here")
        path = WEBHOOK_PATH.format(provider=FAKE)
        for attempt, wait in enumerate((0.0, *self._waits), start=1):
            await asyncio.sleep(wait)
            headers = self._fake.signed_headers(
                delivery.webhook_id, delivery.body, self._clock.now()
            )
            try:
                status = await self._poster.post(path, headers, delivery.body)
            except Exception as exc:  # noqa: BLE001 - logged; the next attempt may succeed
                log.warning(
                    "fake webhook delivery failed",
                    webhook_id=delivery.webhook_id,
                    attempt=attempt,
                    error=repr(exc),
                )
                continue
            if 200 <= status < 300:
                return True
            log.warning(
                "fake webhook refused",
                webhook_id=delivery.webhook_id,
                attempt=attempt,
                status=status,
            )
            if status < 500 and status not in (408, 429):
                return False  # the same request would be refused again
        return False
