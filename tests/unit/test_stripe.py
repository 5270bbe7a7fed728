"""The Stripe provider without a network: Stripe's events mapped to notices (a table), their
signatures verified (signed here as Stripe signs them), refunds and checkout sessions asserted on
the requests the library would send (its HTTP client answers from memory), and the settings."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import SecretStr, ValidationError

from goticket.config import Settings, describe
from goticket.kit.auth import Principal, Role
from goticket.kit.clock import SystemClock
from goticket.kit.errors import InvalidInput
from goticket.payments.domain import (
    CheckoutSession,
    IgnoredNotice,
    InvalidSignature,
    PaymentDue,
    PaymentEvent,
    PaymentNotFound,
    PaymentNotice,
    ProviderUnavailable,
    UnreadableNotice,
    WebhookResult,
)
from goticket.payments.service import PaymentService
from goticket.payments.stripe import (
    InvalidStripeSignature,
    StripeProvider,
    notice_of,
    payment_intent_of,
)
from tests.payments_support import RecordingOutcomes
from tests.stripe_support import (
    API_KEY,
    CANCEL_URL,
    OTHER_STRIPE_SECRET,
    STRIPE_SECRET,
    SUCCESS_URL,
    Answer,
    MemoryStripeHttp,
    body_of,
    checkout_session,
    payment_intent,
    stripe_error,
    stripe_event,
    stripe_headers,
)
from tests.unit.test_payments import FakeUow, FakeWebhooks, Recorder

PAYMENT = UUID("6f1c0d4e-3b7a-4c55-9d0e-2a8b1c3d4e5f")


def provider(*answers: Answer) -> tuple[StripeProvider, MemoryStripeHttp]:
    http = MemoryStripeHttp(list(answers))
    stripe = StripeProvider(
        API_KEY, STRIPE_SECRET, success_url=SUCCESS_URL, cancel_url=CANCEL_URL, http_client=http
    )
    return stripe, http


# ---------------------------------------------------------------------------- events → notices


def test_a_succeeded_payment_intent_is_a_success_in_upper_case_currency() -> None:
    event = stripe_event("payment_intent.succeeded", payment_intent(PAYMENT, amount=4500))
    assert notice_of(event) == PaymentNotice(
        event["id"], PaymentEvent.SUCCEEDED, PAYMENT, 4500, "EUR"
    )


def test_a_failed_payment_intent_is_a_failure() -> None:
    obj = payment_intent(PAYMENT, amount=4500, currency="usd", status="requires_payment_method")
    event = stripe_event("payment_intent.payment_failed", obj, event_id="evt_failed")
    assert notice_of(event) == PaymentNotice(
        "evt_failed", PaymentEvent.FAILED, PAYMENT, 4500, "USD"
    )


def test_a_paid_checkout_session_is_a_success() -> None:
    event = stripe_event("checkout.session.completed", checkout_session(PAYMENT, amount=13500))
    notice = notice_of(event)
    assert notice == PaymentNotice(event["id"], PaymentEvent.SUCCEEDED, PAYMENT, 13500, "EUR")


def test_a_session_without_metadata_is_read_by_its_client_reference_id() -> None:
    obj = checkout_session(PAYMENT, metadata=False)
    notice = notice_of(stripe_event("checkout.session.completed", obj))
    assert isinstance(notice, PaymentNotice)
    assert notice.payment_id == PAYMENT


@pytest.mark.parametrize(
    ("kind", "outcome"),
    [
        ("checkout.session.async_payment_succeeded", PaymentEvent.SUCCEEDED),
        ("checkout.session.async_payment_failed", PaymentEvent.FAILED),
    ],
)
def test_delayed_session_payments_report_their_outcome(kind: str, outcome: PaymentEvent) -> None:
    obj = checkout_session(PAYMENT, payment_status="paid" if "succeeded" in kind else "unpaid")
    notice = notice_of(stripe_event(kind, obj))
    assert isinstance(notice, PaymentNotice)
    assert notice.event is outcome


@pytest.mark.parametrize(
    "event",
    [
        stripe_event("charge.refunded", {"id": "ch_1", "object": "charge"}),
        stripe_event("customer.created", {"id": "cus_1", "object": "customer"}),
        stripe_event("payment_intent.created", payment_intent(PAYMENT, status="requires_payment")),
        # A delayed payment method: the outcome comes later as async_payment_*.
        stripe_event(
            "checkout.session.completed", checkout_session(PAYMENT, payment_status="unpaid")
        ),
        # Someone else's payment on the same Stripe account.
        stripe_event("payment_intent.succeeded", payment_intent(None)),
        stripe_event("checkout.session.completed", checkout_session(None)),
        {"id": "evt_typeless", "object": "event", "data": {}},
    ],
)
def test_what_we_do_not_act_on_is_ignored(event: dict[str, Any]) -> None:
    notice = notice_of(event)
    assert isinstance(notice, IgnoredNotice)
    assert notice.webhook_id == event["id"]


@pytest.mark.parametrize(
    ("event", "fields"),
    [
        (
            stripe_event("payment_intent.succeeded", payment_intent("not-a-uuid")),
            {"data.object.metadata.goticket_payment_id"},
        ),
        (
            stripe_event("payment_intent.succeeded", {**payment_intent(PAYMENT), "currency": None}),
            {"data.object.currency"},
        ),
        (
            stripe_event(
                "payment_intent.succeeded", {**payment_intent(PAYMENT), "amount_received": -5}
            ),
            {"data.object.amount_received"},
        ),
        (
            stripe_event(
                "checkout.session.completed", {**checkout_session(PAYMENT), "currency": "euro"}
            ),
            {"data.object.currency"},
        ),
        (
            {**stripe_event("payment_intent.succeeded", payment_intent(PAYMENT)), "data": {}},
            {"data.object"},
        ),
        ({**stripe_event("payment_intent.succeeded", payment_intent(PAYMENT)), "id": ""}, {"id"}),
    ],
)
def test_a_malformed_event_we_act_on_is_invalid(event: dict[str, Any], fields: set[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        notice_of(event)
    assert {error.field for error in caught.value.errors} == fields


def test_the_payment_intent_of_an_event() -> None:
    assert payment_intent_of(stripe_event("payment_intent.succeeded", payment_intent(PAYMENT))) == (
        "pi_3TestGoTicket0001"
    )
    session = stripe_event("checkout.session.completed", checkout_session(PAYMENT))
    assert payment_intent_of(session) == "pi_3TestGoTicket0002"
    assert payment_intent_of(stripe_event("charge.refunded", {"id": "ch_1"})) is None


# ---------------------------------------------------------------------------- signatures


def test_a_signed_event_verifies() -> None:
    stripe, http = provider()
    body = body_of(stripe_event("payment_intent.succeeded", payment_intent(PAYMENT), "evt_1"))
    notice = stripe.verify(stripe_headers(body), body)
    assert notice == PaymentNotice("evt_1", PaymentEvent.SUCCEEDED, PAYMENT, 9000, "EUR")
    assert http.sent == []  # verifying is local


def test_one_matching_signature_among_several_is_enough() -> None:
    """Stripe sends one v1 per active secret while an endpoint's secret is being rolled."""
    stripe, _ = provider()
    body = body_of(stripe_event("payment_intent.succeeded", payment_intent(PAYMENT)))
    at = time.time()
    ours = stripe_headers(body, at=at)["stripe-signature"]
    theirs = stripe_headers(body, OTHER_STRIPE_SECRET, at=at)["stripe-signature"]
    header = f"{theirs},{ours.split(',')[1]}"
    assert isinstance(stripe.verify({"stripe-signature": header}, body), PaymentNotice)


