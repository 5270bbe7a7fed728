"""One problem model: every extension member a domain error carries is a ``Problem`` field, so
the OpenAPI schema (generated from ``Problem``) lists every member the API sends."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import msgspec
import pytest

import goticket
from goticket.accounts import domain as accounts_domain
from goticket.booking import domain as booking_domain
from goticket.events import domain as events_domain
from goticket.kit import errors
from goticket.kit.errors import DomainError, Unavailable
from goticket.kit.problems import Problem, domain_reply, error_reply
from goticket.tickets import domain as tickets_domain

SOURCE = Path(goticket.__file__).parent
# Keyword arguments of a domain error that are not problem members.
NOT_MEMBERS = {"retry_after"}


def domain_error_names() -> set[str]:
    modules = (errors, accounts_domain, booking_domain, events_domain, tickets_domain)
    return {
        name
        for module in modules
        for name, value in vars(module).items()
        if inspect.isclass(value) and issubclass(value, DomainError)
    }


def extension_members_raised() -> set[tuple[str, str]]:
    """(error class, keyword) for every construction of a domain error in the source."""
    names = domain_error_names()
    found: set[tuple[str, str]] = set()
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            call = node if isinstance(node, ast.Call) else None
            if call is not None and isinstance(call.func, ast.Name) and call.func.id in names:
                found |= {(call.func.id, k.arg) for k in call.keywords if k.arg}
    return {(cls, key) for cls, key in found if key not in NOT_MEMBERS}


def test_the_scan_finds_the_known_members() -> None:
    found = {key for _, key in extension_members_raised()}
    assert {"available", "limit", "booked", "checked_in_at"} <= found


@pytest.mark.parametrize(("error", "member"), sorted(extension_members_raised()))
def test_every_member_a_domain_error_carries_is_a_problem_field(error: str, member: str) -> None:
    assert member in Problem.__struct_fields__, f"{error} sends {member!r}; add it to Problem"


def test_a_domain_error_renders_its_members_and_retry_after() -> None:
    reply = domain_reply(booking_domain.SoldOut("only 1 spot left", available=1))
    body = msgspec.json.decode(reply.body)
    assert (reply.status, body["available"], body["type"]) == (
        409,
        1,
        "https://goticket.dev/problems/sold-out",
    )
    reply = domain_reply(Unavailable("busy", retry_after=3))
    assert (reply.status, reply.headers["Retry-After"]) == (503, "3")


def test_an_unexpected_error_is_a_generic_500_without_its_text() -> None:
    reply = error_reply(RuntimeError("SELECT secret FROM users"))
    assert reply.status == 500
    assert b"secret" not in reply.body
    assert msgspec.json.decode(reply.body)["type"].endswith("/internal")
