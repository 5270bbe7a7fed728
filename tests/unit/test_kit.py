from __future__ import annotations

import base64
import gc
import hashlib
import hmac
import io
import json
import os
import stat
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any

import jwt
import msgspec
import pytest
from pydantic import SecretStr, ValidationError

from goticket.config import Settings, describe
from goticket.kit.auth import Principal, Role
from goticket.kit.bodies import collect_errors
from goticket.kit.errors import AuthenticationFailed, FieldError, InvalidInput
from goticket.kit.pagination import CursorCodec, Position
from goticket.kit.runtime import GC_THRESHOLDS, settle_heap
from goticket.kit.tokens import TokenCodec

SECRET = "s" * 32
ISSUER = "goticket"
AUDIENCE = "goticket-api"
TTL = 900


def make_codec(**overrides: Any) -> TokenCodec:
    fields: dict[str, Any] = {
        "secret": SECRET,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "ttl_seconds": TTL,
    }
    fields.update(overrides)
    secret = fields.pop("secret")
    return TokenCodec(secret, **fields)


def signed(claims: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm)


def good_claims(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(uuid.uuid4()),
        "role": "user",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not ...}


# ------------------------------------------------------------------------------------- tokens


@pytest.mark.parametrize("role", list(Role))
def test_token_round_trip(role: Role) -> None:
    codec = make_codec()
    principal = Principal(uuid.uuid4(), role)
    issued = codec.issue(principal, datetime.now(UTC))
    assert issued.expires_in == TTL
    assert codec.verify(issued.token) == principal


def test_token_claims() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    principal = Principal(uuid.uuid4(), Role.ORGANIZER)
    token = make_codec().issue(principal, now).token
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims == {
        "sub": str(principal.user_id),
        "role": "organizer",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + TTL,
    }
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_expired_token_is_refused() -> None:
    codec = make_codec()
    issued = codec.issue(Principal(uuid.uuid4(), Role.USER), datetime.now(UTC) - 2 * timedelta(TTL))
    with pytest.raises(AuthenticationFailed):
        codec.verify(issued.token)


@pytest.mark.parametrize(
    "verifier",
    [
        {"secret": "t" * 32},
        {"audience": "another-api"},
        {"issuer": "someone-else"},
    ],
)
def test_token_from_another_issuer_is_refused(verifier: dict[str, Any]) -> None:
    token = make_codec().issue(Principal(uuid.uuid4(), Role.USER), datetime.now(UTC)).token
    with pytest.raises(AuthenticationFailed):
        make_codec(**verifier).verify(token)


@pytest.mark.parametrize("claim", ["sub", "role", "iat", "exp", "iss", "aud"])
def test_token_missing_a_claim_is_refused(claim: str) -> None:
    token = signed(good_claims(**{claim: ...}))
    with pytest.raises(AuthenticationFailed):
        make_codec().verify(token)


@pytest.mark.parametrize(
    "claims",
    [
        {"role": "superuser"},
        {"role": "ADMIN"},
        {"role": ""},
        {"sub": "not-a-uuid"},
        {"sub": ""},
    ],
)
def test_token_with_bad_claim_values_is_refused(claims: dict[str, Any]) -> None:
    with pytest.raises(AuthenticationFailed):
        make_codec().verify(signed(good_claims(**claims)))


def test_well_formed_foreign_token_is_accepted() -> None:
    # The control for the tables above: the same helper with nothing broken verifies.
    claims = good_claims(role="admin")
    assert make_codec().verify(signed(claims)) == Principal(uuid.UUID(claims["sub"]), Role.ADMIN)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b.c",
        jwt.encode(good_claims(), None, "none"),  # type: ignore[arg-type]
    ],
)
def test_malformed_or_other_algorithm_token_is_refused(token: str) -> None:
    with pytest.raises(AuthenticationFailed):
        make_codec().verify(token)


def test_token_signed_with_another_algorithm_is_refused() -> None:
    secret = "s" * 64  # long enough for HS512, so only the algorithm differs
    token = signed(good_claims(), secret=secret, algorithm="HS512")
    with pytest.raises(AuthenticationFailed):
        make_codec(secret=secret).verify(token)
    assert make_codec(secret=secret).verify(signed(good_claims(), secret=secret)).role is Role.USER