def _tamper(body: bytes) -> bytes:
    return body.replace(b"9000", b"9001")


@pytest.mark.parametrize(
    ("headers", "change"),
    [
        (lambda body: {}, None),  # no Stripe-Signature
        (lambda body: {"stripe-signature": ""}, None),
        (lambda body: stripe_headers(body, OTHER_STRIPE_SECRET), None),  # another secret
        (lambda body: stripe_headers(body, at=time.time() - 301), None),  # stale
        (lambda body: stripe_headers(body, at=time.time() - 3600), None),
        (lambda body: stripe_headers(body), _tamper),  # the body changed after signing
        (lambda body: {"stripe-signature": "t=notanumber,v1=abc"}, None),
        (lambda body: {"stripe-signature": "v1=abc"}, None),  # no timestamp
        (lambda body: {"stripe-signature": f"t={int(time.time())}"}, None),  # no v1
        (
            lambda body: {
                "stripe-signature": stripe_headers(body)["stripe-signature"].replace("v1=", "v0=")
            },
            None,
        ),
    ],
)
def test_every_verification_failure_is_invalid_signature(headers: Any, change: Any) -> None:
    stripe, _ = provider()
    body = body_of(stripe_event("payment_intent.succeeded", payment_intent(PAYMENT)))
    sent = headers(body)
    with pytest.raises(InvalidSignature):
        stripe.verify(sent, change(body) if change else body)


