"""Check-in at the door and the offline sync (API.md "Tickets and check-in"), and an event's
sales summary, through the real HTTP path on real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from goticket.config import Settings
from goticket.kit.auth import Role
from goticket.tickets.domain import b64url
from goticket.tickets.endpoints import SYNC_MAX_BODY_BYTES
from tests.bookings_support import DB
from tests.e2e.test_metrics import scrape
from tests.support import Api, assert_problem
from tests.tickets_support import Door


def at(moment: datetime) -> str:
    return moment.isoformat()


def tampered(code: str) -> str:
    prefix, payload, signature = code.split(".")
    raw = bytearray(signature.encode())
    raw[5] = ord("A") if raw[5] != ord("A") else ord("B")
    return f"{prefix}.{payload}.{raw.decode()}"


async def test_the_first_scan_checks_in_the_second_is_409_with_the_first_time(api: Api) -> None:
    door = await Door.open(api)
    fan = await api.user()
    (code,) = await door.codes(fan)
    before = datetime.now(UTC)

    first = await door.check_in(code)

    assert first.status_code == 200, first.text
    body = first.json()
    assert set(body) == {"ticket", "firstCheckIn"}
    assert body["firstCheckIn"] is True
    ticket = body["ticket"]
    assert ticket["status"] == "used"
    assert ticket["eventId"] == door.id
    assert ticket["code"] == code
    checked_in_at = datetime.fromisoformat(ticket["checkedInAt"])
    assert before - timedelta(seconds=5) <= checked_in_at <= datetime.now(UTC)

    again = await door.check_in(code)
    problem = assert_problem(again, 409, "already-checked-in")
    assert datetime.fromisoformat(problem["checkedInAt"]) == checked_in_at
    # The booking's owner sees it used.
    (shown,) = await door.tickets(fan, ticket["bookingId"])
    assert (shown["status"], shown["checkedInAt"]) == ("used", ticket["checkedInAt"])


async def test_an_admin_may_check_in_other_users_get_403_an_unknown_event_404(api: Api) -> None:
    door = await Door.open(api)
    fan = await api.user()
    codes = await door.codes(fan, 2)
    for stranger in (fan, await api.user(Role.ORGANIZER)):
        assert_problem(await door.check_in(codes[0], stranger), 403, "forbidden")
        assert_problem(await door.sync([(codes[0], at(datetime.now(UTC)))], stranger), 403,
                       "forbidden")  # fmt: skip
    assert (await door.check_in(codes[0], await api.user(Role.ADMIN))).status_code == 200
    unknown = await api.http.post(
        f"/events/{uuid.uuid4()}/checkins", json={"code": codes[1]}, headers=fan.headers
    )
    assert_problem(unknown, 404, "not-found")
    malformed = await api.http.post(
        "/events/nope/checkins", json={"code": codes[1]}, headers=fan.headers
    )
    assert_problem(malformed, 404, "not-found")
    assert_problem(
        await api.http.post(f"/events/{door.id}/checkins", json={"code": codes[1]}), 401,
        "unauthorized",
    )  # fmt: skip


async def test_a_scan_for_an_event_deleted_since_the_last_scan_is_404(api: Api) -> None:
    """The door remembers an event's organizer; an event deleted meanwhile is still a 404."""
    door = await Door.open(api)
    fan = await api.user()
    first, second = await door.codes(fan, 2)
    assert (await door.check_in(first)).status_code == 200
    booking = (await api.http.get("/me/bookings", headers=fan.headers)).json()["items"][0]
    cancel = await api.http.post(f"/bookings/{booking['id']}/cancel", headers=fan.headers)
    assert cancel.status_code == 200, cancel.text
    deleted = await api.http.delete(f"/events/{door.id}", headers=door.organizer.headers)
    assert deleted.status_code == 204, deleted.text
    assert_problem(await door.check_in(second), 404, "not-found")


