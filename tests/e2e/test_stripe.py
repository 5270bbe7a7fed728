"""An app whose payment provider is Stripe, through HTTP: a hold booked through the API is paid
by a signed Stripe event and confirmed; cancelled, it is refunded through Stripe; the checkout
route opens a Checkout Session. "Stripe" is a stand-in HTTP server on 127.0.0.1 that answers as
Stripe's API would (``GOTICKET_STRIPE_API_BASE``): no request leaves the machine."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import asyncpg
import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from goticket.config import Settings
from goticket.kit.asgi import RequestContext
from tests.bookings_support import assert_booked, assert_invariant
from tests.e2e.test_http_conventions import _resolve, assert_problem
from tests.stripe_support import (
    API_KEY,
    OTHER_STRIPE_SECRET,
    STRIPE_SECRET,
    SUCCESS_URL,
    body_of,
    checkout_session,
    payment_intent,
    stripe_event,
    stripe_headers,
)
from tests.support import Actor, Api, serving

WEBHOOKS = "/payments/webhooks/stripe"
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class LocalStripe:
    """Answers ``POST /v1/checkout/sessions`` and ``POST /v1/refunds`` as Stripe does; writes
    down every request (method, path, headers, form)."""

    requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    down: bool = False  # every answer a 500, as Stripe's API in an outage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append((scope["method"], scope["path"], headers, form))
        status, answer = self._answer(scope["path"], form)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"request-id", b"req_1")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(answer).encode()})

    def _answer(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if self.down:
            return 500, {"error": {"type": "api_error", "message": "An unknown error occurred"}}
        if path == "/v1/checkout/sessions":
            session = f"cs_test_{form['client_reference_id'][:8]}"
            return 200, {
                "id": session,
                "object": "checkout.session",
                "url": f"https://checkout.stripe.com/c/pay/{session}",
                "status": "open",
            }
        if path == "/v1/refunds":
            intent = form["payment_intent"]
            return 200, {"id": "re_1", "object": "refund", "payment_intent": intent}
        error = {"type": "invalid_request_error", "message": f"Unrecognized request URL ({path})"}
        return 404, {"error": error}

    def paths(self) -> list[str]:
        return [path for _, path, _, _ in self.requests]


@pytest.fixture(scope="module")
async def local_stripe() -> AsyncIterator[tuple[LocalStripe, str]]:
    stripe = LocalStripe()
    config = uvicorn.Config(stripe, host="127.0.0.1", port=0, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield stripe, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="module")
def stripe_settings(settings: Settings, local_stripe: tuple[LocalStripe, str]) -> Settings:
    return settings.model_copy(
        update={
            "payment_provider": "stripe",
            "stripe_api_key": SecretStr(API_KEY),
            "stripe_webhook_secret": SecretStr(STRIPE_SECRET),
            "stripe_success_url": SUCCESS_URL,
            "stripe_api_base": local_stripe[1],
        }
    )


@pytest.fixture(scope="module")
async def stripe_app(stripe_settings: Settings) -> AsyncIterator[RequestContext]:
    async with serving(stripe_settings) as application:
        yield application


@pytest.fixture
async def api(
    stripe_app: RequestContext,
    db: asyncpg.Connection[Any],
    stripe_settings: Settings,
    database_url: str,
    local_stripe: tuple[LocalStripe, str],
) -> AsyncIterator[Api]:
    local_stripe[0].requests.clear()
    local_stripe[0].down = False
    transport = httpx.ASGITransport(app=stripe_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://goticket.test") as http:
        yield Api(http, stripe_settings, database_url)


async def hold(api: Api, quantity: int = 2) -> tuple[Actor, dict[str, Any]]:
    event = await api.event(checkout="payment", holdSeconds=300, price=4500, capacity=10)
    fan = await api.user()
    booking = assert_booked(await api.book(fan, event["id"], quantity))
    return fan, booking


async def post_event(api: Api, event: dict[str, Any], **sign: Any) -> httpx.Response:
    body = body_of(event)
    return await api.http.post(WEBHOOKS, content=body, headers=stripe_headers(body, **sign))


async def test_a_signed_payment_intent_succeeded_confirms_the_hold(
    api: Api, db: asyncpg.Connection[Any]
) -> None:
    fan, booking = await hold(api)
    assert booking["status"] == "pending"
    assert booking["payment"]["provider"] == "stripe"
    assert booking["payment"]["checkoutUrl"] == f"/payments/stripe/{booking['id']}/checkout"
    paid = payment_intent(booking["id"], amount=9000, currency="eur")
    response = await post_event(api, stripe_event("payment_intent.succeeded", paid, "evt_paid"))
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "accepted"}
    fetched = (await api.http.get(f"/bookings/{booking['id']}", headers=fan.headers)).json()
    assert fetched["status"] == "confirmed"
    assert fetched["payment"]["status"] == "succeeded"
    tickets = await api.http.get(f"/bookings/{booking['id']}/tickets", headers=fan.headers)
    assert [t["status"] for t in tickets.json()["items"]] == ["valid", "valid"]
    remembered = await db.fetch("SELECT provider, webhook_id FROM payment_webhooks")
    assert [tuple(row) for row in remembered] == [("stripe", "evt_paid")]
    # Stripe redelivers the same event: nothing changes.
    again = await post_event(api, stripe_event("payment_intent.succeeded", paid, "evt_paid"))
    assert again.json() == {"status": "duplicate"}
    await assert_invariant(db)


async def test_a_paid_checkout_session_confirms_and_a_cancel_refunds_through_stripe(
    api: Api, db: asyncpg.Connection[Any], local_stripe: tuple[LocalStripe, str]
) -> None:
    stripe, _ = local_stripe
    fan, booking = await hold(api, 1)
    session = checkout_session(booking["id"], amount=4500, intent_id="pi_3LocalPaid")
    response = await post_event(api, stripe_event("checkout.session.completed", session))
    assert response.json() == {"status": "accepted"}
    cancelled = await api.http.post(f"/bookings/{booking['id']}/cancel", headers=fan.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["payment"]["status"] == "refunded"
    [(method, path, headers, form)] = stripe.requests
    assert (method, path) == ("POST", "/v1/refunds")
    assert form["payment_intent"] == "pi_3LocalPaid"
    assert headers["idempotency-key"] == f"refund-{booking['id']}"
    assert headers["authorization"] == f"Bearer {API_KEY}"
    await assert_invariant(db)


async def test_a_cancel_that_stripe_cannot_refund_is_503_and_changes_nothing(
    api: Api, db: asyncpg.Connection[Any], local_stripe: tuple[LocalStripe, str]
) -> None:
    stripe, _ = local_stripe
    fan, booking = await hold(api, 1)
    paid = payment_intent(booking["id"], amount=4500, intent_id="pi_3Outage")
    await post_event(api, stripe_event("payment_intent.succeeded", paid))
    stripe.down = True
    refused = await api.http.post(f"/bookings/{booking['id']}/cancel", headers=fan.headers)
    assert_problem(refused, 503, "unavailable")
    assert refused.headers["retry-after"]
    assert stripe.paths() == ["/v1/refunds", "/v1/refunds"]  # one retry, the same key
    assert {r[2]["idempotency-key"] for r in stripe.requests} == {f"refund-{booking['id']}"}
    fetched = (await api.http.get(f"/bookings/{booking['id']}", headers=fan.headers)).json()
    assert fetched["status"] == "confirmed"
    assert fetched["payment"]["status"] == "succeeded"
    stripe.down = False
    retried = await api.http.post(f"/bookings/{booking['id']}/cancel", headers=fan.headers)
    assert retried.status_code == 200, retried.text
    assert retried.json()["payment"]["status"] == "refunded"
    await assert_invariant(db)


async def test_a_payment_for_a_cancelled_hold_is_refunded_while_its_event_is_processed(
    api: Api, db: asyncpg.Connection[Any], local_stripe: tuple[LocalStripe, str]
) -> None:
    """The refund needs no search: the payment intent is the one the event names."""
    stripe, _ = local_stripe
    fan, booking = await hold(api, 1)
    cancelled = await api.http.post(f"/bookings/{booking['id']}/cancel", headers=fan.headers)
    assert cancelled.json()["status"] == "cancelled"
    assert stripe.requests == []  # nothing was paid yet: nothing to refund
    late = payment_intent(booking["id"], amount=4500, intent_id="pi_3LatePayment")
    response = await post_event(api, stripe_event("payment_intent.succeeded", late))
    assert response.json() == {"status": "accepted"}
    assert stripe.paths() == ["/v1/refunds"]
    assert stripe.requests[0][3]["payment_intent"] == "pi_3LatePayment"
    fetched = (await api.http.get(f"/bookings/{booking['id']}", headers=fan.headers)).json()
    assert fetched["status"] == "cancelled"
    assert fetched["payment"]["status"] == "refunded"
    await assert_invariant(db)


async def test_a_payment_that_does_not_match_the_hold_is_refunded_whole(
    api: Api, local_stripe: tuple[LocalStripe, str]
) -> None:
    stripe, _ = local_stripe
    fan, booking = await hold(api, 2)  # 9000 EUR
    wrong = payment_intent(booking["id"], amount=100, currency="usd", intent_id="pi_3Wrong")
    response = await post_event(api, stripe_event("payment_intent.succeeded", wrong))
    assert response.json() == {"status": "accepted"}
    [(_, path, _, form)] = stripe.requests
    assert path == "/v1/refunds"
    assert form["payment_intent"] == "pi_3Wrong"
    assert "amount" not in form  # the whole payment goes back, whatever the hold's price
    fetched = (await api.http.get(f"/bookings/{booking['id']}", headers=fan.headers)).json()
    assert fetched["payment"]["status"] == "refunded"


async def test_a_failed_payment_keeps_the_hold(api: Api) -> None:
    fan, booking = await hold(api)
    failed = payment_intent(booking["id"], status="requires_payment_method")
    response = await post_event(api, stripe_event("payment_intent.payment_failed", failed))
    assert response.json() == {"status": "accepted"}
    fetched = (await api.http.get(f"/bookings/{booking['id']}", headers=fan.headers)).json()
    assert fetched["status"] == "pending"
    assert fetched["payment"]["status"] == "failed"


async def test_event_types_we_do_not_act_on_are_acknowledged(
    api: Api, db: asyncpg.Connection[Any]
) -> None:
    fan, booking = await hold(api)
    charge = {"id": "ch_1", "object": "charge", "metadata": {"goticket_payment_id": booking["id"]}}
    response = await post_event(api, stripe_event("charge.succeeded", charge))
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ignored"}
    fetched = (await api.http.get(f"/bookings/{booking['id']}", headers=fan.headers)).json()
    assert fetched["status"] == "pending"
    assert await db.fetchval("SELECT count(*) FROM payment_webhooks") == 0


@pytest.mark.parametrize(
    "headers",
    [
        lambda body: {},  # no Stripe-Signature
        lambda body: stripe_headers(body, OTHER_STRIPE_SECRET),
        lambda body: stripe_headers(body, at=time.time() - 301),
        # Standard Webhooks headers are not Stripe's.
        lambda body: {"webhook-id": "msg_1", "webhook-timestamp": "1", "webhook-signature": "v1,x"},
    ],
)
async def test_a_bad_signature_is_401_and_changes_nothing(
    api: Api, db: asyncpg.Connection[Any], headers: Callable[[bytes], dict[str, str]]
) -> None:
    fan, booking = await hold(api)
    body = body_of(stripe_event("payment_intent.succeeded", payment_intent(booking["id"])))
    response = await api.http.post(WEBHOOKS, content=body, headers=headers(body))
    assert_problem(response, 401, "invalid-signature")
    assert response.headers["www-authenticate"].startswith("Stripe-Signature ")
    fetched = (await api.http.get(f"/bookings/{booking['id']}", headers=fan.headers)).json()
    assert fetched["status"] == "pending"
    assert await db.fetchval("SELECT count(*) FROM payment_webhooks") == 0


async def test_a_signed_body_that_is_not_an_event_is_400(api: Api) -> None:
    body = b"[1, 2, 3]"
    response = await api.http.post(WEBHOOKS, content=body, headers=stripe_headers(body))
    assert_problem(response, 400, "bad-request")


async def test_a_malformed_payment_we_act_on_is_422(api: Api) -> None:
    obj = {**payment_intent("not-a-uuid")}
    response = await post_event(api, stripe_event("payment_intent.succeeded", obj))
    body = assert_problem(response, 422, "validation")
    assert {e["field"] for e in body["errors"]} == {"data.object.metadata.goticket_payment_id"}


async def test_the_fake_provider_is_off(api: Api) -> None:
    fan, booking = await hold(api)
    fake = await api.http.post(
        f"/payments/fake/{booking['id']}/complete",
        json={"outcome": "succeeded"},
        headers=fan.headers,
    )
    assert_problem(fake, 404, "not-found")
    body = body_of(stripe_event("payment_intent.succeeded", payment_intent(booking["id"])))
    other = await api.http.post(
        "/payments/webhooks/fake", content=body, headers=stripe_headers(body)
    )
    assert_problem(other, 404, "not-found")


async def test_the_checkout_route_opens_a_stripe_checkout_for_the_payer(
    api: Api, local_stripe: tuple[LocalStripe, str]
) -> None:
    stripe, _ = local_stripe
    fan, booking = await hold(api, 3)
    stranger = await api.user()
    url = booking["payment"]["checkoutUrl"]
    assert_problem(await api.http.post(url, headers=stranger.headers), 404, "not-found")
    assert_problem(await api.http.post(url), 401, "unauthorized")
    assert stripe.requests == []
    response = await api.http.post(url, headers=fan.headers)
    assert response.status_code == 200, response.text
    session = f"cs_test_{booking['id'][:8]}"
    assert response.json() == {
        "paymentId": booking["id"],
        "sessionId": session,
        "url": f"https://checkout.stripe.com/c/pay/{session}",
    }
    [(method, path, headers, form)] = stripe.requests
    assert (method, path) == ("POST", "/v1/checkout/sessions")
    assert headers["idempotency-key"] == f"checkout-{booking['id']}"
    assert form["line_items[0][price_data][unit_amount]"] == "13500"
    assert form["line_items[0][price_data][currency]"] == "eur"
    assert form["metadata[goticket_payment_id]"] == booking["id"]
    assert form["payment_intent_data[metadata][goticket_payment_id]"] == booking["id"]
    assert form["success_url"] == SUCCESS_URL.replace("{payment_id}", booking["id"])


async def test_the_stripe_routes_are_documented(api: Api) -> None:
    document = (await api.http.get("/openapi.json")).json()
    checkout = document["paths"]["/payments/stripe/{payment_id}/checkout"]["post"]
    assert checkout["security"] == [{"bearerAuth": []}]
    webhook = document["paths"]["/payments/webhooks/{provider}"]["post"]
    headers = {p["name"] for p in webhook["parameters"] if p["in"] == "header"}
    assert headers == {"stripe-signature"}
    schema = webhook["requestBody"]["content"]["application/json"]["schema"]
    event = _resolve(document, schema)
    assert set(event["properties"]) == {"id", "type", "data"}
    answer = checkout["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(_resolve(document, answer)["properties"]) == {"paymentId", "sessionId", "url"}
    assert {"401", "404", "503"} <= set(checkout["responses"])


async def test_the_checkout_route_follows_the_http_conventions(api: Api) -> None:
    fan, booking = await hold(api)
    url = booking["payment"]["checkoutUrl"]
    wrong = await api.http.get(url, headers=fan.headers)
    assert_problem(wrong, 405, "method-not-allowed")
    assert "POST" in wrong.headers["allow"]
    options = await api.http.options(url)
    assert options.status_code in (200, 204)
    assert "POST" in options.headers["allow"]
    not_uuid = await api.http.post("/payments/stripe/not-a-uuid/checkout", headers=fan.headers)
    assert_problem(not_uuid, 404, "not-found")  # a malformed id is no such payment