def test_a_timestamp_within_the_tolerance_verifies() -> None:
    stripe, _ = provider()
    body = body_of(stripe_event("payment_intent.succeeded", payment_intent(PAYMENT)))
    assert isinstance(
        stripe.verify(stripe_headers(body, at=time.time() - 290), body), PaymentNotice
    )


def test_a_body_that_is_not_utf8_is_invalid_signature() -> None:
    stripe, _ = provider()
    body = b"\xff\xfe not text"
    with pytest.raises(InvalidSignature):
        stripe.verify({"stripe-signature": f"t={int(time.time())},v1=00"}, body)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'"event"', b"42"])
def test_a_signed_body_that_is_not_an_event_is_unreadable(body: bytes) -> None:
    stripe, _ = provider()
    with pytest.raises(UnreadableNotice):
        stripe.verify(stripe_headers(body), body)


def test_the_webhook_401_names_stripes_scheme() -> None:
    stripe, _ = provider()
    with pytest.raises(InvalidStripeSignature) as caught:
        stripe.verify({}, b"{}")
    assert caught.value.code == "invalid-signature"
    assert caught.value.challenge == 'Stripe-Signature realm="goticket-payments"'


# ---------------------------------------------------------------------------- the service


def service_with(
    stripe: StripeProvider, outcomes: RecordingOutcomes | None = None
) -> tuple[PaymentService, RecordingOutcomes, FakeWebhooks, Recorder]:
    outcomes = outcomes or RecordingOutcomes()
    webhooks, metrics = FakeWebhooks(), Recorder()
    log: list[str] = []
    service = PaymentService(
        stripe,
        outcomes,
        lambda readonly=False: FakeUow(webhooks, log, readonly),
        SystemClock(),
        hosted=stripe,
        metrics=metrics,
    )
    return service, outcomes, webhooks, metrics


async def test_the_service_applies_a_stripe_success_and_remembers_the_event_id() -> None:
    stripe, _ = provider()
    service, outcomes, webhooks, metrics = service_with(stripe)
    body = body_of(stripe_event("payment_intent.succeeded", payment_intent(PAYMENT), "evt_ok"))
    assert await service.receive("stripe", stripe_headers(body), body) is WebhookResult.ACCEPTED
    assert outcomes.calls == [("succeeded", PAYMENT, 9000, "EUR")]
    assert set(webhooks.rows) == {("stripe", "evt_ok")}
    again = await service.receive("stripe", stripe_headers(body), body)
    assert again is WebhookResult.DUPLICATE
    assert len(outcomes.calls) == 1
    assert metrics.webhooks == ["accepted", "duplicate"]


