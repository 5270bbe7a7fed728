"""--compare-ref: another git ref's code, checked out in a temporary worktree, served against
the same database in the same run (the issue's "within 5 % of the previous commit")."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench import BenchFailure
from bench.machine import git

MIGRATIONS = "src/goticket/migrations"


@contextlib.contextmanager
def ref_checkout(ref: str) -> Iterator[Path]:
    """The ``src`` folder of ``ref``, checked out detached in a temporary git worktree."""
    try:
        commit = git("rev-parse", "--verify", "--short", f"{ref}^{{commit}}")
        # Both servers migrate the one database at their start: their schemas must be the same.
        changed = git("diff", "--name-only", ref, "HEAD", "--", MIGRATIONS)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchFailure(f"--compare-ref {ref}: not a commit of this repository ({exc})") from exc
    if changed:
        raise BenchFailure(
            f"--compare-ref {ref}: its migrations differ from this checkout's ({changed}); "
            "one database cannot serve both"
        )
    folder = Path(tempfile.mkdtemp(prefix="gtbench-ref-"))
    tree = folder / commit
    try:
        git("worktree", "add", "--detach", str(tree), commit)
        print(f"--compare-ref {ref}: commit {commit} checked out in {tree}", flush=True)
        yield tree / "src"
    finally:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            git("worktree", "remove", "--force", str(tree))
        shutil.rmtree(folder, ignore_errors=True)
