"""Throwaway databases on a PostgreSQL server, for one test session or one benchmark run."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg

CONNECT_TIMEOUT_S = 10


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at database ``name`` (socket URLs keep their ?host=)."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def create_database(server_url: str, name: str) -> str:
    """Create database ``name`` (empty, not migrated) and return its URL."""
    with psycopg.connect(server_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    """Drop database ``name``, ending the sessions still connected to it."""
    with psycopg.connect(server_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def fresh_database(server_url: str, prefix: str, *, keep: bool = False) -> Iterator[str]:
    """An empty database (not migrated) named ``<prefix>_<random>``, dropped afterwards unless
    ``keep``. Yields its URL."""
    name = unique_name(prefix)
    url = create_database(server_url, name)
    try:
        yield url
    finally:
        if not keep:
            drop_database(server_url, name)