@pytest.mark.parametrize(
    "garble",
    [
        pytest.param(tampered, id="tampered signature"),
        pytest.param(lambda code: code[:-3], id="truncated"),
        pytest.param(lambda code: "not a code", id="garbage"),
        pytest.param(
            lambda code: code.replace(code.split(".")[1], b64url(b'{"tid":"x"}')), id="forged"
        ),
    ],
)
async def test_a_code_that_does_not_verify_is_422_invalid_ticket(api: Api, garble: Any) -> None:
    door = await Door.open(api)
    (code,) = await door.codes(await api.user())
    problem = assert_problem(await door.check_in(garble(code)), 422, "invalid-ticket")
    assert [e["field"] for e in problem["errors"]] == ["code"]
    assert (await door.check_in(code)).status_code == 200  # the genuine one still checks in


async def test_a_valid_ticket_of_another_event_is_422_wrong_event(api: Api) -> None:
    door = await Door.open(api)
    other = await Door.open(api, name="Another Night")
    fan = await api.user()
    (code,) = await other.codes(fan)
    assert_problem(await door.check_in(code), 422, "wrong-event")
    # An admin at the wrong door, too; the ticket stays valid for its own event.
    assert_problem(await door.check_in(code, await api.user(Role.ADMIN)), 422, "wrong-event")
    assert (await other.check_in(code)).status_code == 200


async def test_body_rules_of_check_in(api: Api) -> None:
    door = await Door.open(api)
    path = f"/events/{door.id}/checkins"
    headers = door.organizer.headers
    for body, field in [({}, "code"), ({"code": ""}, "code"), ({"code": "x", "extra": 1}, "extra")]:
        problem = assert_problem(await api.http.post(path, json=body, headers=headers), 422,
                                 "validation")  # fmt: skip
        assert field in {e["field"] for e in problem["errors"]}
    raw = await api.http.post(
        path, content=b"{", headers={**headers, "Content-Type": "application/json"}
    )
    assert_problem(raw, 400, "bad-request")


async def test_concurrent_scans_of_one_code_check_it_in_exactly_once(api: Api, db: DB) -> None:
    door = await Door.open(api)
    (code,) = await door.codes(await api.user())

    answers = await asyncio.gather(*(door.check_in(code) for _ in range(64)))

    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] + [409] * 63, statuses
    (winner,) = [r for r in answers if r.status_code == 200]
    first_time = winner.json()["ticket"]["checkedInAt"]
    for loser in answers:
        if loser.status_code == 409:
            problem = assert_problem(loser, 409, "already-checked-in")
            assert datetime.fromisoformat(problem["checkedInAt"]) == datetime.fromisoformat(
                first_time
            )
    assert await db.fetchval("SELECT count(*) FROM tickets WHERE status = 'used'") == 1


# ------------------------------------------------------------------------------------ sync


async def test_sync_mixed_outcomes_in_order(api: Api) -> None:
    door = await Door.open(api)
    other = await Door.open(api, name="Elsewhere")
    fan = await api.user()
    fresh, used, duplicate = await door.codes(fan, 3)
    void_booking = await door.book(fan, 1)
    (void,) = [t["code"] for t in await door.tickets(fan, void_booking["id"])]
    cancelled = await api.http.post(f"/bookings/{void_booking['id']}/cancel", headers=fan.headers)
    assert cancelled.status_code == 200
    (foreign,) = await other.codes(fan)
    online = await door.check_in(used)
    online_at = online.json()["ticket"]["checkedInAt"]
    now = datetime.now(UTC)
    t1, t2 = now - timedelta(minutes=30), now - timedelta(minutes=20)

    response = await door.sync(
        [
            (fresh, at(t2)),
            ("GT1.garbage", at(t1)),
            (used, at(now + timedelta(days=1))),  # ahead of the server: counts as its now
            (void, at(t1)),
            (foreign, at(t1)),
            (duplicate, at(t2)),
            (duplicate, at(t1)),  # the earlier scan of a ticket in one batch wins
            (tampered(fresh), at(t1)),
        ]
    )

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["outcome"] for r in results] == [
        "checked-in",
        "invalid",
        "already-checked-in",
        "void",
        "wrong-event",
        "already-checked-in",
        "checked-in",
        "invalid",
    ]
    assert [r["code"] for r in results][:2] == [fresh, "GT1.garbage"]
    times = [r["checkedInAt"] and datetime.fromisoformat(r["checkedInAt"]) for r in results]
    assert times[0] == t2
    assert times[1] is None
    assert times[2] == datetime.fromisoformat(online_at)  # the online time was earlier
    assert times[3] is None  # a void ticket was never used
    assert times[4] is None
    assert times[5] == times[6] == t1
    assert times[7] is None


