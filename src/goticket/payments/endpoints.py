"""Routes of the payments context: thin — parse, call one service function, render."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any
from uuid import UUID

from litestar import Request, Response, Router, post
from litestar.background_tasks import BackgroundTask
from litestar.params import FromPath, Parameter

from goticket.kit.bearer import principal_of
from goticket.kit.bodies import read_json
from goticket.kit.openapi import body, errors, header_parameters
from goticket.kit.routes import with_options
from goticket.payments.schemas import (
    FakeCheckoutAccepted,
    FakeCheckoutRequest,
    PaymentWebhook,
    StripeCheckoutStarted,
    StripeWebhook,
    WebhookAck,
    stripe_webhook_headers,
    webhook_headers,
)
from goticket.payments.service import PaymentService

AnyRequest = Request[Any, Any, Any]


def webhook_errors() -> dict[int, Any]:
    answers = errors(400, 401, 404, 413, 422, 503, with_body=False)
    answers[401] = dataclasses.replace(
        answers[401],
        description="`invalid-signature`: a webhook header is missing, no signature matches, or"
        " the timestamp is more than 5 minutes off",
    )
    answers[404] = dataclasses.replace(answers[404], description="No such payment provider")
    return answers


def payments_router(service: PaymentService) -> Router:
    stripe = service.provider == "stripe"
    # The body and headers documented are the configured provider's.
    webhook_doc = (
        body(StripeWebhook) | header_parameters(*stripe_webhook_headers())
        if stripe
        else body(PaymentWebhook) | header_parameters(*webhook_headers())
    )

    @post(
        "/payments/webhooks/{provider:str}",
        status_code=200,
        tags=["payments"],
        opt=webhook_doc,
        responses=webhook_errors(),
    )
    async def receive_webhook(
        request: AnyRequest,
        provider: Annotated[
            str,
            Parameter(description="The configured payment provider's name: `fake` or `stripe`"),
        ],
    ) -> WebhookAck:
        """A payment provider reports a payment's outcome (no bearer token: the body is signed
        as Standard Webhooks, with the provider's webhook secret). The built-in provider is
        `fake`; with `GOTICKET_PAYMENT_PROVIDER=stripe` it is `stripe` (Stripe's events, signed
        with `Stripe-Signature`; event types it does not act on are 200 `ignored`). Any other
        name is a 404.

        401 `invalid-signature` when a signature header is missing, no signature matches, or
        `webhook-timestamp` is more than 5 minutes off: nothing changes. A correctly signed body
        that is not JSON is a 400; one that does not match the schema is a 422 (members it does
        not name are ignored); neither changes anything, nor remembers the `webhook-id`. A
        `webhook-id` processed before is 200 `duplicate` and changes nothing; an unknown
        `paymentId` is 200 (nothing to do). Otherwise 200 `accepted` once the outcome is
        committed: `payment.succeeded` confirms the payment's booking, `payment.failed` marks
        its payment failed (the hold stays until it expires). The content type is not
        checked: the signature vouches for the bytes."""
        raw = await request.body()  # the signature is over these exact bytes
        headers = {name.lower(): value for name, value in request.headers.items()}
        return WebhookAck(await service.receive(provider, headers, raw))

    @post(
        "/payments/fake/{payment_id:uuid}/complete",
        status_code=202,
        tags=["payments"],
        security=[{"bearerAuth": []}],
        opt=body(FakeCheckoutRequest),
        responses=errors(401, 404, 503),
    )
    async def complete_fake_checkout(
        request: AnyRequest, payment_id: FromPath[UUID]
    ) -> Response[FakeCheckoutAccepted]:
        """Play the customer at the fake provider's checkout page (the booking's owner only;
        anyone else, an unknown payment, or a service whose configured provider is not `fake`:
        404). 202: the fake provider then delivers the signed webhook
        (`POST /payments/webhooks/fake`, `payment.succeeded` or `payment.failed` with the
        booking's amount and currency) to the service, as a real provider would, retrying a
        few times if it is not accepted. Each call sends a new webhook."""
        actor = principal_of(request)
        service.ensure_fake_checkout()
        data = await read_json(request, FakeCheckoutRequest)
        delivery = await service.complete_fake(actor, payment_id, data.outcome)
        accepted = FakeCheckoutAccepted(payment_id, data.outcome, delivery.webhook_id)
        # After the 202 is sent: the answer does not wait for the delivery.
        return Response(
            accepted, status_code=202, background=BackgroundTask(service.deliver, delivery)
        )

    @post(
        "/payments/stripe/{payment_id:uuid}/checkout",
        status_code=200,
        tags=["payments"],
        security=[{"bearerAuth": []}],
        responses=errors(401, 404, 503),
    )
    async def start_stripe_checkout(
        request: AnyRequest, payment_id: FromPath[UUID]
    ) -> StripeCheckoutStarted:
        """Open Stripe's checkout page for a hold's payment (the booking's owner only; anyone
        else or an unknown payment: 404): send the buyer to `url`. One Stripe Checkout Session
        per payment: calling again answers the same one. Stripe then reports the outcome to
        `POST /payments/webhooks/stripe`. 503 when Stripe cannot be reached or refuses."""
        actor = principal_of(request)
        session = await service.start_checkout(actor, "stripe", payment_id)
        return StripeCheckoutStarted(session.payment_id, session.session_id, session.url)

    handlers = [receive_webhook, complete_fake_checkout]
    if stripe:  # the route exists only where Stripe is the provider
        handlers.append(start_stripe_checkout)
    return Router("/", route_handlers=with_options(handlers))
