"""--compare-ref: another git ref's code, checked out in a temporary worktree, served in the same
run (the issue's "within 5 % of the previous commit"). When the ref's schema is older, it gets a
database of its own: a copy of this run's seeded database, migrated down to the ref's head."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from alembic.script import ScriptDirectory

from bench import BenchFailure
from bench.machine import git
from bench.seeding import Database
from goticket.kit.migrate import downgrade, head_revision
from testbed.databases import drop_database, unique_name, with_database

MIGRATIONS = "src/goticket/migrations"


@dataclass(frozen=True)
class RefCheckout:
    src: Path  # the ref's ``src`` folder, for PYTHONPATH
    head: str  # the ref's newest migration


@contextlib.contextmanager
def ref_checkout(ref: str) -> Iterator[RefCheckout]:
    """``ref`` checked out detached in a temporary git worktree."""
    try:
        commit = git("rev-parse", "--verify", "--short", f"{ref}^{{commit}}")
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchFailure(f"--compare-ref {ref}: not a commit of this repository ({exc})") from exc
    folder = Path(tempfile.mkdtemp(prefix="gtbench-ref-"))
    tree = folder / commit
    try:
        git("worktree", "add", "--detach", str(tree), commit)
        print(f"--compare-ref {ref}: commit {commit} checked out in {tree}", flush=True)
        head = ScriptDirectory(str(tree / MIGRATIONS)).get_current_head()
        if head is None or not _known_here(head):
            raise BenchFailure(
                f"--compare-ref {ref}: its newest migration ({head}) is not one of this "
                "checkout's: one schema cannot be derived from the other"
            )
        yield RefCheckout(tree / "src", head)
    finally:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            git("worktree", "remove", "--force", str(tree))
        shutil.rmtree(folder, ignore_errors=True)


def _known_here(revision: str) -> bool:
    here = ScriptDirectory(str(Path(__file__).resolve().parents[1] / MIGRATIONS))
    return any(script.revision == revision for script in here.walk_revisions())


@contextlib.contextmanager
def ref_database(db: Database, ref_head: str) -> Iterator[Database]:
    """The database the ref's server runs on: this one when the schemas agree; else a copy of
    it (users included, taken before any server connects) migrated down to ``ref_head`` by this
    checkout's migrations, which know every older revision."""
    if ref_head == head_revision():
        yield db
        return
    name = unique_name("goticket_bench_ref")
    source = urlsplit(db.url).path.lstrip("/")
    server_url = with_database(db.url, "postgres")
    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    url = with_database(db.url, name)
    try:
        downgrade(url, ref_head)
        print(f"--compare-ref: its own database, migrated down to {ref_head}", flush=True)
        yield Database(url, db.pgdata)
    finally:
        drop_database(server_url, name)
