from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from goticket.accounts.domain import (
    EMAIL_MAX,
    NAME_MAX,
    PASSWORD_MAX,
    PASSWORD_MIN,
    AdminOnly,
    EmailTaken,
    InvalidCredentials,
    User,
    UserNotFound,
    check_registration,
    ensure_admin,
    new_user,
    validate_registration,
)
from goticket.kit.auth import Principal, Role
from goticket.kit.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
)

NOW = datetime(2030, 1, 1, tzinfo=UTC)
GOOD_PASSWORD = "p" * PASSWORD_MIN
GOOD_EMAIL = "fan@example.com"


def _email_of_length(length: int) -> str:
    domain = ".com"
    local = "a" * 64
    return local + "@" + "d" * (length - len(local) - 1 - len(domain)) + domain


@pytest.mark.parametrize(
    ("email", "valid"),
    [
        ("fan@example.com", True),
        ("Fan.Name+tag@sub.example.co", True),
        ("a@b.c", True),
        ("a" * 64 + "@example.com", True),
        ("a" * 65 + "@example.com", False),
        (_email_of_length(EMAIL_MAX), True),
        (_email_of_length(EMAIL_MAX + 1), False),
        ("", False),
        ("fan", False),
        ("fan@", False),
        ("@example.com", False),
        ("fan@example", False),
        ("fan@@example.com", False),
        ("fan@exa@mple.com", False),
        ("fan @example.com", False),
        ("fan@exam ple.com", False),
        (" fan@example.com", False),
        ("fan@example.com ", False),
        ("fan@example.com\t", False),
        ("fan@example.\n", False),
    ],
)
def test_email_rule(email: str, valid: bool) -> None:
    errors = validate_registration(email, GOOD_PASSWORD, None)
    assert [e.field for e in errors] == ([] if valid else ["email"])


def test_email_with_a_trailing_newline_is_refused() -> None:
    errors = validate_registration("fan@example.com\n", GOOD_PASSWORD, None)
    assert [e.field for e in errors] == ["email"]


@pytest.mark.parametrize(
    ("length", "message"),
    [
        (0, f"must be at least {PASSWORD_MIN} characters"),
        (PASSWORD_MIN - 1, f"must be at least {PASSWORD_MIN} characters"),
        (PASSWORD_MIN, None),
        (PASSWORD_MAX, None),
        (PASSWORD_MAX + 1, f"must be at most {PASSWORD_MAX} characters"),
    ],
)
def test_password_length_rule(length: int, message: str | None) -> None:
    errors = validate_registration(GOOD_EMAIL, "x" * length, None)
    assert [(e.field, e.message) for e in errors] == ([("password", message)] if message else [])


def test_password_length_counts_characters_not_bytes() -> None:
    assert validate_registration(GOOD_EMAIL, "é" * PASSWORD_MIN, None) == []


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        (None, True),
        ("", True),
        ("Ann", True),
        ("n" * NAME_MAX, True),
        ("n" * (NAME_MAX + 1), False),
    ],
)
def test_name_rule(name: str | None, valid: bool) -> None:
    errors = validate_registration(GOOD_EMAIL, GOOD_PASSWORD, name)
    assert [e.field for e in errors] == ([] if valid else ["name"])


def test_every_offending_field_is_reported_at_once() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_registration("nope", "short", "n" * (NAME_MAX + 1))
    assert [e.field for e in caught.value.errors] == ["email", "password", "name"]
    assert "email: not a valid email address" in caught.value.detail


def test_a_valid_registration_passes() -> None:
    check_registration(GOOD_EMAIL, GOOD_PASSWORD, "Ann")  # raises nothing
    assert validate_registration(GOOD_EMAIL, GOOD_PASSWORD, "Ann") == []


@pytest.mark.parametrize(
    ("role", "allowed"), [(Role.ADMIN, True), (Role.ORGANIZER, False), (Role.USER, False)]
)
def test_ensure_admin(role: Role, allowed: bool) -> None:
    actor = Principal(uuid.uuid4(), role)
    if allowed:
        ensure_admin(actor)
    else:
        with pytest.raises(AdminOnly) as caught:
            ensure_admin(actor)
        assert isinstance(caught.value, PermissionDenied)
    assert actor.is_admin is allowed


def test_new_user_strips_the_email_and_stamps_both_times() -> None:
    user_id = uuid.uuid4()
    user = new_user(
        user_id=user_id,
        email="  fan@example.com ",
        password_hash="h",
        name=None,
        role=Role.USER,
        now=NOW,
    )
    assert user == User(user_id, "fan@example.com", "h", None, Role.USER, NOW, NOW)
    assert user.principal == Principal(user_id, Role.USER)


def test_with_role_changes_role_and_updated_at_only() -> None:
    user = new_user(
        user_id=uuid.uuid4(), email=GOOD_EMAIL, password_hash="h", name="A", role=Role.USER, now=NOW
    )
    later = NOW + timedelta(hours=1)
    promoted = user.with_role(Role.ORGANIZER, later)
    assert (promoted.role, promoted.updated_at, promoted.created_at) == (
        Role.ORGANIZER,
        later,
        NOW,
    )
    assert (promoted.id, promoted.email, promoted.password_hash, promoted.name) == (
        user.id,
        user.email,
        user.password_hash,
        user.name,
    )
    assert user.role is Role.USER  # the original is untouched
    assert promoted.principal.role is Role.ORGANIZER


@pytest.mark.parametrize(
    ("error", "category", "code"),
    [
        (EmailTaken, Conflict, "email-taken"),
        (UserNotFound, NotFound, "not-found"),
        (InvalidCredentials, AuthenticationFailed, "invalid-credentials"),
        (AdminOnly, PermissionDenied, "forbidden"),
    ],
)
def test_error_categories_and_codes(
    error: type[Conflict | NotFound | AuthenticationFailed | PermissionDenied],
    category: type[Exception],
    code: str,
) -> None:
    raised = error("detail")
    assert isinstance(raised, category)
    assert (raised.code, raised.detail) == (code, "detail")
