"""What every endpoint shares: request ids, problem details, body handling, operations routes and
the OpenAPI document."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import httpx
import msgspec
import pytest

from goticket.config import Settings
from goticket.kit.problems import Problem
from tests.support import PASSWORD, Actor, Api, event_body

PROBLEM_JSON = "application/problem+json"
MAX_BODY = 64 * 1024
JSON = {"Content-Type": "application/json"}


def assert_problem(response: httpx.Response, status: int, name: str) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with ``status`` whose type URI ends in ``name``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert re.fullmatch(r"https://[^\s]+/" + re.escape(name), body["type"]), body["type"]
    assert isinstance(body["title"], str)
    assert body["title"]
    assert "detail" not in body or isinstance(body["detail"], str)
    assert_no_internals(response)
    return body


def assert_no_internals(response: httpx.Response) -> None:
    """No stack trace, SQL or internal names in a response."""
    text = response.text.lower()
    for leak in ("traceback", "asyncpg", "psycopg", "select ", "insert into", '.py"'):
        assert leak not in text, (leak, response.text)
    assert not re.search(r"goticket\.(kit|accounts|events|booking|payments|app)", text), (
        response.text
    )


@dataclass(frozen=True)
class Call:
    """A request described up front, so that tables of them can be parametrized."""

    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: str | None = None  # "user", "organizer" or "admin"

    async def send(self, api: Api, extra_headers: dict[str, str] | None = None) -> httpx.Response:
        headers = dict(self.headers)
        if self.auth is not None:
            actor: Actor = await api.user(self.auth)
            headers.update(actor.headers)
        headers.update(extra_headers or {})
        return await api.http.request(
            self.method, self.path, json=self.json, content=self.content, headers=headers
        )


# Requests that end in every kind of answer the service gives.
ANSWERS: dict[str, tuple[Call, int]] = {
    "healthz-200": (Call("GET", "/healthz"), 200),
    "list-200": (Call("GET", "/events"), 200),
    "register-201": (
        Call("POST", "/auth/register", json={"email": "rid@example.com", "password": PASSWORD}),
        201,
    ),
    "malformed-400": (Call("POST", "/auth/login", content=b"{", headers=JSON), 400),
    "me-401": (Call("GET", "/auth/me"), 401),
    "create-403": (Call("POST", "/events", json=event_body(), auth="user"), 403),
    "event-404": (Call("GET", f"/events/{uuid4()}"), 404),
    "unmatched-404": (Call("GET", "/no/such/route"), 404),
    "malformed-id-404": (Call("GET", "/events/not-a-uuid"), 404),
    "method-405": (Call("DELETE", "/healthz"), 405),
    "method-405-events": (Call("PATCH", "/events"), 405),
    "too-large-413": (
        Call("POST", "/auth/register", content=b" " * (MAX_BODY + 1), headers=JSON),
        413,
    ),
    "media-type-415": (
        Call("POST", "/auth/login", content=b"email=a", headers={"Content-Type": "text/plain"}),
        415,
    ),
    "validation-422": (Call("GET", "/events?limit=0"), 422),
}


# ---------------------------------------------------------------------------- X-Request-ID


@pytest.mark.parametrize("case", sorted(ANSWERS))
async def test_every_response_has_a_generated_request_id(api: Api, case: str) -> None:
    call, status = ANSWERS[case]
    response = await call.send(api)
    assert response.status_code == status, response.text
    request_id = response.headers.get("x-request-id")
    assert request_id
    assert re.fullmatch(r"[\x21-\x7e]{8,128}", request_id)


@pytest.mark.parametrize("case", sorted(ANSWERS))
async def test_a_client_request_id_is_echoed(api: Api, case: str) -> None:
    call, status = ANSWERS[case]
    sent = f"client-{uuid4()}"
    response = await call.send(api, {"X-Request-ID": sent})
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"] == sent


async def test_generated_request_ids_are_unique(api: Api) -> None:
    seen = {(await api.http.get("/healthz")).headers["x-request-id"] for _ in range(20)}
    assert len(seen) == 20


async def test_request_id_header_name_is_case_insensitive(api: Api) -> None:
    response = await api.http.get("/healthz", headers={"x-request-id": "lower-case-42"})
    assert response.headers["x-request-id"] == "lower-case-42"
    # Exactly one X-Request-ID, never a second copy.
    assert len(response.headers.get_list("x-request-id")) == 1


async def test_an_unusable_request_id_is_replaced(api: Api) -> None:
    """An id that is too long or has spaces is not echoed into logs and headers; one is made."""
    for sent in ("x" * 500, "has spaces in it"):
        response = await api.http.get("/healthz", headers={"X-Request-ID": sent})
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        assert request_id
        assert request_id != sent
        assert re.fullmatch(r"[\x21-\x7e]{1,128}", request_id)


# ---------------------------------------------------------------------------- problem details


@pytest.mark.parametrize(
    "case",
    sorted(case for case, (_, status) in ANSWERS.items() if status >= 400),
)
async def test_errors_are_problem_details(api: Api, case: str) -> None:
    call, status = ANSWERS[case]
    response = await call.send(api)
    names = {
        400: "bad-request",
        401: "unauthorized",
        403: "forbidden",
        404: "not-found",
        405: "method-not-allowed",
        413: "payload-too-large",
        415: "unsupported-media-type",
        422: "validation",
    }
    assert_problem(response, status, names[status])


async def test_405_names_the_allowed_methods(api: Api) -> None:
    response = await api.http.delete("/healthz")
    assert_problem(response, 405, "method-not-allowed")
    allowed = {m.strip().upper() for m in response.headers["allow"].split(",")}
    assert "GET" in allowed
    assert "DELETE" not in allowed


@pytest.mark.parametrize("path", ["/nope", "/events/x/y/z", "/auth", "/users", "/events/"])
async def test_unknown_routes_are_404_problems(api: Api, path: str) -> None:
    response = await api.http.get(path)
    if path == "/events/":
        # A trailing slash may be treated as the collection; it must never be an error page.
        assert response.status_code in (200, 404)
        return
    assert_problem(response, 404, "not-found")


async def test_validation_problem_lists_errors_with_field_and_message(api: Api) -> None:
    response = await api.http.post("/auth/register", json={"email": "x", "password": "y"})
    body = assert_problem(response, 422, "validation")
    assert isinstance(body["errors"], list)
    assert body["errors"]
    for error in body["errors"]:
        assert set(error) == {"field", "message"}
        assert isinstance(error["field"], str)
        assert error["field"]
        assert isinstance(error["message"], str)
        assert error["message"]


# ---------------------------------------------------------------------------- request bodies

BODY_ENDPOINTS = [
    Call("POST", "/auth/register"),
    Call("POST", "/auth/login"),
    Call("POST", "/events", auth="organizer"),
]


async def send_raw(
    api: Api, endpoint: Call, content: bytes, content_type: str | None = "application/json"
) -> httpx.Response:
    headers = {} if content_type is None else {"Content-Type": content_type}
    return await Call(
        endpoint.method, endpoint.path, content=content, headers=headers, auth=endpoint.auth
    ).send(api)


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=lambda c: f"{c.method} {c.path}")
@pytest.mark.parametrize(
    "content",
    [
        b"{",
        b"{'email': 'a'}",
        b'{"email": "a",}',
        b"not json",
        b'{"email": "a"} trailing',
        b"\xff\xfe{}",
        b'{"email": "\\x"}',
        b"NaN",
    ],
)
async def test_malformed_json_is_400(api: Api, endpoint: Call, content: bytes) -> None:
    assert_problem(await send_raw(api, endpoint, content), 400, "bad-request")


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=lambda c: f"{c.method} {c.path}")
@pytest.mark.parametrize(
    "content", [b"[]", b'[{"email": "a@example.com"}]', b"42", b"-1.5", b'"text"', b"null", b"true"]
)
async def test_json_that_is_not_an_object_is_400(api: Api, endpoint: Call, content: bytes) -> None:
    assert_problem(await send_raw(api, endpoint, content), 400, "bad-request")


async def test_a_missing_body_is_400(api: Api) -> None:
    assert_problem(await send_raw(api, BODY_ENDPOINTS[0], b""), 400, "bad-request")


async def test_role_change_body_rules(api: Api) -> None:
    admin = await api.user("admin")
    subject = await api.user()
    path = f"/users/{subject.id}/role"
    bad = await api.http.put(path, content=b"[1]", headers={**admin.headers, **JSON})
    assert_problem(bad, 400, "bad-request")
    broken = await api.http.put(path, content=b"{role", headers={**admin.headers, **JSON})
    assert_problem(broken, 400, "bad-request")
    text = await api.http.put(
        path, content=b"role=admin", headers={**admin.headers, "Content-Type": "text/plain"}
    )
    assert_problem(text, 415, "unsupported-media-type")


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=lambda c: f"{c.method} {c.path}")
async def test_a_body_over_64_kib_is_413(api: Api, endpoint: Call) -> None:
    big = json.dumps({"email": "big@example.com", "password": PASSWORD, "name": "n" * MAX_BODY})
    assert len(big) > MAX_BODY
    assert_problem(await send_raw(api, endpoint, big.encode()), 413, "payload-too-large")


async def test_413_boundary_is_64_kib(api: Api) -> None:
    def body_of(size: int) -> bytes:
        head = b'{"email": "edge@example.com", "password": "' + PASSWORD.encode() + b'", "name": "'
        return head + b"n" * (size - len(head) - 2) + b'"}'

    at_limit = body_of(MAX_BODY)
    assert len(at_limit) == MAX_BODY
    accepted = await send_raw(api, BODY_ENDPOINTS[0], at_limit)
    # Read in full, then refused for its too-long name rather than for its size.
    body = assert_problem(accepted, 422, "validation")
    assert {e["field"] for e in body["errors"]} == {"name"}
    over = await send_raw(api, BODY_ENDPOINTS[0], body_of(MAX_BODY + 1))
    assert_problem(over, 413, "payload-too-large")


async def test_a_huge_body_without_a_content_length_is_413(api: Api) -> None:
    async def chunks() -> Any:
        for _ in range(40):
            yield b" " * 4096

    response = await api.http.post("/auth/login", content=chunks(), headers=JSON)
    assert_problem(response, 413, "payload-too-large")


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=lambda c: f"{c.method} {c.path}")
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "text/json",
    ],
)
async def test_a_non_json_content_type_is_415(api: Api, endpoint: Call, content_type: str) -> None:
    body = json.dumps({"email": "ct@example.com", "password": PASSWORD}).encode()
    response = await send_raw(api, endpoint, body, content_type)
    assert_problem(response, 415, "unsupported-media-type")


async def test_a_body_without_a_content_type_is_415(api: Api) -> None:
    body = json.dumps({"email": "noct@example.com", "password": PASSWORD}).encode()
    response = await send_raw(api, BODY_ENDPOINTS[0], body, None)
    assert_problem(response, 415, "unsupported-media-type")


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
async def test_json_content_types_are_accepted(api: Api, content_type: str) -> None:
    body = json.dumps({"email": f"ok-{uuid4().hex[:8]}@example.com", "password": PASSWORD})
    response = await send_raw(api, BODY_ENDPOINTS[0], body.encode(), content_type)
    assert response.status_code == 201, response.text


# ---------------------------------------------------------------------------- never a 500


def _odd_requests() -> dict[str, Call]:
    deep = b'{"email": ' + b"[" * 5000 + b"]" * 5000 + b', "password": "x"}'
    return {
        "deep-nesting": Call("POST", "/auth/login", content=deep, headers=JSON),
        "huge-int": Call("POST", "/events", json=event_body(price=10**40), auth="organizer"),
        "huge-capacity": Call("POST", "/events", json=event_body(capacity=2**63), auth="organizer"),
        "float-exponent": Call("POST", "/events", json=event_body(price=1e308), auth="organizer"),
        "nul-in-name": Call("POST", "/events", json=event_body(name="\u0000"), auth="organizer"),
        "nul-in-key": Call("POST", "/auth/login", json={"email\u0000": "a", "password": PASSWORD}),
        "nul-in-login": Call("POST", "/auth/login", json={"email": "\u0000", "password": "\u0000"}),
        "year-one": Call(
            "POST",
            "/events",
            json=event_body(startAt="0001-01-01T00:00:00+10:00", endAt="0001-01-02T00:00:00Z"),
            auth="organizer",
        ),
        "year-9999": Call(
            "POST",
            "/events",
            json=event_body(startAt="9999-12-31T00:00:00Z", endAt="9999-12-31T23:00:00-05:00"),
            auth="organizer",
        ),
        "list-year-one": Call("GET", "/events?startsBefore=0001-01-01T00:00:00%2B01:00"),
        "list-nul-cursor": Call("GET", "/events?cursor=%00"),
        "list-nul-filter": Call("GET", "/events?startsAfter=%00"),
        "list-huge-limit": Call("GET", "/events?limit=99999999999999999999999"),
        "duplicate-keys": Call(
            "POST",
            "/auth/login",
            content=b'{"email": "a@example.com", "email": "b@example.com", "password": "x"}',
            headers=JSON,
        ),
        "long-password-login": Call(
            "POST", "/auth/login", json={"email": "a@example.com", "password": "p" * 60_000}
        ),
        "unicode-email": Call(
            "POST", "/auth/register", json={"email": "ñandú@exämple.com", "password": PASSWORD}
        ),
        "bearer-huge": Call("GET", "/auth/me", headers={"Authorization": "Bearer " + "a" * 8000}),
        "role-put-nul": Call(
            "PUT", f"/users/{uuid4()}/role", json={"role": "\u0000"}, auth="admin"
        ),
        "event-put-unknown": Call("PUT", f"/events/{uuid4()}", json=event_body(), auth="admin"),
        "event-delete-unknown": Call("DELETE", f"/events/{uuid4()}", auth="admin"),
        "encoded-slash-id": Call("GET", "/events/a%2Fb"),
        "head-events": Call("HEAD", "/events"),
        "options-events": Call("OPTIONS", "/events"),
        "checkin-nul": Call(
            "POST", f"/events/{uuid4()}/checkins", json={"code": "GT1.\u0000.x"}, auth="admin"
        ),
        "checkin-huge-code": Call(
            "POST", f"/events/{uuid4()}/checkins", json={"code": "G" * 60_000}, auth="admin"
        ),
        "sync-year-zero": Call(
            "POST",
            f"/events/{uuid4()}/checkins/sync",
            json={"scans": [{"code": "GT1.a.b", "scannedAt": "0001-01-01T00:00:00+01:00"}]},
            auth="admin",
        ),
        "sync-leap-second": Call(
            "POST",
            f"/events/{uuid4()}/checkins/sync",
            json={"scans": [{"code": "GT1.a.b", "scannedAt": "2026-12-31T23:59:60Z"}]},
            auth="admin",
        ),
        "qr-unknown": Call("GET", f"/tickets/{uuid4()}/qr.svg", auth="admin"),
        "sales-unknown": Call("GET", f"/events/{uuid4()}/sales", auth="admin"),
    }


@pytest.mark.parametrize("case", sorted(_odd_requests()))
async def test_odd_requests_never_get_a_500(api: Api, case: str) -> None:
    response = await _odd_requests()[case].send(api)
    assert response.status_code < 500, response.text
    assert response.headers.get("x-request-id")
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
        assert_no_internals(response)


# ---------------------------------------------------------------------------- operations


async def test_healthz(api: Api) -> None:
    response = await api.http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz(api: Api) -> None:
    response = await api.http.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"


# ---------------------------------------------------------------------------- OpenAPI

# Every operation of API.md, by method and path template (parameter names do not matter).
CONTRACT = {
    ("post", "/auth/register"),
    ("post", "/auth/login"),
    ("get", "/auth/me"),
    ("put", "/users/{}/role"),
    ("post", "/events"),
    ("get", "/events"),
    ("get", "/events/{}"),
    ("put", "/events/{}"),
    ("delete", "/events/{}"),
    ("post", "/events/{}/bookings"),
    ("get", "/bookings/{}"),
    ("post", "/bookings/{}/cancel"),
    ("get", "/me/bookings"),
    ("get", "/events/{}/bookings"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    # v2
    ("get", "/.well-known/goticket-keys.json"),
    ("get", "/bookings/{}/tickets"),
    ("get", "/tickets/{}/qr.svg"),
    ("post", "/events/{}/checkins"),
    ("post", "/events/{}/checkins/sync"),
    ("get", "/events/{}/sales"),
    ("post", "/payments/webhooks/{}"),
    ("post", "/payments/fake/{}/complete"),
}
WITH_BODY = {
    ("post", "/auth/register"),
    ("post", "/auth/login"),
    ("put", "/users/{}/role"),
    ("post", "/events"),
    ("put", "/events/{}"),
    ("post", "/events/{}/bookings"),
    ("post", "/events/{}/checkins"),
    ("post", "/events/{}/checkins/sync"),
    ("post", "/payments/webhooks/{}"),
    ("post", "/payments/fake/{}/complete"),
}
# Bodies whose schema allows more members: the booking's, and a provider's webhook (members a
# provider adds later are ignored, never refused).
OPEN_BODIES = {("post", "/events/{}/bookings"), ("post", "/payments/webhooks/{}")}
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


async def _document(api: Api) -> dict[str, Any]:
    response = await api.http.get("/openapi.json")
    assert response.status_code == 200, response.text
    assert "json" in response.headers["content-type"]
    document: dict[str, Any] = response.json()
    return document


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, _template(path)): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    assert isinstance(node, dict)
    return node


async def test_openapi_is_3_1_and_lists_every_operation(api: Api) -> None:
    document = await _document(api)
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"]
    assert document["info"]["version"]
    operations = _operations(document)
    assert set(operations) >= CONTRACT, CONTRACT - set(operations)
    assert set(operations) == CONTRACT, set(operations) - CONTRACT


async def test_openapi_request_bodies(api: Api) -> None:
    document = await _document(api)
    operations = _operations(document)
    for key in WITH_BODY:
        body = operations[key].get("requestBody")
        assert body, key
        schema = _resolve(document, body["content"]["application/json"]["schema"])
        assert schema["type"] == "object", key
        assert schema["properties"], key
    for key in CONTRACT - WITH_BODY:
        assert "requestBody" not in operations[key], key


async def test_openapi_request_schemas_match_the_contract(api: Api) -> None:
    document = await _document(api)
    operations = _operations(document)

    def schema_of(key: tuple[str, str]) -> dict[str, Any]:
        body = operations[key]["requestBody"]["content"]["application/json"]["schema"]
        return _resolve(document, body)

    register = schema_of(("post", "/auth/register"))
    assert set(register["properties"]) == {"email", "password", "name"}
    assert set(register["required"]) == {"email", "password"}

    event = schema_of(("post", "/events"))
    assert set(event["properties"]) == {
        "name",
        "description",
        "venue",
        "startAt",
        "endAt",
        "price",
        "currency",
        "capacity",
        "maxPerUser",
        "salesStartAt",
        "checkout",
        "holdSeconds",
    }
    assert set(event["required"]) == {"name", "startAt", "endAt", "price", "capacity"}
    assert schema_of(("put", "/events/{}")) == event
    # Unknown fields are refused, and the schema says so.
    for key in WITH_BODY - OPEN_BODIES:
        assert schema_of(key).get("additionalProperties") is False, key

    role = schema_of(("put", "/users/{}/role"))
    role_schema = _resolve(document, role["properties"]["role"])
    assert set(role_schema["enum"]) == {"user", "organizer", "admin"}


async def test_openapi_documents_security_and_errors(api: Api) -> None:
    document = await _document(api)
    schemes = document["components"]["securitySchemes"]
    assert any(s["type"] == "http" and s["scheme"] == "bearer" for s in schemes.values())
    operations = _operations(document)
    for key in [("get", "/auth/me"), ("post", "/events"), ("put", "/events/{}")]:
        assert operations[key].get("security"), key
        assert "401" in operations[key]["responses"], key
    assert "422" in operations[("get", "/events")]["responses"]
    assert "404" in operations[("get", "/events/{}")]["responses"]
    assert "409" in operations[("delete", "/events/{}")]["responses"]
    problem = operations[("post", "/events")]["responses"]["422"]["content"]
    assert PROBLEM_JSON in problem
    # The on-sale time: documented in the event's response, and its 409 with its member.
    book = operations[("post", "/events/{}/bookings")]
    assert "sales-not-started" in book["description"]
    conflict = _resolve(document, book["responses"]["409"]["content"][PROBLEM_JSON]["schema"])
    assert "salesStartAt" in conflict["properties"]
    assert "salesStartAt" not in conflict.get("required", [])
    created = operations[("post", "/events")]["responses"]["201"]["content"]
    event = _resolve(document, created["application/json"]["schema"])
    assert "salesStartAt" in event["properties"]
    assert "salesStartAt" not in event["required"]


async def test_openapi_list_parameters(api: Api) -> None:
    document = await _document(api)
    parameters = {
        p["name"]: p for p in _operations(document)[("get", "/events")].get("parameters", [])
    }
    assert {"limit", "cursor", "startsAfter", "startsBefore"} <= set(parameters)
    limit = parameters["limit"]["schema"]
    assert (limit.get("minimum"), limit.get("maximum"), limit.get("default")) == (1, 100, 20)


async def test_docs_is_an_html_page_for_the_document(api: Api) -> None:
    response = await api.http.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower()
    assert "/openapi.json" in response.text


async def test_docs_page_loads_only_this_servers_files_under_a_strict_csp(api: Api) -> None:
    response = await api.http.get("/docs")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert "http:" not in response.text
    assert "https:" not in response.text
    assert "<script>" not in response.text, "inline script: the CSP would refuse it"
    assets = re.findall(r'(?:src|href)="(/docs/[^"]+)"', response.text)
    assert len(assets) == 4, assets
    for asset in assets:
        served = await api.http.get(asset)
        assert served.status_code == 200, asset
        assert served.content, asset
        assert served.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("name", ["index.html", "oauth2-redirect.html", "..%2F__init__.py", "x"])
async def test_docs_serves_no_file_beyond_its_own_assets(api: Api, name: str) -> None:
    response = await api.http.get(f"/docs/{name}")
    assert response.status_code == 404


async def test_openapi_needs_no_token(api: Api, settings: Settings) -> None:
    response = await api.http.get("/openapi.json", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 200
    assert response.headers.get("x-request-id")
    assert settings.resolved_jwt_secret() not in response.text


async def test_options_allows_every_documented_method_of_the_path(api: Api) -> None:
    # Litestar's own OPTIONS answer listed only the first handler's methods of a shared path.
    document = await _document(api)
    for path, item in document["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", str(uuid4()), path)
        response = await api.http.options(concrete)
        assert response.status_code == 204, (path, response.text)
        documented = {method.upper() for method in item if method in METHODS} | {"OPTIONS"}
        assert set(response.headers["allow"].split(", ")) == documented, path


async def test_openapi_links_lead_from_a_created_resource_to_its_operations(api: Api) -> None:
    document = await _document(api)
    operations = _operations(document)
    by_id = {operation["operationId"]: key for key, operation in operations.items()}
    expected = {
        ("post", "/events"): {
            ("get", "/events/{}"),
            ("put", "/events/{}"),
            ("delete", "/events/{}"),
            ("post", "/events/{}/bookings"),
            ("get", "/events/{}/bookings"),
        },
        ("post", "/events/{}/bookings"): {("get", "/bookings/{}"), ("post", "/bookings/{}/cancel")},
        ("post", "/auth/register"): {("put", "/users/{}/role")},
    }
    for source, targets in expected.items():
        links = operations[source]["responses"]["201"]["links"]
        assert {by_id[link["operationId"]] for link in links.values()} == targets, source
        for link in links.values():
            assert list(link["parameters"].values()) == ["$response.body#/id"]


async def test_openapi_states_the_string_rules_the_server_enforces(api: Api) -> None:
    document = await _document(api)
    schemas = document["components"]["schemas"]
    # Every free-text string of a request body refuses U+0000, and says so.
    for name, member in [
        ("RegisterRequest", "password"),
        ("LoginRequest", "email"),
        ("EventRequest", "name"),
    ]:
        pattern = schemas[name]["properties"][member]["pattern"]
        assert re.search(pattern, "fine text"), name
        assert not re.search(pattern, "a\x00b"), name
    # The e-mail pattern is read alike by Python and by ECMA-262 (JSON Schema's dialect): no
    # class escape whose meaning differs between them decides alone.
    email = schemas["RegisterRequest"]["properties"]["email"]["pattern"]
    for control in ("\x1c", "\x1f", "\x85", "\ufeff", "\x00"):
        assert not re.search(email, f"a{control}b@example.com"), repr(control)
    parameters = {
        p["name"]: p["schema"] for p in _operations(document)[("get", "/events")]["parameters"]
    }
    assert parameters["cursor"]["minLength"] == 1
    assert parameters["startsAfter"]["format"] == "date-time"


async def test_openapi_problem_schema_is_the_problem_model(api: Api) -> None:
    # One model renders the bodies and feeds the document: every member, none ever null.
    document = await _document(api)
    schema = document["components"]["schemas"]["Problem"]
    # Named as on the wire: the one-word members as they are, the others camelCase.
    wire_names = {f.encode_name for f in msgspec.structs.fields(Problem)}
    assert set(schema["properties"]) == wire_names
    assert {"type", "title", "status", "detail", "errors", "salesStartAt"} <= wire_names
    for member in ("available", "limit", "booked"):
        assert schema["properties"][member]["oneOf"] == [{"type": "integer"}], member
        assert schema["properties"][member]["description"], member
    sales_start_at = schema["properties"]["salesStartAt"]["oneOf"]
    assert sales_start_at == [{"type": "string", "format": "date-time"}]
    for (_, path), operation in _operations(document).items():
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                content = response["content"][PROBLEM_JSON]["schema"]
                assert content == {"$ref": "#/components/schemas/Problem"}, (path, status)
