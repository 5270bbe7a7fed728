"""Tickets (API.md "Tickets and check-in"): a confirmed booking's tickets, their codes, verifiable
offline with the published keys, their QR codes, and who may see them."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
import segno

from goticket.config import Settings
from goticket.kit.auth import Role
from goticket.tickets.domain import verify_code
from goticket.tickets.keyring import KeyRingFile
from goticket.tickets.signing import public_keys_from_jwks
from tests.bookings_support import DB
from tests.support import Api, assert_problem, serving
from tests.tickets_support import Door

TICKET_FIELDS = {"id", "bookingId", "eventId", "status", "code", "checkedInAt"}
KEYS = "/.well-known/goticket-keys.json"


async def published_keys(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get(KEYS)
    assert response.status_code == 200
    return dict(public_keys_from_jwks(response.json()))


@pytest.mark.parametrize("quantity", [1, 4])
async def test_an_instant_booking_of_n_has_n_valid_tickets_whose_codes_verify_offline(
    api: Api, db: DB, quantity: int
) -> None:
    door = await Door.open(api)
    fan = await api.user()
    booking = await door.book(fan, quantity)

    tickets = await door.tickets(fan, booking["id"])

    assert len(tickets) == quantity
    assert len({t["id"] for t in tickets}) == quantity
    keys = await published_keys(api.http)
    for ticket in tickets:
        assert set(ticket) == TICKET_FIELDS
        assert ticket["bookingId"] == booking["id"]
        assert ticket["eventId"] == door.id
        assert ticket["status"] == "valid"
        assert ticket["checkedInAt"] is None
        claims = verify_code(ticket["code"], keys)  # offline: the public keys only
        assert (str(claims.ticket_id), str(claims.event_id)) == (ticket["id"], door.id)
    rows = await db.fetchval("SELECT count(*) FROM tickets WHERE booking_id = $1", booking["id"])
    assert rows == quantity
    # Deterministic: the same ticket shows the same code each time.
    assert [t["code"] for t in await door.tickets(fan, booking["id"])] == [
        t["code"] for t in tickets
    ]


async def test_the_organizer_and_an_admin_see_the_tickets_others_get_404(api: Api) -> None:
    door = await Door.open(api)
    fan = await api.user()
    booking = await door.book(fan, 2)
    owner_view = await door.tickets(fan, booking["id"])
    assert await door.tickets(door.organizer, booking["id"]) == owner_view
    assert await door.tickets(await api.user(Role.ADMIN), booking["id"]) == owner_view
    path = f"/bookings/{booking['id']}/tickets"
    for stranger in (await api.user(), await api.user(Role.ORGANIZER)):
        assert_problem(await api.http.get(path, headers=stranger.headers), 404, "not-found")
    assert_problem(await api.http.get(path), 401, "unauthorized")
    for missing in (f"/bookings/{uuid.uuid4()}/tickets", "/bookings/not-a-uuid/tickets"):
        assert_problem(await api.http.get(missing, headers=fan.headers), 404, "not-found")


async def test_cancelling_a_booking_voids_its_tickets(api: Api) -> None:
    door = await Door.open(api)
    fan = await api.user()
    booking = await door.book(fan, 3)
    cancelled = await api.http.post(f"/bookings/{booking['id']}/cancel", headers=fan.headers)
    assert cancelled.status_code == 200, cancelled.text

    tickets = await door.tickets(fan, booking["id"])

    assert [t["status"] for t in tickets] == ["void"] * 3
    for ticket in tickets:
        assert_problem(await door.check_in(ticket["code"]), 409, "ticket-void")


def svg_size(svg: bytes) -> tuple[float, float]:
    root = ElementTree.fromstring(svg)  # noqa: S314 (our own server's answer)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return float(root.attrib["width"]), float(root.attrib["height"])


async def test_the_qr_code_is_an_svg_of_the_ticket_code(api: Api) -> None:
    door = await Door.open(api)
    fan = await api.user()
    booking = await door.book(fan)
    (ticket,) = await door.tickets(fan, booking["id"])
    path = f"/tickets/{ticket['id']}/qr.svg"

    response = await api.http.get(path, headers=fan.headers)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    width, height = svg_size(response.content)
    assert width == height
    # The symbol of exactly this code: its version fixes the size (4 px per module, a 4-module
    # quiet zone), and a longer text needs a larger symbol.
    symbol = segno.make(ticket["code"], error="m", micro=False)
    assert width == (symbol.symbol_size(scale=1, border=4)[0]) * 4
    longer = segno.make(ticket["code"] * 3, error="m", micro=False)
    assert longer.symbol_size()[0] > symbol.symbol_size()[0]
    assert re.search(rb"<path[^>]+d=", response.content)
    # Who may see the booking: the organizer too; a stranger and an unknown ticket get 404.
    assert (await api.http.get(path, headers=door.organizer.headers)).status_code == 200
    stranger = await api.user()
    assert_problem(await api.http.get(path, headers=stranger.headers), 404, "not-found")
    unknown = f"/tickets/{uuid.uuid4()}/qr.svg"
    assert_problem(await api.http.get(unknown, headers=fan.headers), 404, "not-found")
    assert_problem(
        await api.http.get("/tickets/nope/qr.svg", headers=fan.headers), 404, "not-found"
    )


async def test_after_a_key_rotation_an_old_code_still_checks_in(
    settings: Settings, database_url: str, db: DB, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    own = settings.model_copy(update={"data_dir": data})
    async with serving(own) as first, _client(first) as http:
        api = Api(http, own, database_url)
        door = await Door.open(api)
        fan = await api.user()
        booking = await door.book(fan, 2)
        old_codes = await door.codes(fan, 1) + [
            t["code"] for t in await door.tickets(fan, booking["id"])
        ]
    old_kid = verify_code(old_codes[0], await _keys_of(data)).kid
    rotated = KeyRingFile(data).rotate(datetime.now(UTC))
    assert rotated.current.kid != old_kid

    async with serving(own) as second, _client(second) as http:
        api = Api(http, own, database_url)
        door.api = api
        keys = await published_keys(http)
        assert set(keys) == {old_kid, rotated.current.kid}
        checked = await door.check_in(old_codes[0])
        assert checked.status_code == 200, checked.text
        # Shown again, a ticket's code is signed with the new key; both verify offline.
        shown = await door.tickets(fan, booking["id"])
        assert {verify_code(t["code"], keys).kid for t in shown} == {rotated.current.kid}
        assert verify_code(old_codes[1], keys).kid == old_kid
        assert (await door.check_in(old_codes[1])).status_code == 200


async def _keys_of(data: Path) -> dict[str, Any]:
    ring = KeyRingFile(data).existing()
    assert ring is not None
    return dict(ring.public_keys())


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t.test")