async def test_an_ignored_event_is_acknowledged_and_changes_nothing() -> None:
    stripe, _ = provider()
    service, outcomes, webhooks, metrics = service_with(stripe)
    body = body_of(stripe_event("customer.created", {"id": "cus_1", "object": "customer"}))
    assert await service.receive("stripe", stripe_headers(body), body) is WebhookResult.IGNORED
    assert outcomes.calls == []
    assert webhooks.rows == {}  # nothing to remember: its redelivery is ignored again
    assert metrics.webhooks == ["ignored"]
    assert metrics.payments == []


async def test_a_wrong_stripe_signature_changes_nothing() -> None:
    stripe, _ = provider()
    service, outcomes, webhooks, metrics = service_with(stripe)
    body = body_of(stripe_event("payment_intent.succeeded", payment_intent(PAYMENT)))
    with pytest.raises(InvalidSignature):
        await service.receive("stripe", stripe_headers(body, OTHER_STRIPE_SECRET), body)
    assert outcomes.calls == []
    assert webhooks.rows == {}
    assert metrics.webhooks == ["invalid-signature"]


# ---------------------------------------------------------------------------- checkout


def session_answer(
    payment_id: UUID, url: str = "https://checkout.stripe.com/c/pay/cs_test_1"
) -> Answer:
    return Answer(
        200,
        {
            "id": "cs_test_1",
            "object": "checkout.session",
            "url": url,
            "status": "open",
            "metadata": {"goticket_payment_id": str(payment_id)},
        },
    )


