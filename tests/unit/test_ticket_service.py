"""``TicketService`` on ports that record every call: what it asks of the database and of the
other contexts, and in which order. The SQL itself is tested on PostgreSQL (tests/e2e)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from goticket.kit.auth import Principal, Role
from goticket.tickets.domain import (
    EventNotFound,
    InvalidTicketCode,
    NotDoorManager,
    TicketClaims,
    WrongEvent,
)
from goticket.tickets.service import TicketService, TicketSigning
from goticket.tickets.signing import Ed25519Signing
from tests.unit.fakes import FakeClock

KEY = Ed25519Signing.generate("k1")
SIGNING = TicketSigning(KEY, [KEY.public()])
ORGANIZER = Principal(uuid4(), Role.ORGANIZER)
EVENT = uuid4()


def forged_signature(code: str) -> str:
    head, payload, signature = code.split(".")
    flipped = "B" if signature[10] == "A" else "A"
    return f"{head}.{payload}.{signature[:10]}{flipped}{signature[11:]}"


class Calls:
    """The ports, recording each use; the unit of work refuses to open (no SQL expected)."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def uow(self, **_: Any) -> Any:
        self.log.append("uow")
        raise AssertionError("no query was expected")

    async def see_booking(self, actor: Principal, booking_id: UUID) -> None:
        self.log.append("see_booking")

    async def organizers(self, event_id: UUID) -> UUID | None:
        self.log.append("organizer")
        return ORGANIZER.user_id if event_id == EVENT else None

    def service(self) -> TicketService:
        return TicketService(self.uow, SIGNING, self.see_booking, self.organizers, FakeClock())


@pytest.mark.parametrize(
    "code",
    [
        "not a code",
        forged_signature(SIGNING.issue(uuid4(), EVENT)),
        Ed25519Signing.generate("k1").sign(b"x").hex(),
    ],
)
async def test_a_code_that_does_not_verify_costs_no_query(code: str) -> None:
    calls = Calls()
    with pytest.raises(InvalidTicketCode):
        await calls.service().check_in(ORGANIZER, EVENT, code)
    assert calls.log == []  # not even the event's organizer was read


async def test_a_ticket_of_another_event_is_refused_after_the_door_check_without_sql() -> None:
    calls = Calls()
    code = SIGNING.issue(uuid4(), uuid4())
    with pytest.raises(WrongEvent):
        await calls.service().check_in(ORGANIZER, EVENT, code)
    assert calls.log == ["organizer"]


class SpySigning(TicketSigning):
    def __init__(self) -> None:
        super().__init__(KEY, [KEY.public()])
        self.verified: list[str] = []

    def verify(self, code: str) -> TicketClaims:
        self.verified.append(code)
        return super().verify(code)


async def test_a_stranger_is_refused_before_a_sync_batch_is_verified() -> None:
    calls = Calls()
    signing = SpySigning()
    service = TicketService(calls.uow, signing, calls.see_booking, calls.organizers, FakeClock())
    stranger = Principal(uuid4(), Role.ORGANIZER)
    with pytest.raises(NotDoorManager):
        await service.sync(stranger, EVENT, [("GT1.a.b", FakeClock().now())] * 3)
    assert (calls.log, signing.verified) == (["organizer"], [])


async def test_a_sync_batch_verifies_each_code_once_and_needs_no_query_without_tickets() -> None:
    calls = Calls()
    signing = SpySigning()
    service = TicketService(calls.uow, signing, calls.see_booking, calls.organizers, FakeClock())
    other_event = SIGNING.issue(uuid4(), uuid4())
    scans = [("GT1.a.b", FakeClock().now()), (other_event, FakeClock().now())] * 3
    results = await service.sync(ORGANIZER, EVENT, scans)
    assert [r.outcome.value for r in results] == ["invalid", "wrong-event"] * 3
    assert signing.verified == ["GT1.a.b", other_event]
    assert calls.log == ["organizer"]  # no ticket of this event: no transaction


async def test_an_events_organizer_is_asked_once_and_an_unknown_event_every_time() -> None:
    """A gate scans thousands of codes of one event: its organizer (which never changes) is
    looked up once per process; an event not found is not remembered."""
    calls = Calls()
    service = calls.service()
    scans = [("not a code", FakeClock().now())]  # refused before any query
    for _ in range(3):
        results = await service.sync(ORGANIZER, EVENT, scans)
        assert [r.outcome.value for r in results] == ["invalid"]
    assert calls.log.count("organizer") == 1
    unknown = uuid4()
    for _ in range(2):
        with pytest.raises(EventNotFound):
            await service.sync(ORGANIZER, unknown, scans)
    assert calls.log.count("organizer") == 3
