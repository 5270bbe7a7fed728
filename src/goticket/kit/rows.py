"""Rows and entities: every table's columns are named as its entity's fields (snake_case), so one
mapping serves every repository and a new field needs only its column."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")


def columns(entity: type[Any]) -> str:
    """The entity's fields as a column list, in field order."""
    return ", ".join(field.name for field in fields(entity))


def placeholders(entity: type[Any]) -> str:
    """``$1, $2, …``: one bind parameter per field, in field order."""
    return ", ".join(f"${i}" for i in range(1, len(fields(entity)) + 1))


def values(instance: Any) -> tuple[Any, ...]:
    """The instance's field values, in field order (enum members go as their text)."""
    return tuple(getattr(instance, field.name) for field in fields(instance))


def from_row(entity: type[T], row: asyncpg.Record, **converted: Any) -> T:
    """The entity from a row selected with ``columns(entity)``; ``converted`` overrides the
    columns whose type is not the field's (e.g. text to an enum)."""
    return entity(**{**dict(row.items()), **converted})
