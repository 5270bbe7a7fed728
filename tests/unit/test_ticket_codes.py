"""Ticket codes ``GT1.<payload>.<signature>``: every malformed shape is one domain error, and only
a code signed by a published key verifies."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from goticket.kit.problems import domain_reply
from goticket.tickets.domain import (
    InvalidTicketCode,
    PublicKey,
    b64url,
    issue_code,
    jwk,
    signed_part,
    verify_code,
)
from goticket.tickets.keyring import new_ring
from goticket.tickets.service import TicketSigning
from goticket.tickets.signing import BadKey, Ed25519Signing, public_keys_from_jwks

TID = UUID("7d5e7b0c-3a2f-4d8e-9c11-2b6a1f0e9d41")
EID = UUID("1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b")
KEY = Ed25519Signing.from_seed("k1", bytes(range(32)))
OTHER = Ed25519Signing.from_seed("k1", bytes(range(1, 33)))  # same kid, another key
KEYS: dict[str, PublicKey] = {"k1": KEY.public()}


def forge(payload: Any, *, key: Ed25519Signing = KEY, raw: bytes | None = None) -> str:
    """A correctly signed code around any payload (so that the payload rules are reached)."""
    body = b64url(raw if raw is not None else json.dumps(payload).encode())
    return f"GT1.{body}.{b64url(key.sign(signed_part(body)))}"


def claims(**changes: Any) -> dict[str, Any]:
    return {"tid": str(TID), "eid": str(EID), "kid": "k1", **changes}


def without(field: str) -> dict[str, Any]:
    return {k: v for k, v in claims().items() if k != field}


VALID = issue_code(TID, EID, KEY)
PAYLOAD, SIGNATURE = VALID.split(".")[1:]


def flip_signature_byte(code: str) -> str:
    head, payload, signature = code.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[10] ^= 0x01
    return f"{head}.{payload}.{b64url(bytes(raw))}"


def with_tid(code: str, tid: str) -> str:
    head, _, signature = code.split(".")
    return f"{head}.{b64url(json.dumps(claims(tid=tid)).encode())}.{signature}"


def short_signature(length: int) -> str:
    return f"GT1.{PAYLOAD}.{b64url(KEY.sign(signed_part(PAYLOAD))[:length])}"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        pytest.param(with_tid(VALID, "00000000-0000-4000-8000-000000000000"), "does not verify",
                     id="tampered payload"),
        pytest.param(flip_signature_byte(VALID), "does not verify", id="tampered signature"),
        pytest.param(issue_code(TID, EID, OTHER), "does not verify", id="another key, same kid"),
        pytest.param(issue_code(TID, EID, Ed25519Signing.generate("k9")), "unknown key",
                     id="unknown kid"),
        pytest.param(short_signature(63), "not 64 bytes", id="signature too short"),
        pytest.param(f"GT1.{PAYLOAD}.{SIGNATURE}{SIGNATURE}", "not 64 bytes",
                     id="signature too long"),
        pytest.param(f"GT2.{PAYLOAD}.{SIGNATURE}", "not a GT1", id="other version"),
        pytest.param(f"gt1.{PAYLOAD}.{SIGNATURE}", "not a GT1", id="lower-case prefix"),
        pytest.param(f" {VALID}", "not a GT1", id="leading space"),
        pytest.param(f"GT1.{PAYLOAD}", "not a GT1", id="no signature"),
        pytest.param(f"{VALID}.", "not a GT1", id="trailing dot"),
        pytest.param(f"GT1.{PAYLOAD}.x.{SIGNATURE}", "not a GT1", id="extra dot"),
        pytest.param("", "not a GT1", id="empty"),
        pytest.param(f"GT1..{SIGNATURE}", "payload is not unpadded base64url", id="empty payload"),
        pytest.param(f"GT1.{PAYLOAD}==.{SIGNATURE}", "payload is not unpadded",
                     id="padded payload"),
        pytest.param(f"GT1.{PAYLOAD}.{SIGNATURE}==", "signature is not unpadded",
                     id="padded signature"),
        pytest.param(f"GT1.{PAYLOAD.replace('J', '+', 1)}.{SIGNATURE}", "payload is not",
                     id="base64 alphabet, not base64url"),
        pytest.param(f"GT1.{PAYLOAD}.{SIGNATURE[:-1]}!", "signature is not", id="not base64"),
        pytest.param(f"GT1.{PAYLOAD}.{SIGNATURE[:-1]}B", "signature is not",
                     id="non-canonical trailing bits"),
        pytest.param(f"GT1.{PAYLOAD}A.{SIGNATURE}", "payload is not", id="impossible length"),
        pytest.param(forge(None, raw=b"not json"), "not JSON", id="non-JSON payload"),
        pytest.param(forge(None, raw=b"\xff\xfe{}"), "not JSON", id="payload not UTF-8"),
        pytest.param(forge([str(TID), str(EID), "k1"]), "not a JSON object", id="JSON array"),
        pytest.param(forge(without("tid")), "no tid", id="missing tid"),
        pytest.param(forge(without("eid")), "no eid", id="missing eid"),
        pytest.param(forge(without("kid")), "no valid kid", id="missing kid"),
        pytest.param(forge(claims(kid="")), "no valid kid", id="empty kid"),
        pytest.param(forge(claims(kid="k 1")), "no valid kid", id="kid with a space"),
        pytest.param(forge(claims(tid=7)), "no tid", id="tid a number"),
        pytest.param(forge(claims(eid="not-a-uuid")), "eid is not a UUID", id="eid not a UUID"),
        pytest.param(forge(claims(tid=str(TID).upper())), "canonical form",
                     id="tid in upper case"),
        pytest.param(forge(None, raw=b'{"tid":"%s","tid":"%s","eid":"%s","kid":"k1"}'
                           % (b"x", str(TID).encode(), str(EID).encode())),
                     "repeats a field", id="duplicate field"),
        pytest.param("GT1." + "A" * 2000 + "." + SIGNATURE, "too long", id="too long"),
    ],
)  # fmt: skip
def test_a_bad_code_is_refused_with_one_error(code: str, reason: str) -> None:
    with pytest.raises(InvalidTicketCode) as refused:
        verify_code(code, KEYS)
    assert reason in refused.value.reason
    assert refused.value.code == "invalid-ticket"


def test_an_invalid_code_is_a_422_invalid_ticket_problem_naming_the_code_field() -> None:
    with pytest.raises(InvalidTicketCode) as refused:
        verify_code(flip_signature_byte(VALID), KEYS)
    reply = domain_reply(refused.value)
    body = json.loads(reply.body)
    assert reply.status == 422
    assert body["type"].endswith("/invalid-ticket")
    assert body["errors"] == [{"field": "code", "message": "the signature does not verify"}]
    assert VALID.split(".")[2] not in reply.body.decode()  # the code is not echoed back


def test_a_valid_code_gives_its_claims() -> None:
    verified = verify_code(VALID, KEYS)
    assert (verified.ticket_id, verified.event_id, verified.kid) == (TID, EID, "k1")
    assert json.loads(base64.urlsafe_b64decode(PAYLOAD + "==")) == claims()
    assert "=" not in VALID
    assert VALID.count(".") == 2


def test_a_payload_may_carry_more_fields() -> None:
    verified = verify_code(forge(claims(v=2, seat="A12")), KEYS)
    assert verified.ticket_id == TID
    assert verified.payload["seat"] == "A12"


def test_a_code_signed_with_a_key_of_another_algorithm_is_refused() -> None:
    # A JWK Set may hold keys of other types under the code's kid: they are not Ed25519 keys.
    document = {"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "x": "AA", "y": "AA"}]}
    keys = public_keys_from_jwks(document)
    assert keys == {}
    with pytest.raises(InvalidTicketCode, match="unknown key"):
        verify_code(VALID, dict(keys))


@pytest.mark.parametrize(
    "change",
    [
        lambda k: k.update(x=b64url(bytes(31))),
        lambda k: k.update(x=b64url(bytes(33))),
        lambda k: k.update(x=k["x"] + "=="),
        lambda k: k.pop("x"),
        lambda k: k.update(kid=""),
    ],
    ids=["x of 31 bytes", "x of 33 bytes", "padded x", "no x", "empty kid"],
)
def test_a_malformed_ed25519_jwk_makes_the_set_unusable(change: Callable[[Any], Any]) -> None:
    key = jwk(KEY.public())
    change(key)
    with pytest.raises(BadKey):
        public_keys_from_jwks({"keys": [key]})


def test_a_kid_published_twice_makes_the_set_unusable() -> None:
    # Which of the two would verify a code would depend on the reader: refuse both.
    with pytest.raises(BadKey, match="twice"):
        public_keys_from_jwks({"keys": [jwk(KEY.public()), jwk(OTHER.public())]})


@pytest.mark.parametrize("document", [[], {"keys": {}}, {"key": []}, "keys"])
def test_a_document_that_is_not_a_jwk_set_is_refused(document: Any) -> None:
    with pytest.raises(BadKey, match="not a JWK Set"):
        public_keys_from_jwks(document)


def test_the_published_jwk_round_trips_and_verifies() -> None:
    published = jwk(KEY.public())
    assert set(published) == {"kty", "crv", "kid", "x", "use"}
    assert (published["kty"], published["crv"], published["use"]) == ("OKP", "Ed25519", "sig")
    keys = public_keys_from_jwks(json.loads(json.dumps({"keys": [published]})))
    assert verify_code(VALID, dict(keys)).ticket_id == TID


def test_rotation_keeps_the_codes_of_old_keys_valid() -> None:
    now = datetime(2026, 12, 7, tzinfo=UTC)
    first = new_ring(now)
    old_code = TicketSigning(first.current, list(first.public_keys().values())).issue(TID, EID)
    rotated = first.with_new_key(now)
    signing = TicketSigning(rotated.current, list(rotated.public_keys().values()))
    new_code = signing.issue(TID, EID)
    assert rotated.current.kid != first.current.kid
    assert [k["kid"] for k in signing.public_jwks()] == [first.current.kid, rotated.current.kid]
    assert signing.verify(old_code).kid == first.current.kid
    assert signing.verify(new_code).kid == rotated.current.kid
    # A verifier that only knows the old keys refuses codes of the new one.
    with pytest.raises(InvalidTicketCode, match="unknown key"):
        verify_code(new_code, dict(first.public_keys()))
