"""The payments context without a database: the webhook body rules (a table), the fake
provider's signatures (the ``standardwebhooks`` library both ways), and the service's order of
work on in-memory fakes (the real table is tests/integration/test_payments_repository.py)."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from uuid import UUID, uuid4

import pytest
from pydantic import SecretStr, ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from goticket.config import Settings, webhook_secret_bytes
from goticket.kit.auth import Principal, Role
from goticket.kit.clock import SystemClock
from goticket.kit.errors import InvalidInput
from goticket.payments.domain import (
    AMOUNT_MAX,
    InvalidSignature,
    Outcome,
    PaymentEvent,
    PaymentNotFound,
    PaymentNotice,
    ProviderUnavailable,
    UnknownProvider,
    UnreadableNotice,
    WebhookResult,
    parse_notice,
)
from goticket.payments.fake import FakeProvider, new_webhook_id
from goticket.payments.service import WEBHOOK_RETENTION, FakeDelivery, PaymentService
from tests.payments_support import OTHER_SECRET, SECRET, RecordingOutcomes, signed, webhook_body
from tests.unit.fakes import FakeClock

PAYMENT = UUID("0b8f7f7e-8d0e-4b8a-9a57-5d5f3f0c2a01")


def good(**data: Any) -> dict[str, Any]:
    body = {"paymentId": str(PAYMENT), "amount": 9000, "currency": "EUR"}
    body.update(data)
    return {"type": "payment.succeeded", "data": {k: v for k, v in body.items() if v is not ...}}


# ---------------------------------------------------------------------------- the body rules


def test_a_good_body_is_a_notice() -> None:
    notice = parse_notice("msg_1", good())
    assert notice == PaymentNotice("msg_1", PaymentEvent.SUCCEEDED, PAYMENT, 9000, "EUR")
    failed = parse_notice("msg_2", {**good(), "type": "payment.failed"})
    assert failed.event is PaymentEvent.FAILED


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({}, {"type", "data"}),
        ({"type": "payment.refunded", "data": good()["data"]}, {"type"}),
        ({"type": 1, "data": good()["data"]}, {"type"}),
        ({"type": "payment.succeeded", "data": []}, {"data"}),
        (good(paymentId="not-a-uuid"), {"data.paymentId"}),
        (good(paymentId=42), {"data.paymentId"}),
        (good(paymentId=...), {"data.paymentId"}),
        (good(amount=-1), {"data.amount"}),
        (good(amount=AMOUNT_MAX + 1), {"data.amount"}),
        (good(amount=1.5), {"data.amount"}),
        (good(amount=True), {"data.amount"}),
        (good(amount="9000"), {"data.amount"}),
        (good(amount=...), {"data.amount"}),
        (good(currency="eur"), {"data.currency"}),
        (good(currency="EURO"), {"data.currency"}),
        (good(currency=...), {"data.currency"}),
        (good(amount=None, currency=None), {"data.amount", "data.currency"}),
    ],
)
def test_every_bad_member_is_listed(data: dict[str, Any], fields: set[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_notice("msg", data)
    assert {error.field for error in caught.value.errors} == fields


@pytest.mark.parametrize("data", [[], "text", 1, None])
def test_a_body_that_is_not_an_object_is_unreadable(data: Any) -> None:
    with pytest.raises(UnreadableNotice):
        parse_notice("msg", data)


def test_integral_numbers_are_integers_and_extra_members_are_ignored() -> None:
    data = good(amount=9000.0, method="card")
    data["livemode"] = False
    assert parse_notice("msg", data).amount == 9000


# ---------------------------------------------------------------------------- the fake provider


def test_the_fake_verifies_what_it_signs() -> None:
    fake = FakeProvider(SECRET)
    body = webhook_body(PAYMENT)
    headers = fake.signed_headers("msg_roundtrip", body, datetime.now(UTC))
    notice = fake.verify(headers, body)
    assert notice == PaymentNotice("msg_roundtrip", PaymentEvent.SUCCEEDED, PAYMENT, 9000, "EUR")
    # And what any Standard Webhooks signer signs with the same secret (tests sign with the
    # library directly).
    assert fake.verify(signed(body, webhook_id="msg_lib"), body).webhook_id == "msg_lib"


def test_one_matching_signature_among_several_is_enough() -> None:
    fake = FakeProvider(SECRET)
    body = webhook_body(PAYMENT)
    headers = signed(body)
    other = signed(body, webhook_id=headers["webhook-id"], secret=OTHER_SECRET)
    # Secret rotation: the provider signs with the old and the new secret.
    both = f"{other['webhook-signature']} {headers['webhook-signature']}"
    assert fake.verify({**headers, "webhook-signature": both}, body).payment_id == PAYMENT


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-id": None},
        {"webhook-timestamp": None},
        {"webhook-signature": None},
        {"webhook-signature": ""},
        {"webhook-timestamp": ""},
        {"webhook-timestamp": "1e9"},
        {"webhook-timestamp": "-1"},
        {"webhook-timestamp": "99999999999999999999"},
        {"webhook-timestamp": "nan"},
        {"webhook-signature": "v1,***"},
        {"webhook-signature": "v1a,xyz"},
        {"webhook-id": "msg_other"},
    ],
    ids=repr,
)
def test_every_verification_failure_is_invalid_signature(change: dict[str, str | None]) -> None:
    fake = FakeProvider(SECRET)
    body = webhook_body(PAYMENT)
    headers: dict[str, str] = dict(signed(body, webhook_id="msg_1"))
    for name, value in change.items():
        if value is None:
            headers.pop(name)
        else:
            headers[name] = value
    with pytest.raises(InvalidSignature):
        fake.verify(headers, body)


def test_a_webhook_401_is_not_a_bearer_challenge() -> None:
    assert not InvalidSignature.challenge.lower().startswith("bearer")
    assert InvalidSignature.code == "invalid-signature"


def test_fresh_webhook_ids() -> None:
    ids = {new_webhook_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(i.startswith("msg_") for i in ids)


def test_the_checkout_url_is_the_fake_checkout() -> None:
    url = FakeProvider(SECRET).checkout_url(PAYMENT)
    assert url == f"/payments/fake/{PAYMENT}/complete"


def test_the_tolerance_is_5_minutes_in_the_library_we_rely_on() -> None:
    # standardwebhooks decides the window; if a new version changed it, this fails first.
    hook = Webhook(SECRET)
    body = b"{}"
    for minutes, ok in [(4.9, True), (5.1, False), (-4.9, True), (-5.1, False)]:
        at = datetime.now(UTC) - timedelta(minutes=minutes)
        headers = signed(body, webhook_id="msg_x", at=at)
        if ok:
            hook.verify(body, headers, json_parse=False)
        else:
            with pytest.raises(WebhookVerificationError):
                hook.verify(body, headers, json_parse=False)


# ---------------------------------------------------------------------------- the service


@dataclass
class FakeWebhooks:
    rows: dict[tuple[str, str], datetime] = field(default_factory=dict)

    async def seen(self, provider: str, webhook_id: str) -> bool:
        return (provider, webhook_id) in self.rows

    async def remember(self, provider: str, webhook_id: str, at: datetime) -> bool:
        if (provider, webhook_id) in self.rows:
            return False
        self.rows[(provider, webhook_id)] = at
        return True

    async def forget_before(self, before: datetime) -> int:
        old = [key for key, at in self.rows.items() if at < before]
        for key in old:
            del self.rows[key]
        return len(old)


class FakeUow:
    """Writes stay unless the block leaves without ``commit()`` (then they are undone)."""

    def __init__(self, webhooks: FakeWebhooks, log: list[str], readonly: bool) -> None:
        self.webhooks = webhooks
        self._log = log
        self._readonly = readonly
        self._snapshot: dict[tuple[str, str], datetime] = {}
        self._committed = False

    async def __aenter__(self) -> Self:
        self._snapshot = dict(self.webhooks.rows)
        return self

    async def commit(self) -> None:
        assert not self._readonly
        self._committed = True
        self._log.append("commit")

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._committed:
            self.webhooks.rows = self._snapshot


@dataclass
class Recorder:
    payments: list[str] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)

    def payment(self, outcome: str) -> None:
        self.payments.append(outcome)

    def webhook(self, result: str) -> None:
        self.webhooks.append(result)


@dataclass
class FakePoster:
    answers: list[int | Exception]
    sent: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    async def post(self, path: str, headers: Mapping[str, str], body: bytes) -> int:
        self.sent.append((path, dict(headers), body))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@dataclass
class World:
    service: PaymentService
    outcomes: RecordingOutcomes
    webhooks: FakeWebhooks
    metrics: Recorder
    poster: FakePoster
    fake: FakeProvider


def world(
    *, answers: list[int | Exception] | None = None, provider: Any = None, clock: Any = None
) -> World:
    fake = FakeProvider(SECRET)
    outcomes = RecordingOutcomes()
    webhooks = FakeWebhooks()
    log: list[str] = []
    metrics = Recorder()
    poster = FakePoster(list(answers or []))
    service = PaymentService(
        provider or fake,
        outcomes,
        lambda readonly=False: FakeUow(webhooks, log, readonly),
        clock or SystemClock(),
        fake=fake,
        poster=poster,
        metrics=metrics,
        delivery_waits=(0, 0),
    )
    return World(service, outcomes, webhooks, metrics, poster, fake)


async def test_a_webhook_is_applied_then_remembered() -> None:
    w = world()
    body = webhook_body(PAYMENT)
    result = await w.service.receive("fake", signed(body, webhook_id="msg_a"), body)
    assert result is WebhookResult.ACCEPTED
    assert w.outcomes.calls == [("succeeded", PAYMENT, 9000, "EUR")]
    assert set(w.webhooks.rows) == {("fake", "msg_a")}
    assert (w.metrics.webhooks, w.metrics.payments) == (["accepted"], ["succeeded"])
    again = await w.service.receive("fake", signed(body, webhook_id="msg_a"), body)
    assert again is WebhookResult.DUPLICATE
    assert len(w.outcomes.calls) == 1
    assert w.metrics.webhooks == ["accepted", "duplicate"]


async def test_an_outcome_that_fails_leaves_the_id_unknown_so_the_retry_applies_it() -> None:
    w = world()
    body = webhook_body(PAYMENT, event="payment.failed")
    headers = signed(body, webhook_id="msg_retry")
    w.outcomes.fail_next = ConnectionError("database gone")
    with pytest.raises(ConnectionError):
        await w.service.receive("fake", headers, body)
    assert w.webhooks.rows == {}
    assert await w.service.receive("fake", headers, body) is WebhookResult.ACCEPTED
    assert w.outcomes.calls == [("failed", PAYMENT)]


async def test_refusals_are_counted_and_change_nothing() -> None:
    w = world()
    body = webhook_body(PAYMENT)
    with pytest.raises(InvalidSignature):
        await w.service.receive("fake", signed(body, secret=OTHER_SECRET), body)
    with pytest.raises(InvalidInput):
        raw = b'{"type": "payment.succeeded"}'
        await w.service.receive("fake", signed(raw), raw)
    with pytest.raises(UnknownProvider):
        await w.service.receive("stripe", signed(body), body)
    assert w.metrics.webhooks == ["invalid-signature", "invalid-body"]
    assert (w.outcomes.calls, w.webhooks.rows) == ([], {})


async def test_old_webhook_ids_are_forgotten_after_the_retention() -> None:
    now = datetime(2030, 6, 1, tzinfo=UTC)
    w = world(clock=FakeClock(now))
    w.webhooks.rows = {
        ("fake", "old"): now - WEBHOOK_RETENTION - timedelta(seconds=1),
        ("fake", "kept"): now - WEBHOOK_RETENTION + timedelta(seconds=1),
    }
    assert await w.service.forget_webhooks() == 1
    assert set(w.webhooks.rows) == {("fake", "kept")}
    assert timedelta(hours=24) <= WEBHOOK_RETENTION


async def test_refunds_go_to_the_named_provider_and_are_counted() -> None:
    w = world()
    await w.service.refund(PAYMENT, "fake", 9000, "EUR")
    assert w.metrics.payments == ["refunded"]
    with pytest.raises(ProviderUnavailable):
        await w.service.refund(PAYMENT, "stripe", 9000, "EUR")


def actor(user_id: UUID) -> Principal:
    return Principal(user_id, Role.USER)


async def test_only_the_payer_completes_a_fake_payment() -> None:
    w = world()
    payer = uuid4()
    due = w.outcomes.add(payer, amount=4200, currency="NOK")
    delivery = await w.service.complete_fake(actor(payer), due.payment_id, Outcome.SUCCEEDED)
    assert delivery.webhook_id.startswith("msg_")
    assert parse_notice(delivery.webhook_id, json.loads(delivery.body)) == (
        PaymentNotice(delivery.webhook_id, PaymentEvent.SUCCEEDED, due.payment_id, 4200, "NOK")
    )
    with pytest.raises(PaymentNotFound):
        await w.service.complete_fake(actor(uuid4()), due.payment_id, Outcome.SUCCEEDED)
    with pytest.raises(PaymentNotFound):
        await w.service.complete_fake(actor(payer), uuid4(), Outcome.FAILED)


async def test_no_fake_checkout_when_another_provider_is_configured() -> None:
    @dataclass
    class Other:
        name: str = "other"

        def checkout_url(self, payment_id: UUID) -> str:
            return "https://pay.example/"

        async def refund(self, payment_id: UUID, amount: int, currency: str) -> None:
            pass

        def verify(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
            raise InvalidSignature("no")

    w = world(provider=Other())
    payer = uuid4()
    due = w.outcomes.add(payer)
    with pytest.raises(PaymentNotFound):
        w.service.ensure_fake_checkout()
    with pytest.raises(PaymentNotFound):
        await w.service.complete_fake(actor(payer), due.payment_id, Outcome.SUCCEEDED)
    body = webhook_body(due.payment_id)
    with pytest.raises(UnknownProvider):  # the fake's intake is closed too
        await w.service.receive("fake", signed(body), body)


def delivery() -> FakeDelivery:
    return FakeDelivery("msg_d", PAYMENT, Outcome.SUCCEEDED, webhook_body(PAYMENT))


async def test_a_delivery_is_retried_with_the_same_id_signed_afresh() -> None:
    w = world(answers=[503, ConnectionError("refused"), 200])
    assert await w.service.deliver(delivery()) is True
    assert [path for path, _, _ in w.poster.sent] == ["/payments/webhooks/fake"] * 3
    for _, headers, body in w.poster.sent:
        assert headers["webhook-id"] == "msg_d"
        assert w.fake.verify(headers, body).payment_id == PAYMENT


async def test_a_delivery_gives_up_after_three_attempts_or_a_refusal() -> None:
    w = world(answers=[500, 502, 503])
    assert await w.service.deliver(delivery()) is False
    assert len(w.poster.sent) == 3
    refused = world(answers=[401])
    assert await refused.service.deliver(delivery()) is False
    assert len(refused.poster.sent) == 1


# ---------------------------------------------------------------------------- settings


def test_the_webhook_secret_is_generated_once_and_kept_private(clean_env: Path) -> None:
    settings = Settings(data_dir=clean_env)
    secret = settings.resolved_payment_webhook_secret()
    path = clean_env / "payment-webhook-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == secret + "\n"
    assert len(webhook_secret_bytes(secret)) == 32
    assert Settings(data_dir=clean_env).resolved_payment_webhook_secret() == secret
    assert Settings(data_dir=clean_env / "b").resolved_payment_webhook_secret() != secret
    FakeProvider(secret)  # the library takes it


def test_a_configured_webhook_secret_wins(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOTICKET_PAYMENT_WEBHOOK_SECRET", SECRET)
    assert Settings(data_dir=clean_env).resolved_payment_webhook_secret() == SECRET
    assert not (clean_env / "payment-webhook-secret").exists()


@pytest.mark.parametrize(
    "secret",
    [
        "no-prefix",
        "whsec_",
        "whsec_not base64!",
        "whsec_" + base64.b64encode(b"short").decode(),
        "whsec_" + base64.b64encode(b"x" * 65).decode(),
    ],
)
def test_a_malformed_webhook_secret_is_refused_without_showing_it(
    clean_env: Path, secret: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(data_dir=clean_env, payment_webhook_secret=SecretStr(secret))
    messages = " ".join(str(e["msg"]) for e in caught.value.errors())
    assert secret not in messages or secret == "whsec_"


def test_the_payment_provider_is_fake_by_default_and_fake_or_stripe(clean_env: Path) -> None:
    assert Settings(data_dir=clean_env).payment_provider == "fake"
    with pytest.raises(ValidationError):
        Settings(data_dir=clean_env, payment_provider="paypal")  # type: ignore[arg-type]