async def test_an_earlier_scan_arriving_later_moves_checked_in_at_back(api: Api) -> None:
    door = await Door.open(api)
    fan = await api.user()
    booking = await door.book(fan)
    (ticket,) = await door.tickets(fan, booking["id"])
    online = await door.check_in(ticket["code"])
    assert online.status_code == 200
    earlier = datetime.now(UTC) - timedelta(hours=1)

    response = await door.sync([(ticket["code"], at(earlier))])

    (result,) = response.json()["results"]
    assert result["outcome"] == "already-checked-in"
    assert datetime.fromisoformat(result["checkedInAt"]) == earlier
    (shown,) = await door.tickets(fan, booking["id"])
    assert datetime.fromisoformat(shown["checkedInAt"]) == earlier
    problem = assert_problem(await door.check_in(ticket["code"]), 409, "already-checked-in")
    assert datetime.fromisoformat(problem["checkedInAt"]) == earlier
    # A later scan moves nothing.
    later = await door.sync([(ticket["code"], at(earlier + timedelta(minutes=5)))])
    assert datetime.fromisoformat(later.json()["results"][0]["checkedInAt"]) == earlier


async def test_sending_the_same_batch_again_changes_nothing(api: Api, db: DB) -> None:
    door = await Door.open(api)
    codes = await door.codes(await api.user(), 5)
    base = datetime.now(UTC) - timedelta(minutes=10)
    scans = [(code, at(base + timedelta(seconds=i))) for i, code in enumerate(codes)]

    first = (await door.sync(scans)).json()["results"]
    before = await db.fetch("SELECT id, status, checked_in_at FROM tickets ORDER BY id")
    second = (await door.sync(scans)).json()["results"]

    assert [r["outcome"] for r in first] == ["checked-in"] * 5
    assert [r["outcome"] for r in second] == ["already-checked-in"] * 5
    assert [r["checkedInAt"] for r in second] == [r["checkedInAt"] for r in first]
    assert await db.fetch("SELECT id, status, checked_in_at FROM tickets ORDER BY id") == before


async def test_a_batch_of_1000_is_one_request_and_1001_is_422(api: Api, db: DB) -> None:
    door = await Door.open(api, capacity=1000)
    fans = await asyncio.gather(*(api.user() for _ in range(4)))
    codes: list[str] = []
    for fan in fans:
        for _ in range(2):
            codes += await door.codes(fan, 10)
    now = datetime.now(UTC)
    scans = [(codes[i % len(codes)], at(now - timedelta(seconds=i))) for i in range(1000)]

    response = await door.sync(scans)

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 1000
    assert sum(r["outcome"] == "checked-in" for r in results) == len(codes)
    used = await db.fetchval("SELECT count(*) FROM tickets WHERE status = 'used'")
    assert used == len(codes)
    too_many = await door.sync([*scans, scans[0]])
    assert_problem(too_many, 422, "validation")
    assert_problem(await door.sync([]), 422, "validation")


async def test_scanned_at_needs_an_offset(api: Api) -> None:
    door = await Door.open(api)
    (code,) = await door.codes(await api.user())
    problem = assert_problem(await door.sync([(code, "2026-12-01T20:00:00")]), 422, "validation")
    assert any("scannedAt" in e["field"] for e in problem["errors"])
    # An instant before year 1 in UTC counts as the earliest storable one, never a 500.
    odd = await door.sync([(code, "0001-01-01T00:00:00+01:00")])
    assert odd.status_code == 200, odd.text
    assert odd.json()["results"][0]["checkedInAt"].startswith("0001-01-01T00:00:00")


