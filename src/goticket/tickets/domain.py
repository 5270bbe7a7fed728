"""Tickets: their codes ``GT1.<payload>.<signature>`` (the format and its rules) and the rules of
check-in (who may scan, what a scan or an offline batch of scans decides); no I/O, no crypto
library.

``payload`` is unpadded base64url of a compact JSON object with at least ``tid`` (ticket id),
``eid`` (event id) and ``kid`` (key id); ``signature`` is unpadded base64url of the Ed25519
signature of the ASCII bytes ``GT1.<payload>``. The signature itself is made and checked by the
keys this module is given (``tickets/signing.py`` holds the Ed25519 ones).
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from goticket.kit.auth import Principal
from goticket.kit.errors import Conflict, FieldError, InvalidInput, NotFound, PermissionDenied

PREFIX = "GT1"
SIGNATURE_BYTES = 64  # Ed25519
PUBLIC_KEY_BYTES = 32
# Far above any code we issue (about 200 characters): a longer one is refused before decoding.
MAX_CODE_LENGTH = 1024
KID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)


class InvalidTicketCode(InvalidInput):
    """Whatever is wrong with a code, it is this one error; ``reason`` says what, for operators."""

    code = "invalid-ticket"
    title = "Invalid ticket"

    def __init__(self, reason: str) -> None:
        super().__init__([FieldError("code", reason)], detail=f"invalid ticket code: {reason}")
        self.reason = reason


class PublicKey(Protocol):
    @property
    def kid(self) -> str: ...

    def verify(self, signature: bytes, message: bytes) -> bool: ...

    def raw(self) -> bytes: ...


class SigningKey(Protocol):
    @property
    def kid(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class TicketClaims:
    ticket_id: UUID
    event_id: UUID
    kid: str
    # The payload's whole object, unknown fields included (a later code version may add some).
    payload: Mapping[str, Any]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes | None:
    """The bytes of canonical unpadded base64url, else None: no padding, no other alphabet,
    and no second spelling of the same bytes (unused trailing bits must be zero), so that one
    ticket has one code."""
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        return None
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if b64url(data) == text else None


def signed_part(payload: str) -> bytes:
    return f"{PREFIX}.{payload}".encode("ascii")


def issue_code(ticket_id: UUID, event_id: UUID, key: SigningKey) -> str:
    claims = {"tid": str(ticket_id), "eid": str(event_id), "kid": key.kid}
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    return f"{PREFIX}.{payload}.{b64url(key.sign(signed_part(payload)))}"


def jwk(key: PublicKey) -> dict[str, str]:
    """The public key as RFC 8037 publishes it, with exactly the fields API.md lists."""
    return {"kty": "OKP", "crv": "Ed25519", "kid": key.kid, "x": b64url(key.raw()), "use": "sig"}


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        # Two parsers of one payload must never disagree on which "tid" it names.
        raise InvalidTicketCode("the payload repeats a field")
    return dict(pairs)


def _uuid(payload: Mapping[str, Any], field: str) -> UUID:
    value = payload.get(field)
    if not isinstance(value, str):
        raise InvalidTicketCode(f"the payload has no {field}")
    try:
        parsed = UUID(value)
    except ValueError:
        raise InvalidTicketCode(f"the payload's {field} is not a UUID") from None
    if str(parsed) != value:
        raise InvalidTicketCode(f"the payload's {field} is not a UUID in canonical form")
    return parsed


@dataclass(frozen=True, slots=True)
class ParsedCode:
    claims: TicketClaims
    signed: bytes
    signature: bytes


def parse_code(code: str) -> ParsedCode:
    """The code's parts, checked for shape only: the signature is not verified here."""
    if len(code) > MAX_CODE_LENGTH:
        raise InvalidTicketCode("the code is too long")
    parts = code.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise InvalidTicketCode(f"not a {PREFIX}.<payload>.<signature> code")
    _, payload_text, signature_text = parts
    raw_payload = from_b64url(payload_text)
    if raw_payload is None:
        raise InvalidTicketCode("the payload is not unpadded base64url")
    signature = from_b64url(signature_text)
    if signature is None:
        raise InvalidTicketCode("the signature is not unpadded base64url")
    if len(signature) != SIGNATURE_BYTES:
        raise InvalidTicketCode(f"the signature is not {SIGNATURE_BYTES} bytes (Ed25519)")
    try:
        payload = json.loads(raw_payload.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError):
        raise InvalidTicketCode("the payload is not JSON") from None
    if not isinstance(payload, dict):
        raise InvalidTicketCode("the payload is not a JSON object")
    kid = payload.get("kid")
    if not isinstance(kid, str) or not KID_PATTERN.fullmatch(kid):
        raise InvalidTicketCode("the payload has no valid kid")
    claims = TicketClaims(_uuid(payload, "tid"), _uuid(payload, "eid"), kid, payload)
    return ParsedCode(claims, signed_part(payload_text), signature)


