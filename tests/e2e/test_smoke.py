from __future__ import annotations

from tests.support import Api


async def test_book_and_cancel_round_trip(api: Api) -> None:
    event = await api.event(capacity=2)
    fan = await api.user()
    booked = await api.book(fan, event["id"], quantity=2)
    assert booked.status_code == 201, booked.text
    assert booked.headers["location"] == f"/bookings/{booked.json()['id']}"
    sold_out = await api.book(fan, event["id"])
    assert sold_out.status_code == 409
    assert sold_out.json()["type"].endswith("/sold-out")
    assert sold_out.json()["available"] == 0
    cancel = await api.http.post(f"/bookings/{booked.json()['id']}/cancel", headers=fan.headers)
    assert cancel.status_code == 200
    assert cancel.json()["status"] == "cancelled"
    again = await api.http.get(f"/events/{event['id']}")
    assert again.json()["availableSpots"] == 2
