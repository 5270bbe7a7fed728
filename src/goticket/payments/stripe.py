"""The Stripe payment provider (``GOTICKET_PAYMENT_PROVIDER=stripe``), on the official ``stripe``
library: nothing of Stripe's protocol is reimplemented here.

- Webhooks: ``Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{body}">`` with the
  endpoint's signing secret, checked by ``construct_event`` with a tolerance of 300 s (Stripe's
  rule: a timestamp more than 5 minutes old is refused; one ahead of our clock is not). The
  webhook id is Stripe's event id. ``checkout.session.completed`` (``payment_status: paid``),
  ``checkout.session.async_payment_succeeded`` and ``payment_intent.succeeded`` are a success;
  ``checkout.session.async_payment_failed`` and ``payment_intent.payment_failed`` a failure.
  Our payment id is ``metadata.goticket_payment_id`` (set on the session and on its payment
  intent when the checkout is opened; ``client_reference_id`` for a session). Every other event,
  and a payment that is not ours (no such metadata), is acknowledged and ignored.
- Checkout: ``POST /payments/stripe/{paymentId}/checkout`` opens a Stripe Checkout Session for
  the hold (one per payment: the idempotency key ``checkout-{paymentId}`` makes a second call
  within Stripe's 24 hours return the same session, which itself lasts 24 hours).
- Refund: the whole payment intent, with the idempotency key ``refund-{paymentId}``. The payment
  intent is the one this process saw in the payment's webhook (a late payment is refunded while
  its webhook is processed); otherwise Stripe's search by metadata finds it (a cancellation,
  any worker, later). Stripe's search can lag a new payment by about a minute: a refund that
  finds nothing is ``ProviderUnavailable`` (503, try again), never a silent success.

Every API call is async (``StripeClient``'s ``*_async`` methods over httpx), with a short
timeout: a refund runs inside the booking's transaction.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, ClassVar
from uuid import UUID

import stripe

from goticket.kit.errors import InvalidInput
from goticket.kit.logging import get_logger
from goticket.payments.domain import (
    CheckoutSession,
    IgnoredNotice,
    InvalidSignature,
    PaymentDue,
    PaymentEvent,
    PaymentNotice,
    ProviderUnavailable,
    UnreadableNotice,
    checked_notice,
    is_webhook_id,
)

NAME = "stripe"
CHECKOUT_PATH = "/payments/stripe/{payment_id}/checkout"
SIGNATURE_HEADER = "stripe-signature"
TOLERANCE = 300  # seconds, Stripe's default
METADATA_KEY = "goticket_payment_id"
PRODUCT_NAME = "GoTicket booking"
# The payment intents seen in webhooks, per payment id (for refunds without a search).
REMEMBERED_INTENTS = 10_000

# Event type → what it says, and which member of its object holds the amount.
_EVENTS: dict[str, tuple[PaymentEvent, str]] = {
    "checkout.session.completed": (PaymentEvent.SUCCEEDED, "amount_total"),
    "checkout.session.async_payment_succeeded": (PaymentEvent.SUCCEEDED, "amount_total"),
    "checkout.session.async_payment_failed": (PaymentEvent.FAILED, "amount_total"),
    "payment_intent.succeeded": (PaymentEvent.SUCCEEDED, "amount_received"),
    "payment_intent.payment_failed": (PaymentEvent.FAILED, "amount"),
}

log = get_logger("goticket.payments")


class InvalidStripeSignature(InvalidSignature):
    """The same 401 ``invalid-signature``; its challenge names Stripe's scheme."""

    challenge: ClassVar[str] = 'Stripe-Signature realm="goticket-payments"'