async def test_a_checkout_session_is_requested_for_the_hold() -> None:
    stripe, http = provider(session_answer(PAYMENT))
    due = PaymentDue(PAYMENT, uuid4(), 13500, "EUR")
    session = await stripe.start_checkout(due)
    assert session == CheckoutSession(
        PAYMENT, "cs_test_1", "https://checkout.stripe.com/c/pay/cs_test_1"
    )
    [sent] = http.sent
    assert sent.method == "post"
    assert sent.url == "https://api.stripe.com/v1/checkout/sessions"
    assert sent.headers["Authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["Idempotency-Key"] == f"checkout-{PAYMENT}"
    assert sent.form == {
        "mode": "payment",
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "eur",
        "line_items[0][price_data][unit_amount]": "13500",
        "line_items[0][price_data][product_data][name]": "GoTicket booking",
        "client_reference_id": str(PAYMENT),
        "metadata[goticket_payment_id]": str(PAYMENT),
        "payment_intent_data[metadata][goticket_payment_id]": str(PAYMENT),
        "success_url": f"https://tickets.example/bookings/{PAYMENT}?session={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"https://tickets.example/bookings/{PAYMENT}",
    }


async def test_stripe_refusing_a_checkout_is_unavailable() -> None:
    stripe, _ = provider(stripe_error(400, "amount_too_small"))
    with pytest.raises(ProviderUnavailable):
        await stripe.start_checkout(PaymentDue(PAYMENT, uuid4(), 1, "EUR"))


async def test_only_the_payer_opens_the_checkout_and_only_under_stripe() -> None:
    stripe, http = provider(session_answer(PAYMENT))
    service, outcomes, _, _ = service_with(stripe)
    payer = uuid4()
    due = outcomes.add(payer, amount=2500, currency="USD")
    with pytest.raises(PaymentNotFound):  # someone else
        await service.start_checkout(Principal(uuid4(), Role.USER), "stripe", due.payment_id)
    with pytest.raises(PaymentNotFound):  # no such payment
        await service.start_checkout(Principal(payer, Role.USER), "stripe", uuid4())
    with pytest.raises(PaymentNotFound):  # not the configured provider
        await service.start_checkout(Principal(payer, Role.USER), "fake", due.payment_id)
    assert http.sent == []
    session = await service.start_checkout(Principal(payer, Role.USER), "stripe", due.payment_id)
    assert session.url.startswith("https://checkout.stripe.com/")
    assert http.sent[0].form["line_items[0][price_data][unit_amount]"] == "2500"
    assert http.sent[0].form["line_items[0][price_data][currency]"] == "usd"


# ---------------------------------------------------------------------------- refunds


def refund_answer(intent: str) -> Answer:
    return Answer(
        200, {"id": "re_1", "object": "refund", "payment_intent": intent, "status": "succeeded"}
    )


async def test_a_refund_after_the_payments_webhook_uses_the_intent_it_named() -> None:
    stripe, http = provider(refund_answer("pi_3TestGoTicket0001"))
    body = body_of(stripe_event("payment_intent.succeeded", payment_intent(PAYMENT)))
    stripe.verify(stripe_headers(body), body)
    await stripe.refund(PAYMENT, 9000, "EUR")
    [sent] = http.sent
    assert (sent.method, sent.path) == ("post", "/v1/refunds")
    assert sent.headers["Idempotency-Key"] == f"refund-{PAYMENT}"
    assert sent.form == {
        "payment_intent": "pi_3TestGoTicket0001",
        "reason": "requested_by_customer",
        "metadata[goticket_payment_id]": str(PAYMENT),
    }


async def test_only_the_latest_intents_are_remembered_the_others_are_searched() -> None:
    http = MemoryStripeHttp()
    stripe = StripeProvider(
        API_KEY, STRIPE_SECRET, success_url=SUCCESS_URL, http_client=http, remembered=2
    )
    payments = [uuid4() for _ in range(3)]
    for number, payment_id in enumerate(payments):
        obj = payment_intent(payment_id, intent_id=f"pi_{number}")
        body = body_of(stripe_event("payment_intent.succeeded", obj))
        stripe.verify(stripe_headers(body), body)
    http.answers = [
        Answer(200, {"object": "search_result", "data": [], "has_more": False, "url": "/"}),
        refund_answer("pi_2"),
    ]
    with pytest.raises(ProviderUnavailable):  # the oldest was forgotten: a search, empty here
        await stripe.refund(payments[0], 9000, "EUR")
    await stripe.refund(payments[2], 9000, "EUR")
    assert [sent.path for sent in http.sent] == ["/v1/payment_intents/search", "/v1/refunds"]
    assert http.sent[1].form["payment_intent"] == "pi_2"


async def test_the_provider_closes_the_http_client_it_made() -> None:
    stripe = StripeProvider(API_KEY, STRIPE_SECRET, success_url=SUCCESS_URL)
    assert stripe.name == "stripe"
    assert stripe.checkout_url(PAYMENT) == f"/payments/stripe/{PAYMENT}/checkout"
    await stripe.close()  # no request was made: closing sends nothing either


async def test_a_refund_finds_the_intent_by_its_metadata() -> None:
    found = Answer(
        200,
        {
            "object": "search_result",
            "data": [payment_intent(PAYMENT, intent_id="pi_found")],
            "has_more": False,
            "url": "/v1/payment_intents/search",
        },
    )
    stripe, http = provider(found, refund_answer("pi_found"))
    await stripe.refund(PAYMENT, 9000, "EUR")
    search, refund = http.sent
    assert (search.method, search.path) == ("get", "/v1/payment_intents/search")
    assert search.query["query"] == [
        f"metadata['goticket_payment_id']:'{PAYMENT}' AND status:'succeeded'"
    ]
    assert refund.form["payment_intent"] == "pi_found"


async def test_a_payment_stripe_does_not_list_yet_is_not_refunded_silently() -> None:
    nothing = Answer(
        200,
        {
            "object": "search_result",
            "data": [],
            "has_more": False,
            "url": "/v1/payment_intents/search",
        },
    )
    stripe, http = provider(nothing)
    with pytest.raises(ProviderUnavailable):
        await stripe.refund(PAYMENT, 9000, "EUR")
    assert [sent.path for sent in http.sent] == ["/v1/payment_intents/search"]


async def test_an_already_refunded_payment_is_done() -> None:
    stripe, _ = provider(stripe_error(400, "charge_already_refunded"))
    body = body_of(stripe_event("payment_intent.succeeded", payment_intent(PAYMENT)))
    stripe.verify(stripe_headers(body), body)
    await stripe.refund(PAYMENT, 9000, "EUR")  # no error


@pytest.mark.parametrize(
    "answer",
    [
        stripe_error(400, "resource_missing"),
        stripe_error(401, "api_key_expired", "invalid_request_error"),
        stripe_error(429, "rate_limit"),
        Answer(500, {"error": {"type": "api_error", "message": "boom"}}),
    ],
)
async def test_a_refund_stripe_refuses_is_unavailable(answer: Answer) -> None:
    stripe, _ = provider(answer, answer)  # one retry at most, on what Stripe may retry
    body = body_of(stripe_event("payment_intent.succeeded", payment_intent(PAYMENT)))
    stripe.verify(stripe_headers(body), body)
    with pytest.raises(ProviderUnavailable):
        await stripe.refund(PAYMENT, 9000, "EUR")


async def test_refunds_through_the_service_reach_stripe() -> None:
    stripe, http = provider(refund_answer("pi_3TestGoTicket0001"))
    service, _, _, metrics = service_with(stripe)
    body = body_of(stripe_event("payment_intent.succeeded", payment_intent(PAYMENT)))
    await service.receive("stripe", stripe_headers(body), body)
    with pytest.raises(ProviderUnavailable):
        await service.refund(PAYMENT, "fake", 9000, "EUR")
    await service.refund(PAYMENT, "stripe", 9000, "EUR")
    assert [sent.path for sent in http.sent] == ["/v1/refunds"]
    assert metrics.payments == ["succeeded", "refunded"]


# ---------------------------------------------------------------------------- settings


def test_stripe_refuses_to_start_without_its_settings(clean_env: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(data_dir=clean_env, payment_provider="stripe")
    message = describe(caught.value)
    for name in (
        "GOTICKET_STRIPE_API_KEY",
        "GOTICKET_STRIPE_WEBHOOK_SECRET",
        "GOTICKET_STRIPE_SUCCESS_URL",
    ):
        assert name in message
    assert "GOTICKET_PAYMENT_PROVIDER is stripe" in message


def test_stripe_settings_from_the_environment(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOTICKET_PAYMENT_PROVIDER", "stripe")
    monkeypatch.setenv("GOTICKET_STRIPE_API_KEY", API_KEY)
    monkeypatch.setenv("GOTICKET_STRIPE_WEBHOOK_SECRET", STRIPE_SECRET)
    monkeypatch.setenv("GOTICKET_STRIPE_SUCCESS_URL", SUCCESS_URL)
    settings = Settings(data_dir=clean_env)
    assert settings.payment_provider == "stripe"
    assert settings.stripe_api_key is not None
    assert settings.stripe_api_key.get_secret_value() == API_KEY
    assert API_KEY not in repr(settings)  # a secret
    assert settings.missing_for_provider() == []


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("stripe_api_key", SecretStr("pk_test_publishable")),
        ("stripe_webhook_secret", SecretStr("not-whsec")),
        ("stripe_success_url", "tickets.example/done"),
        ("stripe_api_base", "localhost:12111"),
    ],
)
def test_malformed_stripe_settings_are_refused_without_showing_secrets(
    clean_env: Path, member: str, value: Any
) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(data_dir=clean_env, **{member: value})
    message = describe(caught.value)
    assert f"GOTICKET_{member.upper()}" in message
    assert "pk_test_publishable" not in message
    assert "not-whsec" not in message


def test_the_fake_needs_no_stripe_settings(clean_env: Path) -> None:
    assert Settings(data_dir=clean_env).missing_for_provider() == []
