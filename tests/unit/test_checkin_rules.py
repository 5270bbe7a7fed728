"""The pure rules of check-in: who may run the door, when a scan happened, and what an offline
batch decides (``plan_sync``), as tables of cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest

from goticket.kit.auth import Principal, Role
from goticket.tickets.domain import (
    EARLIEST,
    AlreadyCheckedIn,
    EventNotFound,
    InvalidTicketCode,
    NotDoorManager,
    Scan,
    ScanOutcome,
    Ticket,
    TicketState,
    TicketStatus,
    TicketVoid,
    ensure_can_manage_door,
    plan_sync,
    refuse_scan,
    scan_time,
)

NOW = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)
T = [NOW - timedelta(minutes=m) for m in range(60, 0, -10)]  # T[0] earliest .. T[5] latest
A, B, C = UUID(int=1), UUID(int=2), UUID(int=3)
OK = ScanOutcome.CHECKED_IN
AGAIN = ScanOutcome.ALREADY_CHECKED_IN
VALID = TicketState(TicketStatus.VALID, None)


def used(at: datetime) -> TicketState:
    return TicketState(TicketStatus.USED, at)


def scan(ticket: UUID | None, at: datetime, refused: ScanOutcome | None = None) -> Scan:
    return Scan(f"code-{ticket}", at, ticket, refused)


@pytest.mark.parametrize(
    ("scans", "before", "expected", "stored"),
    [
        pytest.param([scan(A, T[2])], {A: VALID}, [(OK, T[2])], {A: T[2]}, id="first scan"),
        pytest.param(
            [scan(A, T[3]), scan(A, T[1]), scan(A, T[2])],
            {A: VALID},
            [(AGAIN, T[1]), (OK, T[1]), (AGAIN, T[1])],
            {A: T[1]},
            id="the earliest scan of the batch checks in, whatever its place",
        ),
        pytest.param(
            [scan(A, T[2]), scan(A, T[2])],
            {A: VALID},
            [(OK, T[2]), (AGAIN, T[2])],
            {A: T[2]},
            id="equal times: the first of them",
        ),
        pytest.param(
            [scan(A, T[1])],
            {A: used(T[3])},
            [(AGAIN, T[1])],
            {A: T[1]},
            id="an earlier scan arriving later moves the time back",
        ),
        pytest.param(
            [scan(A, T[4])],
            {A: used(T[3])},
            [(AGAIN, T[3])],
            {},
            id="a later scan of a used ticket changes nothing",
        ),
        pytest.param(
            [scan(A, T[3])],
            {A: used(T[3])},
            [(AGAIN, T[3])],
            {},
            id="the same batch again changes nothing",
        ),
        pytest.param(
            [scan(A, T[1])],
            {A: TicketState(TicketStatus.VOID, None)},
            [(ScanOutcome.VOID, None)],
            {},
            id="void",
        ),
        pytest.param(
            [scan(A, T[1])], {}, [(ScanOutcome.INVALID, None)], {}, id="signed but no such ticket"
        ),
        pytest.param(
            [
                scan(None, T[0], ScanOutcome.INVALID),
                scan(B, T[2]),
                scan(None, T[0], ScanOutcome.WRONG_EVENT),
                scan(A, T[4]),
                scan(C, T[0]),
                scan(B, T[1]),
            ],
            {A: used(T[5]), B: VALID, C: TicketState(TicketStatus.VOID, None)},
            [
                (ScanOutcome.INVALID, None),
                (AGAIN, T[1]),
                (ScanOutcome.WRONG_EVENT, None),
                (AGAIN, T[4]),
                (ScanOutcome.VOID, None),
                (OK, T[1]),
            ],
            {A: T[4], B: T[1]},
            id="mixed, in order",
        ),
    ],
)
def test_plan_sync(
    scans: list[Scan],
    before: dict[UUID, TicketState],
    expected: list[tuple[ScanOutcome, datetime | None]],
    stored: dict[UUID, datetime],
) -> None:
    plan = plan_sync(scans, before)
    assert [(r.outcome, r.checked_in_at) for r in plan.results] == expected
    assert [r.code for r in plan.results] == [s.code for s in scans]
    assert plan.check_ins == stored


def test_replaying_a_plan_on_its_own_result_changes_nothing() -> None:
    scans = [scan(A, T[3]), scan(B, T[2]), scan(A, T[1])]
    first = plan_sync(scans, {A: VALID, B: used(T[4])})
    after = {ticket: used(at) for ticket, at in first.check_ins.items()}
    again = plan_sync(scans, after)
    assert again.check_ins == {}
    assert {r.outcome for r in again.results} == {AGAIN}
    assert [r.checked_in_at for r in again.results] == [r.checked_in_at for r in first.results]


@pytest.mark.parametrize(
    ("scanned_at", "expected"),
    [
        pytest.param(T[0], T[0], id="past: as it is"),
        pytest.param(NOW + timedelta(hours=1), NOW, id="future: the server's now"),
        pytest.param(
            datetime(2026, 12, 7, 21, 0, tzinfo=timezone(timedelta(hours=2))),
            datetime(2026, 12, 7, 19, 0, tzinfo=UTC),
            id="another offset: in UTC",
        ),
        pytest.param(
            datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), EARLIEST, id="before year 1"
        ),
    ],
)
def test_scan_time(scanned_at: datetime, expected: datetime) -> None:
    got = scan_time(scanned_at, NOW)
    assert got == expected
    assert got.utcoffset() == timedelta(0)


ORGANIZER = uuid4()


@pytest.mark.parametrize(
    ("actor", "organizer", "error"),
    [
        (Principal(ORGANIZER, Role.ORGANIZER), ORGANIZER, None),
        (Principal(uuid4(), Role.ADMIN), ORGANIZER, None),
        (Principal(uuid4(), Role.ORGANIZER), ORGANIZER, NotDoorManager),
        (Principal(uuid4(), Role.USER), ORGANIZER, NotDoorManager),
        # The organizer even after losing the role: the event is still theirs.
        (Principal(ORGANIZER, Role.USER), ORGANIZER, None),
        (Principal(uuid4(), Role.ADMIN), None, EventNotFound),
    ],
)
def test_who_runs_the_door(
    actor: Principal, organizer: UUID | None, error: type[Exception] | None
) -> None:
    if error is None:
        ensure_can_manage_door(actor, organizer)
    else:
        with pytest.raises(error):
            ensure_can_manage_door(actor, organizer)


def ticket(status: TicketStatus, at: datetime | None = None) -> Ticket:
    return Ticket(uuid4(), uuid4(), uuid4(), 1, status, at, NOW)


def test_why_a_scan_is_refused() -> None:
    with pytest.raises(AlreadyCheckedIn) as again:
        refuse_scan(ticket(TicketStatus.USED, T[1]))
    assert again.value.extra == {"checked_in_at": T[1]}
    with pytest.raises(TicketVoid):
        refuse_scan(ticket(TicketStatus.VOID))
    with pytest.raises(InvalidTicketCode):
        refuse_scan(None)