def notice_of(event: Mapping[str, Any]) -> PaymentNotice | IgnoredNotice:
    """What a verified Stripe event (as a plain dict) tells us (pure: no I/O).

    ``InvalidInput`` when an event we act on lacks what we read, or has it malformed; its
    fields are named as in Stripe's body (``data.object.amount_total``).
    """
    webhook_id = event.get("id")
    if not isinstance(webhook_id, str) or not is_webhook_id(webhook_id):
        raise InvalidInput.single("id", "must be 1 to 255 printable characters")
    kind = event.get("type")
    if not isinstance(kind, str) or kind not in _EVENTS:
        return IgnoredNotice(webhook_id, f"Stripe event type {kind!r} is not acted on")
    outcome, amount_member = _EVENTS[kind]
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise InvalidInput.single("data.object", "required")
    is_session = kind.startswith("checkout.session.")
    if kind == "checkout.session.completed" and obj.get("payment_status") != "paid":
        # A delayed payment method: its outcome comes as an async_payment_* event.
        status = obj.get("payment_status")
        return IgnoredNotice(webhook_id, f"checkout session completed as {status!r}")
    metadata = obj.get("metadata")
    raw_id = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    id_member = f"data.object.metadata.{METADATA_KEY}"
    if raw_id is None and is_session and obj.get("client_reference_id") is not None:
        raw_id, id_member = obj["client_reference_id"], "data.object.client_reference_id"
    if raw_id is None:
        return IgnoredNotice(webhook_id, "not a GoTicket payment (no goticket_payment_id)")
    currency = obj.get("currency")
    return checked_notice(
        webhook_id,
        outcome,
        payment_id=(id_member, raw_id),
        amount=(f"data.object.{amount_member}", obj.get(amount_member)),
        currency=("data.object.currency", currency.upper() if isinstance(currency, str) else None),
    )


def payment_intent_of(event: Mapping[str, Any]) -> str | None:
    """The payment intent id an event names: the object's own id for ``payment_intent.*``, the
    session's ``payment_intent`` for ``checkout.session.*``."""
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        return None
    kind = event.get("type")
    found = obj.get("id") if obj.get("object") == "payment_intent" else None
    if isinstance(kind, str) and kind.startswith("checkout.session."):
        found = obj.get("payment_intent")
    return found if isinstance(found, str) and found.startswith("pi_") else None


