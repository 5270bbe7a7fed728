"""Registration, login, the caller's own account and the access tokens, over HTTP."""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import jwt
import pytest

from goticket.config import Settings
from tests.support import PASSWORD, PROBLEM_JSON, Api, assert_problem, error_fields

USER_FIELDS = {"id", "email", "name", "role", "createdAt"}


def assert_unauthorized(response: httpx.Response) -> None:
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].lower().startswith("bearer")


def make_token(
    settings: Settings,
    user_id: UUID,
    *,
    role: str = "user",
    secret: str | None = None,
    algorithm: str = "HS256",
    drop: tuple[str, ...] = (),
    **overrides: Any,
) -> str:
    """A token made outside the service: valid unless the arguments spoil it."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "role": role,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    for name in drop:
        claims.pop(name)
    key = settings.resolved_jwt_secret() if secret is None else secret
    return jwt.encode(claims, key, algorithm=algorithm)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------------------- register


async def test_register_returns_the_created_user(api: Api, db: asyncpg.Connection[Any]) -> None:
    before = datetime.now().astimezone()
    response = await api.http.post(
        "/auth/register",
        json={"email": "ada@example.com", "password": PASSWORD, "name": "Ada Lovelace"},
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == USER_FIELDS
    assert UUID(body["id"])
    assert body["email"] == "ada@example.com"
    assert body["name"] == "Ada Lovelace"
    assert body["role"] == "user"
    created = datetime.fromisoformat(body["createdAt"])
    assert created.tzinfo is not None
    assert abs((created - before).total_seconds()) < 60
    # The password is stored hashed, never as given.
    stored = await db.fetchval("SELECT password_hash FROM users WHERE id = $1", UUID(body["id"]))
    assert stored is not None
    assert PASSWORD not in stored
    assert stored.startswith("$argon2id$")


async def test_register_without_a_name(api: Api) -> None:
    response = await api.http.post(
        "/auth/register", json={"email": "noname@example.com", "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] is None
    assert response.json()["role"] == "user"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("taken@example.com", "taken@example.com"),
        ("Taken@Example.com", "taken@example.com"),
        ("taken@example.com", "TAKEN@EXAMPLE.COM"),
        ("MiXeD@example.org", "mixed@EXAMPLE.org"),
    ],
)
async def test_register_with_a_taken_email_is_409(api: Api, first: str, second: str) -> None:
    assert (await api.register(first)).status_code == 201
    response = await api.register(second)
    assert_problem(response, 409, "email-taken")


async def test_register_conflict_keeps_the_first_account(api: Api) -> None:
    await api.register("keep@example.com")
    again = await api.http.post(
        "/auth/register", json={"email": "KEEP@example.com", "password": "another password"}
    )
    assert again.status_code == 409
    # The original password still works and the new one does not.
    assert (await api.login("keep@example.com")).status_code == 200
    assert (await api.login("keep@example.com", "another password")).status_code == 401


@pytest.mark.parametrize(
    "email",
    [
        "",
        "plain",
        "no-at-sign.example.com",
        "a@b",
        "two@@example.com",
        "a@b@example.com",
        "with space@example.com",
        "@example.com",
        "ada@",
        "x" * 250 + "@example.com",
        # Control characters and U+FEFF, which Python's and ECMA-262's \s disagree on.
        "ctl\x01@example.com",
        "fs\x1c@example.com",
        "nel\x85@example.com",
        "bom\ufeff@example.com",
    ],
)
async def test_register_rejects_an_invalid_email(api: Api, email: str) -> None:
    response = await api.http.post("/auth/register", json={"email": email, "password": PASSWORD})
    body = assert_problem(response, 422, "validation")
    assert "email" in error_fields(body)


@pytest.mark.parametrize(
    ("length", "status"),
    [(0, 422), (1, 422), (7, 422), (8, 201), (9, 201), (128, 201), (129, 422), (1000, 422)],
)
async def test_register_password_length(api: Api, length: int, status: int) -> None:
    response = await api.http.post(
        "/auth/register",
        json={"email": f"pw{length}@example.com", "password": "p" * length},
    )
    assert response.status_code == status, response.text
    if status == 422:
        assert error_fields(assert_problem(response, 422, "validation")) == {"password"}
    else:
        assert (await api.login(f"pw{length}@example.com", "p" * length)).status_code == 200


async def test_register_lists_every_offending_field(api: Api) -> None:
    response = await api.http.post(
        "/auth/register", json={"email": "nope", "password": "short", "name": "n" * 201}
    )
    body = assert_problem(response, 422, "validation")
    assert error_fields(body) == {"email", "password", "name"}
    assert all(error["message"] for error in body["errors"])


async def test_register_requires_email_and_password(api: Api) -> None:
    response = await api.http.post("/auth/register", json={})
    assert error_fields(assert_problem(response, 422, "validation")) == {"email", "password"}


@pytest.mark.parametrize(
    ("field", "value"),
    [("email", 42), ("email", None), ("password", 12345678), ("name", ["a"]), ("email", {})],
)
async def test_register_rejects_wrong_types(api: Api, field: str, value: Any) -> None:
    body: dict[str, Any] = {"email": "types@example.com", "password": PASSWORD}
    body[field] = value
    response = await api.http.post("/auth/register", json=body)
    assert field in error_fields(assert_problem(response, 422, "validation"))


async def test_register_rejects_unknown_fields_and_lists_them(api: Api) -> None:
    response = await api.http.post(
        "/auth/register",
        json={"email": "typo@example.com", "password": PASSWORD, "nmae": "x", "age": 3},
    )
    body = assert_problem(response, 422, "validation")
    assert error_fields(body) == {"nmae", "age"}
    # Nothing was created.
    assert (await api.login("typo@example.com")).status_code == 401


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "7d1b5d4e-58a4-4d3b-a3cd-0d1e6c0f6b11"),
        ("role", "admin"),
        ("role", "organizer"),
        ("createdAt", "2026-01-01T00:00:00Z"),
        ("updatedAt", "2026-01-01T00:00:00Z"),
    ],
)
async def test_register_rejects_read_only_fields(api: Api, field: str, value: Any) -> None:
    response = await api.http.post(
        "/auth/register", json={"email": "ro@example.com", "password": PASSWORD, field: value}
    )
    assert field in error_fields(assert_problem(response, 422, "validation"))
    assert (await api.login("ro@example.com")).status_code == 401


async def test_register_rejects_a_nul_character_without_a_500(api: Api) -> None:
    for body in (
        {"email": "nul\u0000@example.com", "password": PASSWORD},
        {"email": "nul@example.com", "password": PASSWORD, "name": "a\u0000b"},
    ):
        response = await api.http.post("/auth/register", json=body)
        assert_problem(response, 422, "validation")


# ---------------------------------------------------------------------------- login


async def test_login_returns_a_bearer_token(api: Api, settings: Settings) -> None:
    await api.register("login@example.com")
    response = await api.login("login@example.com")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"accessToken", "tokenType", "expiresIn"}
    assert body["tokenType"] == "Bearer"
    assert body["expiresIn"] == 15 * 60
    assert isinstance(body["accessToken"], str)
    assert body["accessToken"].count(".") == 2


async def test_login_email_is_case_insensitive(api: Api) -> None:
    registered = await api.register("Casey@Example.com")
    response = await api.login("casey@EXAMPLE.COM")
    assert response.status_code == 200, response.text
    me = await api.http.get("/auth/me", headers=bearer(response.json()["accessToken"]))
    assert me.json()["id"] == registered.json()["id"]


async def test_login_failure_does_not_reveal_whether_the_email_exists(api: Api) -> None:
    await api.register("exists@example.com")
    wrong_password = await api.login("exists@example.com", "not the password")
    unknown_email = await api.login("nobody@example.com", "not the password")
    body = assert_problem(wrong_password, 401, "invalid-credentials")
    assert_problem(unknown_email, 401, "invalid-credentials")
    assert wrong_password.content == unknown_email.content
    assert body == unknown_email.json()
    assert "accessToken" not in body


async def test_login_password_is_case_sensitive(api: Api) -> None:
    await api.register("case@example.com")
    response = await api.login("case@example.com", PASSWORD.upper())
    assert_problem(response, 401, "invalid-credentials")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"email", "password"}),
        ({"email": "a@example.com"}, {"password"}),
        ({"password": PASSWORD}, {"email"}),
        ({"email": "a@example.com", "password": PASSWORD, "remember": True}, {"remember"}),
        ({"email": 1, "password": PASSWORD}, {"email"}),
    ],
)
async def test_login_validates_its_body(api: Api, body: dict[str, Any], fields: set[str]) -> None:
    response = await api.http.post("/auth/login", json=body)
    assert error_fields(assert_problem(response, 422, "validation")) == fields


async def test_login_with_a_nul_character_is_not_a_500(api: Api) -> None:
    response = await api.http.post(
        "/auth/login", json={"email": "a\u0000@example.com", "password": PASSWORD}
    )
    assert response.status_code in (401, 422), response.text


# ---------------------------------------------------------------------------- /auth/me


async def test_me_returns_the_caller(api: Api) -> None:
    registered = await api.http.post(
        "/auth/register", json={"email": "me@example.com", "password": PASSWORD, "name": "Me"}
    )
    token = (await api.login("me@example.com")).json()["accessToken"]
    response = await api.http.get("/auth/me", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json() == registered.json()


async def test_me_accepts_the_scheme_in_any_case(api: Api) -> None:
    actor = await api.user()
    response = await api.http.get("/auth/me", headers={"Authorization": f"bearer {actor.token}"})
    assert response.status_code == 200
    assert response.json()["id"] == str(actor.id)


async def test_a_token_made_with_the_right_secret_is_accepted(api: Api, settings: Settings) -> None:
    """The forged tokens below fail for the one reason each names, not for a broken helper."""
    actor = await api.user()
    response = await api.http.get("/auth/me", headers=bearer(make_token(settings, actor.id)))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == str(actor.id)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer garbage",
        "Bearer a.b.c",
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "Bearer two tokens",
    ],
)
async def test_me_without_a_usable_token_is_401(api: Api, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    assert_unauthorized(await api.http.get("/auth/me", headers=headers))


def _bad_tokens() -> dict[str, dict[str, Any]]:
    now = int(time.time())
    return {
        "expired": {"iat": now - 3600, "exp": now - 1800},
        "expired-just-now": {"iat": now - 900, "exp": now - 60},
        "wrong-signature": {"secret": "another-secret-" + "y" * 40},
        "wrong-algorithm": {"algorithm": "HS384"},
        "wrong-issuer": {"iss": "someone-else"},
        "wrong-audience": {"aud": "another-api"},
        "no-exp": {"drop": ("exp",)},
        "no-iat": {"drop": ("iat",)},
        "no-sub": {"drop": ("sub",)},
        "no-role": {"drop": ("role",)},
        "no-aud": {"drop": ("aud",)},
        "no-iss": {"drop": ("iss",)},
        "unknown-role": {"role": "superuser"},
        "sub-not-a-uuid": {"sub": "not-a-uuid"},
    }


@pytest.mark.parametrize("case", sorted(_bad_tokens()))
async def test_me_with_a_bad_token_is_401(api: Api, settings: Settings, case: str) -> None:
    actor = await api.user()
    token = make_token(settings, actor.id, **_bad_tokens()[case])
    assert_unauthorized(await api.http.get("/auth/me", headers=bearer(token)))


async def test_an_unsigned_token_is_401(api: Api, settings: Settings) -> None:
    actor = await api.user(role="admin")
    now = int(time.time())
    claims = {
        "sub": str(actor.id),
        "role": "admin",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + 600,
    }
    token = jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]
    assert_unauthorized(await api.http.get("/auth/me", headers=bearer(token)))


async def test_a_tampered_role_claim_is_401(api: Api, settings: Settings) -> None:
    """Re-encoding the payload with another role breaks the signature."""
    actor = await api.user()
    header, payload, signature = actor.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    forged = f"{header}.{forged_payload}.{signature}"
    assert_unauthorized(await api.http.get("/auth/me", headers=bearer(forged)))
    # And it buys no admin rights either.
    response = await api.http.put(
        f"/users/{actor.id}/role", json={"role": "admin"}, headers=bearer(forged)
    )
    assert_unauthorized(response)


async def test_me_for_a_user_that_no_longer_exists_is_not_a_500(
    api: Api, settings: Settings
) -> None:
    response = await api.http.get("/auth/me", headers=bearer(make_token(settings, uuid4())))
    assert response.status_code in (401, 404), response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)


# ---------------------------------------------------------------------------- token claims


async def test_access_token_claims(api: Api, settings: Settings) -> None:
    actor = await api.user()
    before = int(time.time())
    token = (await api.login(actor.email)).json()["accessToken"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(
        token,
        settings.resolved_jwt_secret(),
        algorithms=["HS256"],
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )
    assert {"iss", "aud", "sub", "role", "iat", "exp"} <= set(claims)
    assert claims["iss"] == settings.jwt_issuer
    assert claims["aud"] == settings.jwt_audience
    assert claims["sub"] == str(actor.id)
    assert claims["role"] == "user"
    assert before - 5 <= claims["iat"] <= int(time.time()) + 5
    assert claims["exp"] - claims["iat"] == 15 * 60
    # Nothing secret rides in the token.
    assert "password" not in str(claims).lower()
    assert actor.email not in str(claims)


@pytest.mark.parametrize("role", ["user", "organizer", "admin"])
async def test_access_token_carries_the_role(api: Api, settings: Settings, role: str) -> None:
    actor = await api.user(role=role)
    claims = jwt.decode(actor.token, options={"verify_signature": False})
    assert claims["role"] == role
    me = await api.http.get("/auth/me", headers=actor.headers)
    assert me.json()["role"] == role
