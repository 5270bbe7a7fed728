"""The built-in ``fake`` payment provider: no account, no money. Its checkout is
``POST /payments/fake/{paymentId}/complete``; it then delivers a webhook signed as Standard
Webhooks (https://www.standardwebhooks.com/) to the service's own intake, as a real provider
would. Signing and verifying are the ``standardwebhooks`` library's, never an HMAC of our own."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from datetime import datetime
from uuid import UUID, uuid4

import httpx
import msgspec
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from goticket.kit.asgi import ASGIApp
from goticket.kit.errors import InvalidInput
from goticket.kit.logging import get_logger
from goticket.payments.domain import (
    InvalidSignature,
    PaymentNotice,
    UnreadableNotice,
    is_webhook_id,
    parse_notice,
)

NAME = "fake"
CHECKOUT_PATH = "/payments/fake/{payment_id}/complete"
# Unix seconds, as the spec writes them. The library would also take "1.7e9" (and sign the
# floored value): an integer only, so that the signed text is the header's text.
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
# What standardwebhooks raises: its own error for every documented failure; the others are
# headers it could not read at all. Every one of them is the same 401.
_VERIFY_FAILURES = (WebhookVerificationError, ValueError, TypeError, OverflowError)

log = get_logger("goticket.payments")


def new_webhook_id() -> str:
    return f"msg_{uuid4().hex}"


class FakeProvider:
    def __init__(self, secret: str) -> None:
        self._webhook = Webhook(secret)

    @property
    def name(self) -> str:
        return NAME

    def checkout_url(self, payment_id: UUID) -> str:
        return CHECKOUT_PATH.format(payment_id=payment_id)

    async def refund(self, payment_id: UUID, amount: int, currency: str) -> None:
        # No money moved, none to give back: the refund is only written down.
        log.info("fake refund", payment_id=str(payment_id), amount=amount, currency=currency)

    async def close(self) -> None:
        pass  # nothing held

    def verify(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        timestamp = headers.get("webhook-timestamp", "")
        if not _TIMESTAMP.fullmatch(timestamp):
            raise InvalidSignature("webhook-timestamp must be Unix seconds")
        try:
            # Checks the three headers, the timestamp within 5 minutes either way, and the
            # signature over the exact bytes received.
            self._webhook.verify(body, dict(headers), json_parse=False)
        except _VERIFY_FAILURES:
            raise InvalidSignature(
                "the webhook signature is missing or wrong, or its timestamp is more than 5"
                " minutes off"
            ) from None
        webhook_id = headers["webhook-id"]
        if not is_webhook_id(webhook_id):
            raise InvalidInput.single("webhook-id", "must be 1 to 255 printable characters")
        try:
            data = msgspec.json.decode(body)
        except (msgspec.DecodeError, RecursionError):
            raise UnreadableNotice("the webhook body is not valid JSON") from None
        return parse_notice(webhook_id, data)

    def signed_headers(self, webhook_id: str, body: bytes, at: datetime) -> dict[str, str]:
        """The headers that sign ``body`` as sent at ``at`` (a retry signs again, same id)."""
        return {
            "content-type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": self._webhook.sign(webhook_id, at, body),
        }


class LoopbackPoster:
    """Posts to this very service through its ASGI app: HTTP semantics (routing, the signature
    over the bytes, the request log) without a socket. The app is bound after it is built."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.app: ASGIApp | None = None
        self._timeout = timeout

    async def post(self, path: str, headers: Mapping[str, str], body: bytes) -> int:
        if self.app is None:
            raise RuntimeError("the loopback poster has no app yet")
        transport = httpx.ASGITransport(app=self.app)
        async with (
            asyncio.timeout(self._timeout),
            httpx.AsyncClient(transport=transport, base_url="http://goticket.internal") as client,
        ):
            response = await client.post(path, content=body, headers=dict(headers))
        return response.status_code