def test_tampered_token_is_refused() -> None:
    codec = make_codec()
    token = codec.issue(Principal(uuid.uuid4(), Role.USER), datetime.now(UTC)).token
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(AuthenticationFailed):
        codec.verify(f"{header}.{forged}.{signature}")


@pytest.mark.parametrize(("length", "accepted"), [(0, False), (31, False), (32, True)])
def test_short_secret_is_refused(length: int, accepted: bool) -> None:
    if accepted:
        assert isinstance(make_codec(secret="x" * length), TokenCodec)
    else:
        with pytest.raises(ValueError, match="at least 32"):
            make_codec(secret="x" * length)


# ------------------------------------------------------------------------------------ cursors

POSITION = Position(datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), uuid.uuid4())


@pytest.mark.parametrize(
    "position",
    [
        POSITION,
        Position(datetime(2030, 1, 1, tzinfo=timezone(timedelta(hours=-5))), uuid.uuid4()),
        Position(datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), uuid.UUID(int=0)),
    ],
)
def test_cursor_round_trip(position: Position) -> None:
    codec = CursorCodec("secret")
    cursor = codec.encode("events", position)
    decoded = codec.decode("events", cursor)
    assert decoded == position
    assert decoded.at.utcoffset() == position.at.utcoffset()


def test_cursor_is_url_safe_and_unpadded() -> None:
    cursor = CursorCodec("secret").encode("events", POSITION)
    assert "=" not in cursor
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_cursor_decodes_with_or_without_its_padding() -> None:
    codec = CursorCodec("secret")
    padding_needed = set()
    # Kinds of four lengths give payloads of four lengths mod 3: every padding case occurs.
    for kind in ["e", "ev", "eve", "even"]:
        cursor = codec.encode(kind, POSITION)
        padded = cursor + "=" * (-len(cursor) % 4)
        padding_needed.add(len(padded) - len(cursor))
        assert codec.decode(kind, cursor) == POSITION
        assert codec.decode(kind, padded) == POSITION
    assert padding_needed == {0, 1, 2}


