"""``--compare-ref`` on an older schema: the ref's server gets a copy of the seeded database,
migrated down to the ref's newest migration by this checkout's migrations."""

from __future__ import annotations

import psycopg

from bench.compare import ref_database
from bench.seeding import Database
from goticket.kit.migrate import head_revision, upgrade
from testbed.databases import fresh_database


def test_an_older_ref_gets_a_copy_migrated_down_and_dropped_after(server_url: str) -> None:
    with fresh_database(server_url, "goticket_cmp") as url:
        upgrade(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE marker (seeded int)")
            conn.execute("INSERT INTO marker VALUES (7)")
        db = Database(url, None)

        with ref_database(db, "0001") as copy:
            assert copy.url != url
            with psycopg.connect(copy.url, autocommit=True) as conn:
                version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
                seeded = conn.execute("SELECT seeded FROM marker").fetchone()
                triggers = conn.execute(
                    "SELECT count(*) FROM pg_trigger WHERE tgname = 'events_notify'"
                ).fetchone()
            assert (version, seeded, triggers) == (("0001",), (7,), (0,))
            copied = copy.url

        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (
                head_revision(),
            )
            name = copied.rsplit("/", 1)[-1].split("?")[0]
            gone = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
            assert gone.fetchone() == (0,)


def test_a_ref_on_the_same_schema_shares_the_database() -> None:
    db = Database("postgresql://unused/x", None)
    with ref_database(db, head_revision()) as same:
        assert same is db
