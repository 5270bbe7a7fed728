"""Changing a user's role (admins only), and what that does to access tokens."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import jwt
import pytest

from tests.support import Actor, Api, assert_problem, error_fields, event_body


def token_role(token: str) -> str:
    role: str = jwt.decode(token, options={"verify_signature": False})["role"]
    return role


async def set_role(api: Api, actor: Actor | None, user_id: str, body: Any) -> httpx.Response:
    return await api.http.put(
        f"/users/{user_id}/role", json=body, headers=actor.headers if actor else {}
    )


async def fresh_token(api: Api, actor: Actor) -> Actor:
    login = await api.login(actor.email)
    assert login.status_code == 200, login.text
    return Actor(actor.id, actor.email, login.json()["accessToken"])


@pytest.mark.parametrize(
    ("start", "target"),
    [
        ("user", "organizer"),
        ("user", "admin"),
        ("user", "user"),
        ("organizer", "user"),
        ("organizer", "admin"),
        ("admin", "user"),
    ],
)
async def test_admin_changes_a_role(
    api: Api, db: asyncpg.Connection[Any], start: str, target: str
) -> None:
    admin = await api.user("admin")
    subject = await api.user(start)
    response = await set_role(api, admin, str(subject.id), {"role": target})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"id", "email", "name", "role", "createdAt"}
    assert body["id"] == str(subject.id)
    assert body["email"] == subject.email
    assert body["role"] == target
    assert await db.fetchval("SELECT role FROM users WHERE id = $1", subject.id) == target
    me = await api.http.get("/auth/me", headers=(await fresh_token(api, subject)).headers)
    assert me.json()["role"] == target


async def test_an_admin_may_change_its_own_role(api: Api) -> None:
    admin = await api.user("admin")
    response = await set_role(api, admin, str(admin.id), {"role": "organizer"})
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "organizer"


@pytest.mark.parametrize("role", ["user", "organizer"])
async def test_non_admins_may_not_change_roles(
    api: Api, db: asyncpg.Connection[Any], role: str
) -> None:
    actor = await api.user(role)
    victim = await api.user()
    for target in (victim.id, actor.id):
        response = await set_role(api, actor, str(target), {"role": "admin"})
        assert_problem(response, 403, "forbidden")
    assert await db.fetchval("SELECT role FROM users WHERE id = $1", actor.id) == role
    assert await db.fetchval("SELECT role FROM users WHERE id = $1", victim.id) == "user"


async def test_a_non_admin_is_refused_before_its_body_is_read(api: Api) -> None:
    organizer = await api.user("organizer")
    victim = await api.user()
    for body in ({"role": "emperor"}, {}, [1, 2]):
        response = await set_role(api, organizer, str(victim.id), body)
        assert_problem(response, 403, "forbidden")


async def test_anonymous_may_not_change_roles(api: Api) -> None:
    victim = await api.user()
    response = await set_role(api, None, str(victim.id), {"role": "admin"})
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].lower().startswith("bearer")


async def test_unknown_user_is_404(api: Api) -> None:
    admin = await api.user("admin")
    response = await set_role(api, admin, str(uuid4()), {"role": "organizer"})
    assert_problem(response, 404, "not-found")


@pytest.mark.parametrize(
    "user_id",
    ["nope", "123", "00000000-0000-0000-0000-00000000000g", "' OR 1=1 --", "%20"],
)
async def test_malformed_user_id_is_404(api: Api, user_id: str) -> None:
    admin = await api.user("admin")
    response = await set_role(api, admin, user_id, {"role": "organizer"})
    assert_problem(response, 404, "not-found")


@pytest.mark.parametrize(
    "body",
    [
        {"role": "superuser"},
        {"role": "ADMIN"},
        {"role": "Organizer"},
        {"role": ""},
        {"role": None},
        {"role": 1},
        {"role": ["admin"]},
        {},
    ],
)
async def test_bad_role_is_422(api: Api, db: asyncpg.Connection[Any], body: Any) -> None:
    admin = await api.user("admin")
    subject = await api.user()
    response = await set_role(api, admin, str(subject.id), body)
    assert "role" in error_fields(assert_problem(response, 422, "validation"))
    assert await db.fetchval("SELECT role FROM users WHERE id = $1", subject.id) == "user"


async def test_unknown_fields_in_a_role_change_are_422(api: Api) -> None:
    admin = await api.user("admin")
    subject = await api.user()
    response = await set_role(api, admin, str(subject.id), {"role": "organizer", "id": "x"})
    assert error_fields(assert_problem(response, 422, "validation")) == {"id"}


async def test_a_promotion_applies_to_tokens_issued_afterwards(api: Api) -> None:
    admin = await api.user("admin")
    user = await api.user()
    assert token_role(user.token) == "user"
    response = await set_role(api, admin, str(user.id), {"role": "organizer"})
    assert response.status_code == 200

    # The token issued before the change keeps the old role, and with it the old rights.
    assert token_role(user.token) == "user"
    old = await api.http.post("/events", json=event_body(), headers=user.headers)
    assert_problem(old, 403, "forbidden")

    # A token issued after it carries the new role.
    promoted = await fresh_token(api, user)
    assert token_role(promoted.token) == "organizer"
    created = await api.http.post("/events", json=event_body(), headers=promoted.headers)
    assert created.status_code == 201, created.text
    assert created.json()["organizerId"] == str(user.id)


async def test_a_demotion_applies_to_tokens_issued_afterwards(api: Api) -> None:
    admin = await api.user("admin")
    organizer = await api.user("organizer")
    response = await set_role(api, admin, str(organizer.id), {"role": "user"})
    assert response.status_code == 200

    # Tokens are stateless: one issued before the change still carries "organizer" until it
    # expires (15 minutes at most).
    assert token_role(organizer.token) == "organizer"
    still = await api.http.post("/events", json=event_body(), headers=organizer.headers)
    assert still.status_code == 201, still.text

    demoted = await fresh_token(api, organizer)
    assert token_role(demoted.token) == "user"
    refused = await api.http.post("/events", json=event_body(), headers=demoted.headers)
    assert_problem(refused, 403, "forbidden")


async def test_a_new_admin_may_change_roles_with_a_new_token(api: Api) -> None:
    admin = await api.user("admin")
    candidate = await api.user()
    other = await api.user()
    assert (await set_role(api, admin, str(candidate.id), {"role": "admin"})).status_code == 200
    old_token = await set_role(api, candidate, str(other.id), {"role": "organizer"})
    assert_problem(old_token, 403, "forbidden")
    new_admin = await fresh_token(api, candidate)
    response = await set_role(api, new_admin, str(other.id), {"role": "organizer"})
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "organizer"
    assert UUID(response.json()["id"]) == other.id