def _assert_refused(codec: CursorCodec, kind: str, cursor: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        codec.decode(kind, cursor)
    assert caught.value.errors == [FieldError("cursor", "not a cursor issued by this server")]


def test_cursor_of_another_list_is_refused() -> None:
    codec = CursorCodec("secret")
    _assert_refused(codec, "bookings", codec.encode("events", POSITION))


def test_cursor_of_another_secret_is_refused() -> None:
    _assert_refused(
        CursorCodec("other"), "events", CursorCodec("secret").encode("events", POSITION)
    )


def test_tampered_cursor_is_refused() -> None:
    codec = CursorCodec("secret")
    cursor = codec.encode("events", POSITION)
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    # Move the position forward a year, keeping the signature: the MAC must not match.
    tampered_payload = bytes(raw[16:]).replace(b"2030-", b"2031-")
    assert tampered_payload != bytes(raw[16:])
    tampered = base64.urlsafe_b64encode(bytes(raw[:16]) + tampered_payload).decode()
    _assert_refused(codec, "events", tampered)
    # and one flipped bit anywhere in the signature
    raw[0] ^= 1
    _assert_refused(codec, "events", base64.urlsafe_b64encode(bytes(raw)).decode())


@pytest.mark.parametrize(
    "cursor",
    ["", "x", "!!!!", "abc$", "====", "AAAA", "A" * 64, "é", base64.urlsafe_b64encode(b"x" * 40)],
)
def test_garbage_cursor_is_refused(cursor: str | bytes) -> None:
    text = cursor.decode() if isinstance(cursor, bytes) else cursor
    _assert_refused(CursorCodec("secret"), "events", text)


def _forge(secret: str, payload: bytes) -> str:
    # What only the server can do: sign a payload. The decoder must still not trust its shape.
    key = hashlib.sha256(b"goticket-cursor:" + secret.encode()).digest()
    mac = hmac.new(key, payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac + payload).decode().rstrip("=")


@pytest.mark.parametrize(
    "payload",
    [b"null", b"[]", b'["events"]', b'["events", "yesterday", "x"]', b'["events", 1, 2]', b"\xff"],
)
def test_signed_cursor_of_the_wrong_shape_is_refused(payload: bytes) -> None:
    _assert_refused(CursorCodec("secret"), "events", _forge("secret", payload))


# ----------------------------------------------------------------------------------- settings


def test_jwt_secret_is_generated_once_and_kept_private(clean_env: Path) -> None:
    settings = Settings(data_dir=clean_env)
    secret = settings.resolved_jwt_secret()
    path = clean_env / "jwt-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == secret + "\n"
    assert len(secret) >= 32
    assert isinstance(TokenCodec(secret, issuer="i", audience="a", ttl_seconds=60), TokenCodec)
    assert settings.resolved_jwt_secret() == secret
    assert Settings(data_dir=clean_env).resolved_jwt_secret() == secret
    assert [p.name for p in clean_env.iterdir()] == ["jwt-secret"]  # no temporary file left


def test_jwt_secrets_differ_between_data_folders(clean_env: Path) -> None:
    first = Settings(data_dir=clean_env / "a").resolved_jwt_secret()
    second = Settings(data_dir=clean_env / "b").resolved_jwt_secret()
    assert first != second


def test_configured_jwt_secret_wins(clean_env: Path) -> None:
    configured = "c" * 40
    settings = Settings(data_dir=clean_env, jwt_secret=SecretStr(configured))
    assert settings.resolved_jwt_secret() == configured
    assert not (clean_env / "jwt-secret").exists()


def test_configured_jwt_secret_from_the_environment_wins(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Settings(data_dir=clean_env).resolved_jwt_secret()  # a generated one exists already
    monkeypatch.setenv("GOTICKET_JWT_SECRET", "e" * 40)
    assert Settings(data_dir=clean_env).resolved_jwt_secret() == "e" * 40


def test_jwt_secret_race_keeps_the_first_writer(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process links its secret between our exists() check and our link().
    real_link = os.link

    def link_after_another_process(src: Any, dst: Any) -> None:
        Path(dst).write_text("the-other-process-won\n")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link_after_another_process)
    assert Settings(data_dir=clean_env).resolved_jwt_secret() == "the-other-process-won"
    assert [p.name for p in clean_env.iterdir()] == ["jwt-secret"]


@pytest.mark.parametrize("raw", ["warning", "Warning", " WARNING "])
def test_log_level_is_read_in_any_case(
    raw: str, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOTICKET_LOG_LEVEL", raw)
    assert Settings(data_dir=clean_env).log_level == "WARNING"


def test_a_bad_setting_is_described_in_one_line_without_its_value(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOTICKET_LOG_LEVEL", "loud")
    monkeypatch.setenv("GOTICKET_DB_POOL_MAX", "0")
    with pytest.raises(ValidationError) as raised:
        Settings(data_dir=clean_env)
    message = describe(raised.value)
    assert "\n" not in message
    assert message.startswith("invalid configuration: GOTICKET_LOG_LEVEL: ")
    assert "GOTICKET_DB_POOL_MAX: " in message
    assert "loud" not in message


# Run in a child interpreter: configure_logging changes process-wide state (structlog, the root
# logger, warnings) that the rest of the suite must not inherit.
_LOG_BOTH_WAYS = """
import logging, warnings
from goticket.kit.logging import configure_logging, get_logger
configure_logging("info")
get_logger("goticket.test").info("from structlog", answer=42)
logging.getLogger("some.library").warning("from %s", "logging")
logging.getLogger("some.library").debug("below the level")
warnings.warn("from warnings", UserWarning, stacklevel=1)
"""


def test_structlog_standard_library_and_warnings_lines_share_one_layout() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _LOG_BOTH_WAYS],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stderr == ""
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [list(line)[:4] for line in lines] == [["timestamp", "level", "logger", "event"]] * 3
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("goticket.test", "info"),
        ("some.library", "warning"),
        ("py.warnings", "warning"),
    ]
    assert [lines[0]["event"], lines[1]["event"]] == ["from structlog", "from logging"]
    assert "UserWarning: from warnings" in lines[2]["event"]
    assert lines[0]["answer"] == 42


# ------------------------------------------------------------------------------ collect_errors


class Seat(msgspec.Struct, rename="camel"):
    row: str
    seat_number: Annotated[int, msgspec.Meta(ge=1)]


class Order(msgspec.Struct, rename="camel"):
    event_id: uuid.UUID
    quantity: Annotated[int, msgspec.Meta(ge=1, le=10)]
    seats: list[Seat] = []
    holder: Seat | None = None
    note: str | None = None


class Window(msgspec.Struct):
    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("end must be after start")


def good_order(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"eventId": str(uuid.uuid4()), "quantity": 2}
    raw.update(overrides)
    return {k: v for k, v in raw.items() if v is not ...}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (good_order(), []),
        (good_order(seats=[{"row": "A", "seatNumber": 3}], note="hi"), []),
        (good_order(bogus=1), [FieldError("bogus", "unknown field")]),
        # the Python name of a renamed field is unknown on the wire
        (good_order(event_id="x"), [FieldError("event_id", "unknown field")]),
        (good_order(eventId=...), [FieldError("eventId", "required")]),
        (good_order(quantity="two"), [FieldError("quantity", "Expected `int`, got `str`")]),
        (good_order(quantity=11), [FieldError("quantity", "Expected `int` <= 10")]),
        (good_order(eventId="nope"), [FieldError("eventId", "Invalid UUID")]),
        (good_order(note=5), [FieldError("note", "Expected `str | null`, got `int`")]),
        (
            good_order(seats=[{"row": "A", "seatNumber": 1}, {"row": "B", "seatNumber": 0}]),
            [FieldError("seats[1].seatNumber", "Expected `int` >= 1")],
        ),
        (
            good_order(holder={"row": 7, "seatNumber": 1}),
            [FieldError("holder.row", "Expected `str`, got `int`")],
        ),
        (
            good_order(holder={"seatNumber": 1}),
            [FieldError("holder", "Object missing required field `row`")],
        ),
    ],
)
def test_collect_errors(raw: dict[str, Any], expected: list[FieldError]) -> None:
    assert collect_errors(Order, raw) == expected