async def test_a_sync_racing_online_scans_checks_each_ticket_in_once(api: Api, db: DB) -> None:
    door = await Door.open(api)
    codes = await door.codes(await api.user(), 10)
    when = at(datetime.now(UTC) - timedelta(minutes=1))

    online = [door.check_in(code) for code in codes]
    batches = [door.sync([(code, when) for code in codes]) for _ in range(3)]
    answers = await asyncio.gather(*online, *batches)

    first_uses = sum(r.status_code == 200 for r in answers[:10])
    for batch in answers[10:]:
        assert batch.status_code == 200, batch.text
        first_uses += sum(r["outcome"] == "checked-in" for r in batch.json()["results"])
    assert first_uses == 10
    assert await db.fetchval("SELECT count(*) FROM tickets WHERE status = 'used'") == 10
    # Whoever won, the scanners' earlier time is every ticket's time now.
    times = await db.fetch("SELECT DISTINCT checked_in_at FROM tickets")
    assert [row["checked_in_at"] for row in times] == [datetime.fromisoformat(when)]


# ------------------------------------------------------------------------------------ sales


async def test_the_sales_summary_after_bookings_cancels_and_check_ins(api: Api) -> None:
    door = await Door.open(api, capacity=50, price=1500, currency="USD")
    fans = await asyncio.gather(*(api.user() for _ in range(3)))
    kept = await door.book(fans[0], 4)
    await door.book(fans[1], 2)
    dropped = await door.book(fans[2], 3)
    cancel = await api.http.post(f"/bookings/{dropped['id']}/cancel", headers=fans[2].headers)
    assert cancel.status_code == 200
    for ticket in (await door.tickets(fans[0], kept["id"]))[:3]:
        assert (await door.check_in(ticket["code"])).status_code == 200

    response = await door.sales()

    assert response.status_code == 200, response.text
    assert response.json() == {
        "capacity": 50,
        "available": 44,
        "pending": 0,
        "confirmed": 6,
        "cancelled": 3,
        "expired": 0,
        "checkedIn": 3,
        "revenue": {"amount": 6 * 1500, "currency": "USD"},
    }
    admin = await api.user(Role.ADMIN)
    assert (await door.sales(admin)).json() == response.json()


async def test_sales_of_an_event_without_bookings_and_who_may_see_them(api: Api) -> None:
    door = await Door.open(api, capacity=7)
    assert (await door.sales()).json() == {
        "capacity": 7,
        "available": 7,
        "pending": 0,
        "confirmed": 0,
        "cancelled": 0,
        "expired": 0,
        "checkedIn": 0,
        "revenue": {"amount": 0, "currency": "EUR"},
    }
    for stranger in (await api.user(), await api.user(Role.ORGANIZER)):
        assert_problem(await door.sales(stranger), 403, "forbidden")
    headers = door.organizer.headers
    for path in (f"/events/{uuid.uuid4()}/sales", "/events/nope/sales"):
        assert_problem(await api.http.get(path, headers=headers), 404, "not-found")
    assert_problem(await api.http.get(f"/events/{door.id}/sales"), 401, "unauthorized")


# ------------------------------------------------------------------------------------ metrics


async def test_check_ins_are_counted_by_outcome(api: Api, settings: Settings) -> None:
    door = await Door.open(api)
    other = await Door.open(api)
    fan = await api.user()
    a, b = await door.codes(fan, 2)
    (foreign,) = await other.codes(fan)
    before = await scrape(api.http, settings)

    await door.check_in(a)
    await door.check_in(a)
    await door.check_in(tampered(a))
    await door.check_in(foreign)
    await door.sync(
        [(b, at(datetime.now(UTC))), (b, at(datetime.now(UTC))), ("x", at(datetime.now(UTC)))]
    )

    after = await scrape(api.http, settings)

    def delta(outcome: str, via: str) -> float:
        name = "goticket_checkins_total"
        return after.get(name, outcome=outcome, via=via) - before.get(
            name, outcome=outcome, via=via
        )

    assert after.types["goticket_checkins"] == "counter"
    assert delta("checked-in", "scan") == 1
    assert delta("already-checked-in", "scan") == 1
    assert delta("invalid", "scan") == 1
    assert delta("wrong-event", "scan") == 1
    assert delta("checked-in", "sync") == 1
    assert delta("already-checked-in", "sync") == 1
    assert delta("invalid", "sync") == 1