def verify_code(code: str, keys: Mapping[str, PublicKey]) -> TicketClaims:
    """The claims of a code signed by one of ``keys`` (by kid), else ``InvalidTicketCode``."""
    parsed = parse_code(code)
    key = keys.get(parsed.claims.kid)
    if key is None:
        raise InvalidTicketCode(f"unknown key {parsed.claims.kid!r}")
    if not key.verify(parsed.signature, parsed.signed):
        raise InvalidTicketCode("the signature does not verify")
    return parsed.claims


# ------------------------------------------------------------------------------ tickets


class TicketStatus(enum.StrEnum):
    VALID = "valid"
    USED = "used"  # checked in: ``checked_in_at`` is set
    VOID = "void"  # its booking was cancelled (or expired) after confirmation


@dataclass(frozen=True, slots=True)
class Ticket:
    """A ticket row; issued and voided by the database (triggers on bookings), never here."""

    id: UUID
    booking_id: UUID
    event_id: UUID
    seq: int
    status: TicketStatus
    checked_in_at: datetime | None
    created_at: datetime


class TicketNotFound(NotFound):
    code = "not-found"
    title = "Ticket not found"


class EventNotFound(NotFound):
    code = "not-found"
    title = "Event not found"


class NotDoorManager(PermissionDenied):
    code = "forbidden"
    title = "Not allowed to check in or see the sales of this event"


class AlreadyCheckedIn(Conflict):
    code = "already-checked-in"
    title = "Already checked in"


class TicketVoid(Conflict):
    code = "ticket-void"
    title = "Ticket void"


class WrongEvent(InvalidInput):
    code = "wrong-event"
    title = "Ticket of another event"

    def __init__(self) -> None:
        super().__init__(
            [FieldError("code", "a ticket of another event")],
            "this ticket is valid for another event",
        )


def ensure_can_manage_door(actor: Principal, organizer_id: UUID | None) -> None:
    """Check-in and the sales figures: the event's organizer or an admin. ``organizer_id`` is
    None when there is no such event (404, before the 403)."""
    if organizer_id is None:
        raise EventNotFound("no such event")
    if not (actor.is_admin or actor.user_id == organizer_id):
        raise NotDoorManager("only the event's organizer or an admin may do this")


def claims_for_event(claims: TicketClaims, event_id: UUID) -> TicketClaims:
    if claims.event_id != event_id:
        raise WrongEvent()
    return claims


def refuse_scan(ticket: Ticket | None) -> None:
    """Why a scan of a ticket that a conditional check-in did not change is refused."""
    if ticket is None:
        # Signed by us, yet no such row: its booking (and so the ticket) is gone.
        raise InvalidTicketCode("no such ticket")
    if ticket.status is TicketStatus.VOID:
        raise TicketVoid("this ticket is void: its booking was cancelled")
    raise AlreadyCheckedIn("this ticket was already checked in", checked_in_at=ticket.checked_in_at)


# ------------------------------------------------------------------ offline scans (sync)


class ScanOutcome(enum.StrEnum):
    CHECKED_IN = "checked-in"
    ALREADY_CHECKED_IN = "already-checked-in"
    VOID = "void"
    INVALID = "invalid"
    WRONG_EVENT = "wrong-event"


