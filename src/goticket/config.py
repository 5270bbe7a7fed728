"""Settings: every knob is a ``GOTICKET_*`` environment variable (a ``.env`` file is optional)."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from goticket.kit.files import create_once

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GOTICKET_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: SecretStr | None = Field(
        default=None, description="PostgreSQL URL; unset means an embedded PostgreSQL 16"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64)
    data_dir: Path = Path(".goticket")
    jwt_secret: SecretStr | None = None
    jwt_issuer: str = "goticket"
    jwt_audience: str = "goticket-api"
    access_token_ttl: int = Field(default=900, ge=60, le=86_400)
    log_level: LogLevel = "INFO"
    shutdown_grace: float = Field(default=20.0, ge=0, le=600)
    db_pool_min: int = Field(default=2, ge=1, le=100)
    db_pool_max: int = Field(default=16, ge=1, le=500)
    lock_timeout_ms: int = Field(default=5000, ge=100, le=60_000)
    # The reservation engine (group commit per hot event); "off" is one transaction per request.
    engine: Literal["on", "off"] = "on"
    engine_queue_limit: int = Field(default=10_000, ge=1, le=1_000_000)
    engine_max_batch: int = Field(default=1_000, ge=1, le=100_000)
    engine_deadline: float = Field(default=5.0, gt=0, le=120)
    sold_out_ttl: float = Field(default=1.0, ge=0, le=60)
    # Every worker looks for due payment holds this often (one at a time across processes
    # sweeps); a hold is expired at most about this long after its expiresAt (API.md: within
    # 5 s, so at most 2 s, leaving room for a batch behind a busy event's row).
    hold_sweep_period: float = Field(default=1.0, gt=0, le=2)
    # The read cache of GET /events/{id} and GET /events pages, per worker (see events/reads.py):
    # entries are refetched once this old (availableSpots may lag bookings by this much),
    # at most this many of each are kept (least recently used go first), and the LISTEN
    # connection that invalidates them on catalog changes is checked this often.
    read_cache_max_age: float = Field(default=1.0, ge=0, le=1)
    read_cache_events: int = Field(default=10_000, ge=1, le=10_000_000)
    read_cache_pages: int = Field(default=1_000, ge=1, le=1_000_000)
    read_cache_ping: float = Field(default=5.0, gt=0, le=300)
    # GET /metrics answers only "Authorization: Bearer <token>"; unset: generated in the data dir.
    metrics_token: SecretStr | None = None
    metrics_events: int = Field(default=50, ge=0, le=1_000)
    # The keys that sign ticket codes: "kid:seed[,kid:seed...]" (seed: base64url of a 32-byte
    # Ed25519 private key; the first pair signs, the others stay published). Unset: a key ring
    # generated once, 0600, in the data folder (see tickets/keyring.py).
    ticket_signing_key: SecretStr | None = None
    # Payments: the provider that takes the money ("fake", the built-in one, or "stripe") and the
    # Standard Webhooks secret the fake's webhooks are signed with ("whsec_" + base64 of 24..64
    # bytes). Unset: generated once, 0600, in the data folder.
    payment_provider: Literal["fake", "stripe"] = "fake"
    payment_webhook_secret: SecretStr | None = None
    # Stripe (payment_provider "stripe", which requires the first three): the secret API key
    # (sk_... or a restricted rk_...), the webhook endpoint's signing secret (whsec_...), where
    # Stripe Checkout sends the buyer after paying and on cancelling ("{payment_id}" is replaced;
    # Stripe's own "{CHECKOUT_SESSION_ID}" passes through), and another API address (stripe-mock).
    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_success_url: str | None = None
    stripe_cancel_url: str | None = None
    stripe_api_base: str | None = None
    # Argon2id cost. The defaults are RFC 9106's second recommended option; tests lower them.
    argon2_time_cost: int = Field(default=3, ge=1, le=20)
    argon2_memory_kib: int = Field(default=65_536, ge=64, le=4_194_304)
    argon2_parallelism: int = Field(default=4, ge=1, le=64)

    @field_validator("log_level", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("payment_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            webhook_secret_bytes(value.get_secret_value())
        return value

    @field_validator("stripe_api_key")
    @classmethod
    def _stripe_api_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("sk_", "rk_")):
            raise ValueError("must be a secret (sk_...) or restricted (rk_...) Stripe API key")
        return value

    @field_validator("stripe_webhook_secret")
    @classmethod
    def _stripe_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(WEBHOOK_SECRET_PREFIX):
            raise ValueError("must be the webhook endpoint's signing secret (whsec_...)")
        return value

    @field_validator("stripe_success_url", "stripe_cancel_url", "stripe_api_base")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an absolute http(s) URL")
        return value

    @model_validator(mode="after")
    def _provider_configured(self) -> Settings:
        missing = self.missing_for_provider()
        if missing:
            raise ValueError(
                f"GOTICKET_PAYMENT_PROVIDER is {self.payment_provider}, which requires "
                + ", ".join(missing)
            )
        return self

    def missing_for_provider(self) -> list[str]:
        """The settings the configured payment provider needs and does not have."""
        if self.payment_provider != "stripe":
            return []
        required = {
            "GOTICKET_STRIPE_API_KEY": self.stripe_api_key,
            "GOTICKET_STRIPE_WEBHOOK_SECRET": self.stripe_webhook_secret,
            "GOTICKET_STRIPE_SUCCESS_URL": self.stripe_success_url,
        }
        return [name for name, value in required.items() if value is None]

    def resolved_jwt_secret(self) -> str:
        """The configured secret, else one generated once and kept 0600 in the data folder."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        return _persistent_secret(self.data_dir / "jwt-secret")

    def resolved_metrics_token(self) -> str:
        """The configured metrics token, else one generated once and kept 0600 in the data dir."""
        if self.metrics_token is not None:
            return self.metrics_token.get_secret_value()
        return _persistent_secret(self.data_dir / "metrics-token")

    def resolved_payment_webhook_secret(self) -> str:
        """The configured webhook secret, else one generated once and kept 0600 in the data dir."""
        if self.payment_webhook_secret is not None:
            return self.payment_webhook_secret.get_secret_value()
        fresh = WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
        return create_once(self.data_dir / "payment-webhook-secret", fresh + "\n").strip()


WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


def webhook_secret_bytes(secret: str) -> bytes:
    """The key of a Standard Webhooks secret (``whsec_`` + base64 of 24..64 bytes), or
    ``ValueError`` without the secret in the message."""
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        raise ValueError("must start with whsec_")
    try:
        key = base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise ValueError("must be whsec_ followed by base64") from None
    if not 24 <= len(key) <= 64:
        raise ValueError("must encode 24 to 64 bytes")
    return key


def describe(error: ValidationError) -> str:
    """One line naming each offending variable; the values are left out (some are secrets)."""
    problems = []
    for item in error.errors():
        if not item["loc"]:  # a rule across settings: its message names them
            problems.append(str(item["msg"]).removeprefix("Value error, "))
            continue
        field = str(item["loc"][0])
        problems.append(f"GOTICKET_{field.upper()}: {item['msg']}")
    return "invalid configuration: " + "; ".join(problems)


def _persistent_secret(path: Path) -> str:
    return create_once(path, secrets.token_urlsafe(48) + "\n").strip()
