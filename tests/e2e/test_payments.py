"""Payment webhooks and the fake checkout through HTTP, on an app whose ``PaymentOutcomes`` is a
recording one (booking's checkout is wired by the lead; the full hold → pay → confirmed flow is
tested there). The signature rules: Standard Webhooks, 5 minutes of tolerance either way, every
refusal a 401 that changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from goticket.config import Settings
from goticket.kit.asgi import RequestContext
from tests.e2e.test_http_conventions import assert_problem
from tests.payments_support import (
    OTHER_SECRET,
    SECRET,
    RecordingOutcomes,
    minutes_ago,
    signed,
    webhook_body,
)
from tests.support import Api, serving

WEBHOOKS = "/payments/webhooks/fake"


@pytest.fixture(scope="module")
def outcomes() -> RecordingOutcomes:
    return RecordingOutcomes()


@pytest.fixture(scope="module")
def payment_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"payment_webhook_secret": SecretStr(SECRET)})


@pytest.fixture(scope="module")
async def payments_app(
    payment_settings: Settings, outcomes: RecordingOutcomes
) -> AsyncIterator[RequestContext]:
    async with serving(payment_settings, outcomes=outcomes) as application:
        yield application


@pytest.fixture
async def pay(
    payments_app: RequestContext,
    db: asyncpg.Connection[Any],
    payment_settings: Settings,
    database_url: str,
    outcomes: RecordingOutcomes,
) -> AsyncIterator[Api]:
    outcomes.calls.clear()
    outcomes.due.clear()
    transport = httpx.ASGITransport(app=payments_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://goticket.test") as http:
        yield Api(http, payment_settings, database_url)


async def remembered(db: asyncpg.Connection[Any]) -> list[str]:
    rows = await db.fetch("SELECT webhook_id FROM payment_webhooks WHERE provider = 'fake'")
    return [row["webhook_id"] for row in rows]


async def post_webhook(api: Api, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await api.http.post(WEBHOOKS, content=body, headers=headers)


# ---------------------------------------------------------------------------- signatures


async def test_a_signed_webhook_is_applied_and_its_id_remembered(
    pay: Api, outcomes: RecordingOutcomes, db: asyncpg.Connection[Any]
) -> None:
    payment_id = uuid4()
    body = webhook_body(payment_id, amount=12345, currency="USD")
    headers = signed(body, webhook_id="msg_first")
    response = await post_webhook(pay, body, headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "accepted"}
    assert outcomes.calls == [("succeeded", payment_id, 12345, "USD")]
    assert await remembered(db) == ["msg_first"]


async def test_a_failed_payment_is_reported_as_failed(
    pay: Api, outcomes: RecordingOutcomes
) -> None:
    payment_id = uuid4()
    body = webhook_body(payment_id, event="payment.failed")
    response = await post_webhook(pay, body, signed(body))
    assert response.status_code == 200, response.text
    assert outcomes.calls == [("failed", payment_id)]


async def test_a_webhook_id_processed_before_changes_nothing(
    pay: Api, outcomes: RecordingOutcomes, db: asyncpg.Connection[Any]
) -> None:
    body = webhook_body(uuid4())
    first = await post_webhook(pay, body, signed(body, webhook_id="msg_twice"))
    # A provider's retry: the same id, signed again a little later.
    again = await post_webhook(pay, body, signed(body, webhook_id="msg_twice"))
    assert first.json() == {"status": "accepted"}
    assert again.status_code == 200, again.text
    assert again.json() == {"status": "duplicate"}
    assert len(outcomes.calls) == 1
    assert await remembered(db) == ["msg_twice"]


async def test_concurrent_deliveries_of_one_webhook_are_accepted_once(
    pay: Api, db: asyncpg.Connection[Any]
) -> None:
    body = webhook_body(uuid4())
    headers = signed(body, webhook_id="msg_at_once")
    answers = await asyncio.gather(*(post_webhook(pay, body, headers) for _ in range(8)))
    assert {a.status_code for a in answers} == {200}
    statuses = sorted(a.json()["status"] for a in answers)
    assert statuses == ["accepted"] + ["duplicate"] * 7
    assert await remembered(db) == ["msg_at_once"]


async def test_an_unknown_payment_is_acknowledged(pay: Api, db: asyncpg.Connection[Any]) -> None:
    # The recording outcomes, like booking's checkout, treat an unknown payment as nothing to do.
    body = webhook_body(uuid4())
    response = await post_webhook(pay, body, signed(body, webhook_id="msg_unknown"))
    assert response.status_code == 200, response.text
    assert await remembered(db) == ["msg_unknown"]


def _without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != name}


def _refusals() -> dict[str, Any]:
    """name -> (body as signed, body as sent, headers): every one must be a 401."""
    body = webhook_body(UUID("7b0c6a8e-3f0e-4d38-9a0a-0d8d6f4a1c11"))
    ok = signed(body)
    return {
        "no-id": (body, _without(ok, "webhook-id")),
        "no-timestamp": (body, _without(ok, "webhook-timestamp")),
        "no-signature": (body, _without(ok, "webhook-signature")),
        "no-headers": (body, {"content-type": "application/json"}),
        "other-secret": (body, signed(body, secret=OTHER_SECRET)),
        "tampered-body": (body.replace(b"9000", b"1"), ok),
        "other-id": (body, {**ok, "webhook-id": "msg_not_the_signed_one"}),
        "garbled-signature": (body, {**ok, "webhook-signature": "v1,bm90LWEtc2lnbmF0dXJl"}),
        "unversioned-signature": (body, {**ok, "webhook-signature": ok["webhook-signature"][3:]}),
        "stale": (body, signed(body, at=minutes_ago(5.5))),
        "from-the-future": (body, signed(body, at=minutes_ago(-5.5))),
        "fractional-timestamp": (body, {**ok, "webhook-timestamp": ok["webhook-timestamp"] + ".0"}),
        "word-timestamp": (body, {**ok, "webhook-timestamp": "now"}),
    }


@pytest.mark.parametrize("case", sorted(_refusals()))
async def test_a_bad_signature_is_401_and_changes_nothing(
    pay: Api, outcomes: RecordingOutcomes, db: asyncpg.Connection[Any], case: str
) -> None:
    body, headers = _refusals()[case]
    response = await post_webhook(pay, body, headers)
    assert_problem(response, 401, "invalid-signature")
    # Not a bearer token that is missing: the challenge names the webhook's own scheme.
    assert not response.headers["www-authenticate"].lower().startswith("bearer")
    assert outcomes.calls == []
    assert await remembered(db) == []


@pytest.mark.parametrize("minutes", [-4.5, 4.5])
async def test_a_timestamp_within_5_minutes_either_way_is_accepted(
    pay: Api, outcomes: RecordingOutcomes, minutes: float
) -> None:
    body = webhook_body(uuid4())
    response = await post_webhook(pay, body, signed(body, at=minutes_ago(minutes)))
    assert response.status_code == 200, response.text
    assert len(outcomes.calls) == 1


async def test_a_webhook_needs_no_bearer_token_and_ignores_one(pay: Api) -> None:
    body = webhook_body(uuid4())
    headers = {**signed(body), "Authorization": "Bearer not-a-token"}
    response = await post_webhook(pay, body, headers)
    assert response.status_code == 200, response.text


# ---------------------------------------------------------------------------- signed but bad


@pytest.mark.parametrize(
    "raw", [b"{", b"not json", b"[1, 2]", b'"text"', b"null", b"\xff\xfe"], ids=repr
)
async def test_a_signed_body_that_is_not_a_json_object_is_400(
    pay: Api, outcomes: RecordingOutcomes, db: asyncpg.Connection[Any], raw: bytes
) -> None:
    response = await post_webhook(pay, raw, signed(raw))
    assert_problem(response, 400, "bad-request")
    assert outcomes.calls == []
    assert await remembered(db) == []


async def test_a_signed_body_off_the_schema_is_422_listing_every_field(
    pay: Api, outcomes: RecordingOutcomes, db: asyncpg.Connection[Any]
) -> None:
    raw = b'{"type": "payment.refunded", "data": {"paymentId": "x", "amount": -1}}'
    response = await post_webhook(pay, raw, signed(raw))
    problem = assert_problem(response, 422, "validation")
    fields = {error["field"] for error in problem["errors"]}
    assert fields == {"type", "data.paymentId", "data.amount", "data.currency"}
    assert outcomes.calls == []
    assert await remembered(db) == []


async def test_members_a_provider_adds_are_ignored(pay: Api, outcomes: RecordingOutcomes) -> None:
    payment_id = uuid4()
    raw = (
        b'{"type": "payment.succeeded", "livemode": false, "data": {"paymentId": "'
        + str(payment_id).encode()
        + b'", "amount": 9000.0, "currency": "EUR", "method": "card"}}'
    )
    response = await post_webhook(pay, raw, signed(raw))
    assert response.status_code == 200, response.text
    assert outcomes.calls == [("succeeded", payment_id, 9000, "EUR")]


async def test_an_unknown_provider_is_404(pay: Api) -> None:
    body = webhook_body(uuid4())
    for provider in ("stripe", "FAKE", "fake2"):
        response = await pay.http.post(
            f"/payments/webhooks/{provider}", content=body, headers=signed(body)
        )
        assert_problem(response, 404, "not-found")


async def test_a_webhook_over_64_kib_is_413(pay: Api) -> None:
    raw = b'{"pad": "' + b"x" * (64 * 1024) + b'"}'
    response = await post_webhook(pay, raw, signed(raw))
    assert_problem(response, 413, "payload-too-large")


# ---------------------------------------------------------------------------- the fake checkout


def complete_path(payment_id: UUID | str) -> str:
    return f"/payments/fake/{payment_id}/complete"


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
async def test_the_fake_checkout_delivers_a_signed_webhook(
    pay: Api, outcomes: RecordingOutcomes, db: asyncpg.Connection[Any], outcome: str
) -> None:
    owner = await pay.user()
    due = outcomes.add(owner.id, amount=7500, currency="SEK")
    response = await pay.http.post(
        complete_path(due.payment_id), json={"outcome": outcome}, headers=owner.headers
    )
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["paymentId"] == str(due.payment_id)
    assert answer["outcome"] == outcome
    # Through the ASGI transport the delivery (a background task after the 202) has run by the
    # time the call returns: the webhook came in through the front door, signature and all.
    expected = (
        ("succeeded", due.payment_id, 7500, "SEK")
        if outcome == "succeeded"
        else ("failed", due.payment_id)
    )
    assert outcomes.calls == [expected]
    assert await remembered(db) == [answer["webhookId"]]
    assert answer["webhookId"].startswith("msg_")


async def test_each_fake_checkout_call_sends_a_new_webhook(
    pay: Api, outcomes: RecordingOutcomes, db: asyncpg.Connection[Any]
) -> None:
    owner = await pay.user()
    due = outcomes.add(owner.id)
    ids = set()
    for outcome in ("failed", "succeeded"):
        response = await pay.http.post(
            complete_path(due.payment_id), json={"outcome": outcome}, headers=owner.headers
        )
        assert response.status_code == 202, response.text
        ids.add(response.json()["webhookId"])
    assert [call[0] for call in outcomes.calls] == ["failed", "succeeded"]
    assert set(await remembered(db)) == ids
    assert len(ids) == 2


async def test_only_the_payer_may_complete_a_payment(
    pay: Api, outcomes: RecordingOutcomes, db: asyncpg.Connection[Any]
) -> None:
    owner = await pay.user()
    stranger = await pay.user()
    admin = await pay.user("admin")
    due = outcomes.add(owner.id)
    for actor in (stranger, admin):
        response = await pay.http.post(
            complete_path(due.payment_id), json={"outcome": "succeeded"}, headers=actor.headers
        )
        assert_problem(response, 404, "not-found")
    unknown = await pay.http.post(
        complete_path(uuid4()), json={"outcome": "succeeded"}, headers=owner.headers
    )
    assert_problem(unknown, 404, "not-found")
    malformed = await pay.http.post(
        complete_path("not-a-uuid"), json={"outcome": "succeeded"}, headers=owner.headers
    )
    assert_problem(malformed, 404, "not-found")
    assert outcomes.calls == []
    assert await remembered(db) == []


async def test_the_fake_checkout_needs_a_bearer_token(
    pay: Api, outcomes: RecordingOutcomes
) -> None:
    owner = await pay.user()
    due = outcomes.add(owner.id)
    response = await pay.http.post(complete_path(due.payment_id), json={"outcome": "succeeded"})
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert outcomes.calls == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"outcome": "paid"}, 422),
        ({}, 422),
        ({"outcome": "succeeded", "amount": 1}, 422),
        (None, 400),
    ],
)
async def test_the_fake_checkout_body_rules(
    pay: Api, outcomes: RecordingOutcomes, body: Any, status: int
) -> None:
    owner = await pay.user()
    due = outcomes.add(owner.id)
    response = await pay.http.post(
        complete_path(due.payment_id),
        content=b"" if body is None else None,
        json=body,
        headers={**owner.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == status, response.text
    assert outcomes.calls == []


# ---------------------------------------------------------------------------- the default app


async def test_the_default_app_generates_its_webhook_secret(
    api: Api, settings: Settings, db: asyncpg.Connection[Any]
) -> None:
    # No secret configured: one was generated into the data folder, and it is the one checked.
    secret = (settings.data_dir / "payment-webhook-secret").read_text().strip()
    assert secret == settings.resolved_payment_webhook_secret()
    body = webhook_body(uuid4())
    accepted = await post_webhook(
        api, body, signed(body, webhook_id="msg_generated", secret=secret)
    )
    assert accepted.status_code == 200, accepted.text
    refused = await post_webhook(api, body, signed(body, secret=SECRET))
    assert_problem(refused, 401, "invalid-signature")
    assert await remembered(db) == ["msg_generated"]


async def test_the_default_app_knows_no_payment_yet(api: Api) -> None:
    # Until booking's checkout is wired, no payment exists: the fake checkout is a 404.
    user = await api.user()
    response = await api.http.post(
        complete_path(uuid4()), json={"outcome": "succeeded"}, headers=user.headers
    )
    assert_problem(response, 404, "not-found")


# ---------------------------------------------------------------------------- metrics


async def test_webhooks_and_payments_are_counted(pay: Api, payment_settings: Settings) -> None:
    body = webhook_body(uuid4())
    headers = signed(body)
    for _ in range(2):
        await post_webhook(pay, body, headers)
    await post_webhook(pay, body, signed(body, secret=OTHER_SECRET))
    scrape = await pay.http.get(
        "/metrics",
        headers={"Authorization": f"Bearer {payment_settings.resolved_metrics_token()}"},
    )
    assert scrape.status_code == 200
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in scrape.text.splitlines()
        if line.startswith(("goticket_payment_webhooks_total", "goticket_payments_total"))
    }
    assert samples['goticket_payment_webhooks_total{result="accepted"}'] >= 1
    assert samples['goticket_payment_webhooks_total{result="duplicate"}'] >= 1
    assert samples['goticket_payment_webhooks_total{result="invalid-signature"}'] >= 1
    assert samples['goticket_payments_total{outcome="succeeded"}'] >= 1


# ---------------------------------------------------------------------------- OpenAPI


async def test_the_document_describes_both_routes(pay: Api) -> None:
    document = (await pay.http.get("/openapi.json")).json()
    intake = document["paths"]["/payments/webhooks/{provider}"]["post"]
    assert "security" not in intake  # signed, not authenticated by a bearer token
    headers = {p["name"]: p for p in intake["parameters"] if p["in"] == "header"}
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert all(p["required"] for p in headers.values())
    assert {"200", "400", "401", "404", "413", "422"} <= set(intake["responses"])
    assert "invalid-signature" in intake["responses"]["401"]["description"]
    webhook = document["components"]["schemas"]["PaymentWebhook"]
    assert set(webhook["properties"]) == {"type", "data"}
    checkout = document["paths"]["/payments/fake/{payment_id}/complete"]["post"]
    assert checkout["security"] == [{"bearerAuth": []}]
    assert {"202", "401", "404", "422"} <= set(checkout["responses"])
    request = document["components"]["schemas"]["FakeCheckoutRequest"]
    assert request["additionalProperties"] is False
    assert request["required"] == ["outcome"]


# ---------------------------------------------------------------------------- a real server


async def test_under_uvicorn_the_webhook_follows_the_202(
    payment_settings: Settings, db: asyncpg.Connection[Any], database_url: str
) -> None:
    """Over a socket the delivery (a background task of the 202) runs after the answer is sent;
    the webhook still arrives, through the service's own front door."""
    recording = RecordingOutcomes()
    async with serving(payment_settings, outcomes=recording) as application:
        config = uvicorn.Config(
            application, host="127.0.0.1", port=0, log_config=None, lifespan="off"
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        try:
            while not server.started:
                await asyncio.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                api = Api(http, payment_settings, database_url)
                owner = await api.user()
                due = recording.add(owner.id, amount=1234, currency="DKK")
                response = await http.post(
                    complete_path(due.payment_id),
                    json={"outcome": "succeeded"},
                    headers=owner.headers,
                )
                assert response.status_code == 202, response.text
                for _ in range(200):
                    if recording.calls:
                        break
                    await asyncio.sleep(0.02)
            assert recording.calls == [("succeeded", due.payment_id, 1234, "DKK")]
            assert await remembered(db) == [response.json()["webhookId"]]
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 10)
