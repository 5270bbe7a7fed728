"""HTTP bodies of the payments context."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec

from goticket.payments.domain import (
    AMOUNT_MAX,
    CURRENCY_PATTERN,
    Outcome,
    PaymentEvent,
    WebhookResult,
)


class FakeCheckoutRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    outcome: Outcome


class FakeCheckoutAccepted(msgspec.Struct, rename="camel"):
    payment_id: UUID
    outcome: Outcome
    webhook_id: Annotated[
        str, msgspec.Meta(description="The `webhook-id` of the webhook the fake provider sends")
    ]


class WebhookPaymentData(msgspec.Struct, rename="camel"):
    payment_id: UUID
    amount: Annotated[int, msgspec.Meta(ge=0, le=AMOUNT_MAX, description="Minor units")]
    currency: Annotated[str, msgspec.Meta(pattern=CURRENCY_PATTERN)]


# Documentation of the webhook body (the intake reads it with ``payments.domain.parse_notice``,
# after the signature): members a provider adds later are ignored, so the schema allows them.
class PaymentWebhook(msgspec.Struct, rename="camel"):
    type: PaymentEvent
    data: WebhookPaymentData


class StripeCheckoutStarted(msgspec.Struct, rename="camel"):
    payment_id: UUID
    session_id: Annotated[str, msgspec.Meta(description="The Stripe Checkout Session's id")]
    url: Annotated[str, msgspec.Meta(description="Stripe's checkout page: send the buyer there")]


class StripeEventObject(msgspec.Struct):
    """The members read of a Stripe event's object (a payment intent or a checkout session)."""

    metadata: dict[str, str] | None = None
    client_reference_id: str | None = None
    currency: str | None = None
    amount: int | None = None
    amount_received: int | None = None
    amount_total: int | None = None
    payment_status: str | None = None


class StripeEventData(msgspec.Struct):
    object: StripeEventObject


# Documentation of a Stripe event as Stripe sends it (https://docs.stripe.com/api/events): the
# intake reads it with ``payments.stripe.notice_of`` after ``Stripe-Signature``.
class StripeWebhook(msgspec.Struct):
    id: Annotated[str, msgspec.Meta(description="The event id: a redelivery repeats it")]
    type: Annotated[
        str,
        msgspec.Meta(
            description="`checkout.session.completed` (paid), `checkout.session.async_payment_"
            "succeeded`, `payment_intent.succeeded`: a success; `checkout.session.async_payment_"
            "failed`, `payment_intent.payment_failed`: a failure; any other: `ignored`"
        ),
    ]
    data: StripeEventData


class WebhookAck(msgspec.Struct, rename="camel"):
    status: Annotated[
        WebhookResult,
        msgspec.Meta(
            description="`duplicate`: this webhook id was processed before; `ignored`: a verified"
            " webhook about nothing we act on (another event type, a payment that is not ours)"
        ),
    ]


def stripe_webhook_headers() -> list[dict[str, Any]]:
    return [
        {
            "name": "stripe-signature",
            "in": "header",
            "required": True,
            "description": "`t=<Unix seconds>,v1=<hex HMAC-SHA256 of {t}.{body}>`, keyed with the"
            " endpoint's signing secret (Stripe's scheme); older than 5 minutes: 401",
            "schema": {"type": "string", "minLength": 1},
        }
    ]


def webhook_headers() -> list[dict[str, Any]]:
    """The Standard Webhooks headers, as OpenAPI header parameters."""
    return [
        {
            "name": "webhook-id",
            "in": "header",
            "required": True,
            "description": "The delivery's id; a retry repeats it (an id processed before: 200,"
            " nothing changes)",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        },
        {
            "name": "webhook-timestamp",
            "in": "header",
            "required": True,
            "description": "Unix seconds; more than 5 minutes off: 401",
            "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
        },
        {
            "name": "webhook-signature",
            "in": "header",
            "required": True,
            "description": "`v1,<base64 HMAC-SHA256 of {webhook-id}.{webhook-timestamp}.{body}>`,"
            " keyed with the provider's webhook secret; several may be given, space-separated",
            "schema": {"type": "string", "minLength": 1},
        },
    ]
