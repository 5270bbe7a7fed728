"""Request bodies: decode and validate a JSON object into a msgspec struct, reporting every
offending field at once (422), or refusing the body itself (400, 415)."""

from __future__ import annotations

import contextlib
import typing
from typing import Any, TypeVar

import msgspec
from litestar import Request

from goticket.kit.errors import FieldError, InvalidInput
from goticket.kit.problems import BadRequest

S = TypeVar("S", bound=msgspec.Struct)

# A JSON string can carry U+0000 only escaped; PostgreSQL text cannot store it at all.
_NUL_ESCAPE = b"\\u0000"
# The same rule as the OpenAPI document states it (ECMA-262 and Python read it alike).
NO_NUL_PATTERN = r"^[^\u0000]*$"
_NOT_JSON = "the request body is not valid JSON (or it nests too deeply)"


def _is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


async def read_json(
    request: Request[Any, Any, Any], struct: type[S], *, optional: bool = False
) -> S:
    """Decode and validate a JSON object body into ``struct``, reporting every offending field."""
    body = await request.body()
    return decode_json(body, request.headers.get("content-type"), struct, optional=optional)


def decode_json(
    body: bytes, content_type: str | None, struct: type[S], *, optional: bool = False
) -> S:
    if content_type is not None and not _is_json(content_type):
        raise BadRequest(415, "the request body must be application/json")
    if not body.strip():
        if optional:
            body = b"{}"
        else:
            raise BadRequest(400, "a JSON object body is required")
    elif content_type is None:
        raise BadRequest(415, "the request body must be application/json")
    data: S | None = None
    try:
        data = msgspec.json.decode(body, type=struct)
    except msgspec.ValidationError:
        pass  # fall through to the slower path that collects every error
    except (msgspec.DecodeError, RecursionError):
        raise BadRequest(400, _NOT_JSON) from None
    if data is not None and _NUL_ESCAPE not in body:
        return data
    try:
        # Validation stops at the first bad field, so the JSON after it is still unread.
        raw = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise BadRequest(400, _NOT_JSON) from None
    if not isinstance(raw, dict):
        raise BadRequest(400, "the request body must be a JSON object")
    if data is None:
        raw = integral_numbers(raw)
        with contextlib.suppress(msgspec.ValidationError):  # collect every error below
            data = msgspec.convert(raw, struct)
    errors = collect_errors(struct, raw) if data is None else []
    reported = {error.field for error in errors}
    errors += [error for error in nul_errors(raw) if error.field not in reported]
    if data is None or errors:
        raise InvalidInput(errors or [FieldError("body", "invalid")])
    return data


def integral_numbers(value: Any) -> Any:
    """``value`` with every number that has no fractional part as an ``int``: in JSON Schema
    (and so in the OpenAPI document) ``8.0`` and ``8e0`` ARE the integer 8, so an integer field
    takes them; ``8.5`` stays a float and is refused."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {key: integral_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [integral_numbers(item) for item in value]
    return value


def nul_errors(value: Any, path: str = "") -> list[FieldError]:
    """Every string in ``value`` that holds U+0000, by field path."""
    if isinstance(value, str):
        return [FieldError(path or "body", "must not contain U+0000")] if "\x00" in value else []
    if isinstance(value, dict):
        return [
            error
            for key, item in value.items()
            for error in nul_errors(item, f"{path}.{key}" if path else str(key))
        ]
    if isinstance(value, list):
        return [error for i, item in enumerate(value) for error in nul_errors(item, f"{path}[{i}]")]
    return []


def collect_errors(struct: type[msgspec.Struct], raw: dict[str, Any]) -> list[FieldError]:
    """Validate ``raw`` field by field so that the client learns of every mistake at once.

    A struct may define ``cross_field_errors(valid)``: the rules that span fields, given the
    fields that are valid on their own (by attribute name), so that those are listed too.
    """
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    hints = typing.get_type_hints(struct, include_extras=True)
    known = {field.encode_name for field in info.fields}
    errors = [FieldError(key, "unknown field") for key in raw if key not in known]
    valid: dict[str, Any] = {}
    for field in info.fields:
        if field.encode_name not in raw:
            if field.required:
                errors.append(FieldError(field.encode_name, "required"))
            continue
        try:
            valid[field.name] = msgspec.convert(raw[field.encode_name], hints[field.name])
        except msgspec.ValidationError as exc:
            message, _, path = str(exc).partition(" - at `$")
            errors.append(FieldError(field.encode_name + path.rstrip("`"), message))
    cross_field = getattr(struct, "cross_field_errors", None)
    if errors and cross_field is not None:
        reported = {error.field for error in errors}
        errors += [error for error in cross_field(valid) if error.field not in reported]
    if not errors:
        # Every field is fine on its own: what failed is a rule that spans fields.
        try:
            msgspec.convert(raw, struct)
        except msgspec.ValidationError as exc:
            errors.append(FieldError("body", str(exc)))
    return errors