class StripeProvider:
    """``PaymentProvider`` and ``HostedCheckout`` on Stripe. ``http_client`` is the library's
    HTTP client (``stripe.HTTPXClient`` by default; tests pass one that answers from memory)."""

    def __init__(
        self,
        api_key: str,
        webhook_secret: str,
        *,
        success_url: str,
        cancel_url: str | None = None,
        api_base: str | None = None,
        http_client: stripe.HTTPClient | None = None,
        timeout: float = 10.0,
        max_network_retries: int = 1,
        remembered: int = REMEMBERED_INTENTS,
    ) -> None:
        self._owns_http = http_client is None
        self._http = http_client or stripe.HTTPXClient(timeout=timeout)
        self._client = stripe.StripeClient(
            api_key,
            http_client=self._http,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,
        )
        self._secret = webhook_secret
        self._success_url = success_url
        self._cancel_url = cancel_url
        self._intents: OrderedDict[UUID, str] = OrderedDict()
        self._remembered = remembered

    @property
    def name(self) -> str:
        return NAME

    def checkout_url(self, payment_id: UUID) -> str:
        return CHECKOUT_PATH.format(payment_id=payment_id)

    async def close(self) -> None:
        if self._owns_http:
            await self._http.close_async()  # type: ignore[no-untyped-call]  # untyped there

    # -- webhooks ------------------------------------------------------------------------

    def verify(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice | IgnoredNotice:
        signature = headers.get(SIGNATURE_HEADER)
        if not signature:
            raise InvalidStripeSignature("the Stripe-Signature header is missing")
        try:
            event = self._client.construct_event(body, signature, self._secret, TOLERANCE)
        except (stripe.SignatureVerificationError, UnicodeDecodeError):
            # A body that is not UTF-8 cannot be what Stripe signed.
            raise InvalidStripeSignature(
                "the Stripe signature is missing or wrong, or its timestamp is more than 5"
                " minutes old"
            ) from None
        except (ValueError, TypeError, AttributeError, RecursionError):
            # Past the signature: the body is not JSON, or not an object (the library reads
            # members of whatever it decoded).
            raise UnreadableNotice("the webhook body is not a Stripe event") from None
        data = event.to_dict()
        notice = notice_of(data)
        intent = payment_intent_of(data)
        if isinstance(notice, PaymentNotice) and intent is not None:
            self._remember_intent(notice.payment_id, intent)
        return notice

    def _remember_intent(self, payment_id: UUID, intent: str) -> None:
        self._intents[payment_id] = intent
        self._intents.move_to_end(payment_id)
        while len(self._intents) > self._remembered:
            self._intents.popitem(last=False)

    # -- checkout ------------------------------------------------------------------------

    async def start_checkout(self, due: PaymentDue) -> CheckoutSession:
        payment_id = str(due.payment_id)
        metadata = {METADATA_KEY: payment_id}
        params: stripe.params.checkout.SessionCreateParams = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": due.currency.lower(),
                        "unit_amount": due.amount,
                        "product_data": {"name": PRODUCT_NAME},
                    },
                }
            ],
            "client_reference_id": payment_id,
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            # Not str.format: Stripe's own {CHECKOUT_SESSION_ID} must pass through.
            "success_url": self._success_url.replace("{payment_id}", payment_id),
        }
        if self._cancel_url:
            params["cancel_url"] = self._cancel_url.replace("{payment_id}", payment_id)
        try:
            session = await self._client.v1.checkout.sessions.create_async(
                params, {"idempotency_key": f"checkout-{payment_id}"}
            )
        except stripe.StripeError as exc:
            raise _unavailable("open a Stripe checkout", due.payment_id, exc) from None
        if session.url is None:
            raise ProviderUnavailable("Stripe opened a checkout session without a URL")
        return CheckoutSession(due.payment_id, session.id, session.url)

    # -- refunds -------------------------------------------------------------------------

    async def refund(self, payment_id: UUID, amount: int, currency: str) -> None:
        """Refund the payment's whole payment intent (what was actually paid, which is the
        booking's total unless the payment did not match it)."""
        try:
            intent = self._intents.get(payment_id) or await self._find_intent(payment_id)
            if intent is None:
                raise ProviderUnavailable(
                    "Stripe does not list this payment yet: try again in a minute"
                )
            await self._client.v1.refunds.create_async(
                {
                    "payment_intent": intent,
                    "reason": "requested_by_customer",
                    "metadata": {METADATA_KEY: str(payment_id)},
                },
                {"idempotency_key": f"refund-{payment_id}"},
            )
        except stripe.InvalidRequestError as exc:
            if exc.code == "charge_already_refunded":  # refunded before (the dashboard, ...)
                log.info("stripe payment already refunded", payment_id=str(payment_id))
                return
            raise _unavailable("refund", payment_id, exc) from None
        except stripe.StripeError as exc:
            raise _unavailable("refund", payment_id, exc) from None
        log.info(
            "stripe refund",
            payment_id=str(payment_id),
            payment_intent=intent,
            amount=amount,
            currency=currency,
        )

    async def _find_intent(self, payment_id: UUID) -> str | None:
        # A UUID's text needs no escaping in Stripe's search language.
        query = f"metadata['{METADATA_KEY}']:'{payment_id}' AND status:'succeeded'"
        found = await self._client.v1.payment_intents.search_async({"query": query, "limit": 1})
        return found.data[0].id if found.data else None


def _unavailable(action: str, payment_id: UUID, exc: stripe.StripeError) -> ProviderUnavailable:
    log.warning(
        "stripe refused or could not be reached",
        action=action,
        payment_id=str(payment_id),
        error=type(exc).__name__,
        code=exc.code,
        http_status=exc.http_status,
        request_id=exc.request_id,
    )
    return ProviderUnavailable(f"Stripe could not {action} now: try again later")
