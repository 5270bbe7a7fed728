"""Small secret files in the data folder: created once (0600) and replaced whole, never torn."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _private_temporary(path: Path, text: str) -> Path:
    # A name of its own per writer (processes and threads alike), in the same folder as the
    # target so that link() and rename() stay on one file system.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return tmp


def create_once(path: Path, text: str) -> str:
    """``path``'s text: ``text`` if this call created it, else what another writer put there."""
    if path.exists():
        return path.read_text()
    tmp = _private_temporary(path, text)
    try:
        # link() is atomic and refuses to overwrite: when several processes start at once,
        # exactly one file wins and every process reads that one.
        os.link(tmp, path)
    except FileExistsError:
        text = path.read_text()
    finally:
        tmp.unlink()
    return text


def replace_whole(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never a part of either (rename is atomic)."""
    os.replace(_private_temporary(path, text), path)
