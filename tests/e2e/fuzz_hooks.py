"""Schemathesis hooks for ``test_schemathesis.py`` (loaded through ``SCHEMATHESIS_HOOKS``).

``positive_data_acceptance`` expects every schema-valid request to succeed. A few rules cannot be
written in JSON Schema; the server refuses them with a 422 naming the field, and the operation's
description states them. This check is that built-in check, excusing exactly those 422s: every
error of the answer must be one of ``DOCUMENTED`` AND its field must be named in the operation's
description. Anything else a schema-valid request is refused for fails the run.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

_CROSS_FIELD = "spans two fields: JSON Schema cannot compare one field with another"
_YEARS = "an instant that JSON Schema's date-time allows but whose UTC date leaves years 1..9999"

# (field, message) of a 422 error -> why JSON Schema cannot say it.
DOCUMENTED: dict[tuple[str, str], str] = {
    ("endAt", "must be after startAt"): _CROSS_FIELD,
    ("maxPerUser", "must be between 1 and capacity"): _CROSS_FIELD,
    ("startAt", "needs a UTC offset and a UTC date in years 1..9999"): _YEARS,
    ("endAt", "needs a UTC offset and a UTC date in years 1..9999"): _YEARS,
    ("startsAfter", "needs a UTC offset and a UTC date in years 1..9999"): _YEARS,
    ("startsBefore", "needs a UTC offset and a UTC date in years 1..9999"): _YEARS,
    ("cursor", "not a cursor issued by this server"): (
        "a signature, not a shape: only the server can issue a cursor"
    ),
    ("Idempotency-Key", "already used for a different request"): (
        "state: the key's first request (its event and quantity) decides"
    ),
}


# Problem types whose every error is such a rule, whatever its message says -> why.
DOCUMENTED_TYPES: dict[str, str] = {
    "invalid-ticket": (
        "a signature, not a shape: only the server's keys sign a ticket code (the message says"
        " which part failed)"
    ),
}


def documented_refusal(description: str, body: Any) -> bool:
    """Whether a 422 ``body`` lists only ``DOCUMENTED`` errors (or is of a ``DOCUMENTED_TYPES``
    type), each error's field named in ``description``."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not errors:
        return False
    kind = str(body.get("type", "")).rsplit("/", 1)[-1]
    return all(
        ((error.get("field"), error.get("message")) in DOCUMENTED or kind in DOCUMENTED_TYPES)
        and f"`{error.get('field')}`" in description
        for error in errors
    )


@schemathesis.check
def positive_data_acceptance_but_documented_rules(ctx: Any, response: Any, case: Any) -> None:
    try:
        positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if response.status_code != 422 or not documented_refusal(_described(case), _json(response)):
            raise


def _described(case: Any) -> str:
    """What the operation's description and its parameters' descriptions say."""
    operation = case.operation.definition.raw
    parameters = [
        f"`{parameter.get('name')}`: {parameter.get('description', '')}"
        for parameter in operation.get("parameters", [])
    ]
    return "\n".join([operation.get("description", ""), *parameters])


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