def test_collect_errors_reports_every_field_at_once() -> None:
    raw = {"quantity": 0, "seats": "A1", "extra": True, "other": None}
    assert collect_errors(Order, raw) == [
        FieldError("extra", "unknown field"),
        FieldError("other", "unknown field"),
        FieldError("eventId", "required"),
        FieldError("quantity", "Expected `int` >= 1"),
        FieldError("seats", "Expected `array`, got `str`"),
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"start": 1, "end": 2}, []),
        ({"start": 2, "end": 1}, [FieldError("body", "end must be after start")]),
        ({"start": "2", "end": 1}, [FieldError("start", "Expected `int`, got `str`")]),
    ],
)
def test_collect_errors_reports_a_rule_across_fields_as_body(
    raw: dict[str, Any], expected: list[FieldError]
) -> None:
    assert collect_errors(Window, raw) == expected


def test_a_verified_token_is_remembered_only_until_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codec = TokenCodec("k" * 40, issuer="goticket", audience="goticket-api", ttl_seconds=60)
    now = datetime.now(UTC)
    principal = Principal(uuid.uuid4(), Role.ORGANIZER)
    token = codec.issue(principal, now).token
    assert codec.verify(token) == principal
    assert codec.verify(token) == principal  # the remembered answer
    later = now.timestamp() + 61
    monkeypatch.setattr("goticket.kit.tokens.time.time", lambda: later)
    monkeypatch.setattr(jwt.api_jwt, "datetime", _FrozenDatetime(later))
    with pytest.raises(AuthenticationFailed):
        codec.verify(token)


class _FrozenDatetime:
    """Stands in for ``datetime`` inside PyJWT so that its expiry check sees ``at``."""

    def __init__(self, at: float) -> None:
        self._at = at

    def now(self, tz: Any = None) -> datetime:
        return datetime.fromtimestamp(self._at, tz=tz)

    def __getattr__(self, name: str) -> Any:
        return getattr(datetime, name)


def test_settle_heap_freezes_the_startup_heap_and_collects_less_often() -> None:
    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert GC_THRESHOLDS[0] > before[0]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_a_log_line_is_one_write_with_its_newline() -> None:
    """Workers share one stdout: a line written in two pieces (text, then newline) could be
    split by another worker's line."""
    from goticket.kit.logging import NamedPrintLogger

    class Recorder(io.StringIO):
        writes: list[str]

        def __init__(self) -> None:
            super().__init__()
            self.writes = []

        def write(self, text: str) -> int:
            self.writes.append(text)
            return super().write(text)

    out = Recorder()
    logger = NamedPrintLogger("goticket.test", out)
    logger.info('{"event": "one"}')
    logger.error('{"event": "two"}')
    assert out.writes == ['{"event": "one"}\n', '{"event": "two"}\n']