OUTCOME_OF_ERROR: Mapping[str, ScanOutcome] = {
    AlreadyCheckedIn.code: ScanOutcome.ALREADY_CHECKED_IN,
    TicketVoid.code: ScanOutcome.VOID,
    InvalidTicketCode.code: ScanOutcome.INVALID,
    WrongEvent.code: ScanOutcome.WRONG_EVENT,
}


@dataclass(frozen=True, slots=True)
class Scan:
    """One scan of a batch, its code already verified: ``ticket_id`` is None for a code that is
    invalid or of another event (``refused`` says which)."""

    code: str
    at: datetime
    ticket_id: UUID | None
    refused: ScanOutcome | None = None


@dataclass(frozen=True, slots=True)
class TicketState:
    status: TicketStatus
    checked_in_at: datetime | None


@dataclass(frozen=True, slots=True)
class ScanResult:
    code: str
    outcome: ScanOutcome
    checked_in_at: datetime | None


@dataclass(frozen=True, slots=True)
class SyncPlan:
    results: list[ScanResult]
    # The tickets to store as used, with their (new) checked_in_at: only those that change.
    check_ins: dict[UUID, datetime]


def scan_time(scanned_at: datetime, now: datetime) -> datetime:
    """When a scan happened, in UTC. A scanner's clock ahead of ours counts as ours: a scan is
    never in the future. An instant before year 1 in UTC (``0001-01-01T00:00:00+01:00``) counts
    as the earliest one that can be stored."""
    if scanned_at > now:
        return now
    if scanned_at < EARLIEST:
        return EARLIEST
    return scanned_at.astimezone(UTC)


def plan_sync(scans: Sequence[Scan], before: Mapping[UUID, TicketState]) -> SyncPlan:
    """The outcome of each scan of an offline batch, in order, given the tickets' states before
    it (``before``: the scanned tickets that exist, read under lock).

    Rules: a ticket's ``checked_in_at`` is the earliest time seen for it (a stored one or any
    scan of the batch). A ticket valid before the batch is ``checked-in`` on its earliest scan
    in the batch (the first of equal ones); every other scan of a used ticket is
    ``already-checked-in``. Every result carries its ticket's ``checked_in_at`` after the batch
    (None for ``invalid`` and ``wrong-event``). Sending the batch again changes nothing."""
    earliest: dict[UUID, tuple[datetime, int]] = {}
    for index, scan in enumerate(scans):
        state = before.get(scan.ticket_id) if scan.ticket_id is not None else None
        if scan.ticket_id is None or state is None or state.status is TicketStatus.VOID:
            continue
        seen = earliest.get(scan.ticket_id)
        if seen is None or scan.at < seen[0]:
            earliest[scan.ticket_id] = (scan.at, index)
    after: dict[UUID, datetime] = {}
    check_ins: dict[UUID, datetime] = {}
    first_scan: set[int] = set()
    for ticket_id, (at, index) in earliest.items():
        state = before[ticket_id]
        stored = state.checked_in_at
        if state.status is TicketStatus.VALID:
            first_scan.add(index)
        final = at if stored is None or at < stored else stored
        after[ticket_id] = final
        if state.status is TicketStatus.VALID or final != stored:
            check_ins[ticket_id] = final
    results = []
    for index, scan in enumerate(scans):
        state = before.get(scan.ticket_id) if scan.ticket_id is not None else None
        if scan.ticket_id is None or state is None:
            results.append(ScanResult(scan.code, scan.refused or ScanOutcome.INVALID, None))
        elif state.status is TicketStatus.VOID:
            results.append(ScanResult(scan.code, ScanOutcome.VOID, state.checked_in_at))
        else:
            outcome = (
                ScanOutcome.CHECKED_IN if index in first_scan else ScanOutcome.ALREADY_CHECKED_IN
            )
            results.append(ScanResult(scan.code, outcome, after[scan.ticket_id]))
    return SyncPlan(results, check_ins)
