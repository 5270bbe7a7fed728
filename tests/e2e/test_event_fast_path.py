"""``GET /events/{id}`` runs on a plain ASGI handler (``event_fast_route``) for the canonical
spelling of the id: every answer must be the one the framework route gives. Reads change
nothing, so both clients read the same event and the answers must be equal."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support import Api

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def _shape(response: httpx.Response) -> tuple[Any, ...]:
    headers = {
        name: value
        for name, value in response.headers.items()
        if name not in ("date", "x-request-id", "age")
    }
    return response.status_code, headers, response.content


CASES: dict[str, tuple[str, dict[str, str]]] = {
    "an event": ("/events/{id}", {}),
    "its etag": ("/events/{id}", {"If-None-Match": "{etag}"}),
    "its etag, weak": ("/events/{id}", {"If-None-Match": "W/{etag}"}),
    "its etag in a list": ("/events/{id}", {"If-None-Match": '"x", {etag}'}),
    "any etag": ("/events/{id}", {"If-None-Match": "*"}),
    "another etag": ("/events/{id}", {"If-None-Match": '"nope"'}),
    "a query string": ("/events/{id}?x=1", {}),
    "upper-case id": ("/events/{ID}", {}),
    "no such event": (f"/events/{UNKNOWN}", {}),
    "no such event, any etag": (f"/events/{UNKNOWN}", {"If-None-Match": "*"}),
    "not a uuid": ("/events/not-a-uuid", {}),
    "trailing slash": ("/events/{id}/", {}),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_fast_read_answers_like_the_framework(
    name: str, api: Api, framework_only: httpx.AsyncClient
) -> None:
    event = await api.event()
    first = await api.http.get(f"/events/{event['id']}")
    assert first.status_code == 200, first.text
    path, headers = CASES[name]
    fill = {"id": event["id"], "ID": event["id"].upper(), "etag": first.headers["etag"]}
    path = path.format(**fill)
    headers = {k: v.replace("{etag}", fill["etag"]) for k, v in headers.items()}
    fast, framework = [
        _shape(await http.get(path, headers=headers)) for http in (api.http, framework_only)
    ]
    assert fast == framework


async def test_the_fast_read_takes_only_its_route(api: Api) -> None:
    """GET on the canonical path, logged and counted under the route's template; other methods
    of the path stay the framework's."""
    event = await api.event()
    read = await api.http.get(f"/events/{event['id']}")
    assert read.status_code == 200
    assert read.json()["id"] == event["id"]
    assert (await api.http.post(f"/events/{event['id']}")).status_code == 405
    assert (await api.http.delete(f"/events/{event['id']}")).status_code == 401