async def test_a_sync_body_may_pass_64_kib_but_not_its_own_bound(api: Api) -> None:
    door = await Door.open(api)
    when = at(datetime.now(UTC))
    # 1000 scans of long (invalid) codes: far past 64 KiB, within the sync route's bound.
    scans = [("G" * 1000, when) for _ in range(1000)]
    response = await door.sync(scans)
    assert response.status_code == 200, response.text
    assert {r["outcome"] for r in response.json()["results"]} == {"invalid"}
    huge = b'{"scans": [' + b" " * SYNC_MAX_BODY_BYTES + b"]}"
    too_big = await api.http.post(
        f"/events/{door.id}/checkins/sync",
        content=huge,
        headers={**door.organizer.headers, "Content-Type": "application/json"},
    )
    assert_problem(too_big, 413, "payload-too-large")
    # Every other route keeps 64 KiB.
    check_in = await api.http.post(
        f"/events/{door.id}/checkins",
        content=b'{"code": "' + b"G" * 70_000 + b'"}',
        headers={**door.organizer.headers, "Content-Type": "application/json"},
    )
    assert_problem(check_in, 413, "payload-too-large")


async def test_sales_count_holds_and_expired_holds_in_spots(api: Api, db: DB) -> None:
    # Holds are made by the checkout (another context): written here as it writes them, with
    # the held spots taken from the inventory, so the invariant holds.
    door = await Door.open(api, capacity=20, price=1000)
    fan = await api.user()
    await door.book(fan, 1)
    now = datetime.now(UTC)
    for status, quantity in (("pending", 2), ("expired", 5)):
        await db.execute(
            """INSERT INTO bookings (id, event_id, user_id, quantity, status, total_price,
                                     currency, created_at, updated_at, expires_at, payment_id,
                                     payment_provider, payment_status)
               VALUES ($1, $2, $3, $4, $5, $6, 'EUR', $7, $7, $7, $1, 'fake',
                       'requires_payment')""",
            uuid.uuid4(),
            uuid.UUID(door.id),
            fan.id,
            quantity,
            status,
            quantity * 1000,
            now,
        )
    await db.execute(
        "UPDATE event_inventory SET available = available - 2 WHERE event_id = $1",
        uuid.UUID(door.id),
    )

    body = (await door.sales()).json()

    assert body == {
        "capacity": 20,
        "available": 17,
        "pending": 2,
        "confirmed": 1,
        "cancelled": 0,
        "expired": 5,
        "checkedIn": 0,
        "revenue": {"amount": 1000, "currency": "EUR"},
    }
    assert await db.fetchval("SELECT count(*) FROM tickets WHERE event_id = $1", door.id) == 1


async def test_a_ticket_held_by_another_writer_holds_up_no_other_scan(api: Api, db: DB) -> None:
    """Scans go to the database in batches: a ticket whose row another transaction holds (a
    sync, a cancel) is skipped by the batch and waits alone; the others check in at once."""
    door = await Door.open(api)
    fan = await api.user()
    held, *others = await door.codes(fan, 3)
    shown = await door.tickets(
        fan, (await api.http.get("/me/bookings", headers=fan.headers)).json()["items"][0]["id"]
    )
    held_id = next(t["id"] for t in shown if t["code"] == held)
    async with db.transaction():
        await db.execute("SELECT 1 FROM tickets WHERE id = $1::uuid FOR UPDATE", held_id)
        waiting = asyncio.create_task(door.check_in(held))
        answers = await asyncio.wait_for(
            asyncio.gather(*(door.check_in(code) for code in others)), timeout=3
        )
        assert [a.status_code for a in answers] == [200, 200]
        assert not waiting.done()  # it waits for the row, alone
    first = await asyncio.wait_for(waiting, timeout=5)
    assert first.status_code == 200, first.text
    assert_problem(await door.check_in(held), 409, "already-checked-in")
