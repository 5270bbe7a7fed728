"""HTTP caching of GET /events/{id} and GET /events (API.md "Caching (v2)"), on an app whose read
cache has the production bound of 1 s (the session app reads exactly: max age 0)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from uuid import uuid4

import httpx
import pytest

from goticket.config import Settings
from goticket.kit.asgi import RequestContext
from tests.support import Api, assert_problem, serving

CACHE_CONTROL = "public, max-age=1"


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[RequestContext]:
    """Overrides conftest's ``app`` in this module: the read cache with its production bound."""
    async with serving(settings.model_copy(update={"read_cache_max_age": 1.0})) as application:
        yield application


def assert_cacheable(response: httpx.Response) -> str:
    assert response.headers["cache-control"] == CACHE_CONTROL, response.headers
    assert int(response.headers["age"]) in (0, 1), response.headers
    etag: str = response.headers["etag"]
    assert etag.startswith('"'), etag  # strong: no W/
    assert etag.endswith('"'), etag
    assert len(etag) > 2, etag
    return etag


@pytest.mark.parametrize("path", ["/events/{id}", "/events", "/events?limit=1"])
async def test_a_read_carries_an_etag_and_a_current_tag_gets_a_304_without_body(
    api: Api, path: str
) -> None:
    event = await api.event()
    url = path.format(id=event["id"])
    first = await api.http.get(url)
    assert first.status_code == 200, first.text
    etag = assert_cacheable(first)
    for header in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        again = await api.http.get(url, headers={"If-None-Match": header})
        assert again.status_code == 304, (header, again.text)
        assert again.content == b""
        assert assert_cacheable(again) == etag
    other = await api.http.get(url, headers={"If-None-Match": '"nope"'})
    assert other.status_code == 200
    assert other.json() == first.json()
    assert assert_cacheable(other) == etag


async def test_the_tag_changes_with_the_representation(api: Api) -> None:
    event = await api.event(capacity=5)
    first = await api.http.get(f"/events/{event['id']}")
    fan = await api.user()
    assert (await api.book(fan, event["id"], quantity=2)).status_code == 201
    deadline = time.monotonic() + 1.5
    while True:
        response = await api.http.get(
            f"/events/{event['id']}", headers={"If-None-Match": first.headers["etag"]}
        )
        if response.status_code == 200:
            break
        assert response.status_code == 304
        assert time.monotonic() < deadline, "the booking was not visible within the bound"
        await asyncio.sleep(0.05)
    assert response.json()["availableSpots"] == 3
    assert response.headers["etag"] != first.headers["etag"]


async def test_an_edit_is_served_at_once_through_the_notification(api: Api) -> None:
    organizer = await api.user("organizer")
    event = await api.event(organizer, name="Before")
    assert (await api.http.get(f"/events/{event['id']}")).json()["name"] == "Before"
    body = {k: event[k] for k in ("startAt", "endAt", "price", "capacity")}
    edited = await api.http.put(
        f"/events/{event['id']}", json={**body, "name": "After"}, headers=organizer.headers
    )
    assert edited.status_code == 200, edited.text
    started = time.monotonic()
    while (await api.http.get(f"/events/{event['id']}")).json()["name"] != "After":
        assert time.monotonic() - started < 1.0, "the edit was not visible within the bound"
        await asyncio.sleep(0.01)
    listed = await api.http.get("/events")
    assert [item["name"] for item in listed.json()["items"]] == ["After"]


async def test_a_deleted_event_becomes_a_404_and_a_new_one_enters_the_list(api: Api) -> None:
    organizer = await api.user("organizer")
    event = await api.event(organizer)
    assert (await api.http.get(f"/events/{event['id']}")).status_code == 200
    assert len((await api.http.get("/events")).json()["items"]) == 1
    deleted = await api.http.delete(f"/events/{event['id']}", headers=organizer.headers)
    assert deleted.status_code == 204, deleted.text
    newer = await api.event(organizer)
    started = time.monotonic()
    while (await api.http.get(f"/events/{event['id']}")).status_code != 404:
        assert time.monotonic() - started < 1.0
        await asyncio.sleep(0.01)
    while [item["id"] for item in (await api.http.get("/events")).json()["items"]] != [newer["id"]]:
        assert time.monotonic() - started < 1.0
        await asyncio.sleep(0.01)


async def test_an_unknown_event_is_a_404_whatever_if_none_match_says(api: Api) -> None:
    for header in (None, "*"):
        response = await api.http.get(
            f"/events/{uuid4()}", headers={"If-None-Match": header} if header else {}
        )
        assert_problem(response, 404, "not-found")
        assert "etag" not in response.headers
        assert response.headers["cache-control"] == CACHE_CONTROL


async def test_bad_list_parameters_are_still_a_422(api: Api) -> None:
    for query in ("limit=0", "cursor=forged", "startsAfter=yesterday"):
        response = await api.http.get(f"/events?{query}", headers={"If-None-Match": "*"})
        assert_problem(response, 422, "validation")


async def test_the_openapi_document_describes_the_caching(api: Api) -> None:
    document = (await api.http.get("/openapi.json")).json()
    for path in ("/events/{event_id}", "/events"):
        operation = document["paths"][path]["get"]
        header_params = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
        assert header_params == ["If-None-Match"], path
        responses = operation["responses"]
        assert {"ETag", "Cache-Control", "Age"} <= set(responses["200"]["headers"]), path
        assert "content" in responses["200"], path
        assert {"ETag", "Cache-Control", "Age"} <= set(responses["304"]["headers"]), path
        assert "content" not in responses["304"], path
    one = document["paths"]["/events/{event_id}"]["get"]["responses"]
    assert one["200"]["content"]["application/json"]["schema"]["$ref"].endswith("EventResponse")
    assert {"Cache-Control", "Age"} <= set(one["404"]["headers"])
