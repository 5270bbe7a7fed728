"""Parse every OpenTofu/Terraform file of a folder and check that its interface is documented.

Usage: ``python deploy/check_hcl.py deploy/opentofu``

Every ``*.tf`` and ``*.tfvars`` file under the folder must parse as HCL2 (python-hcl2), at least
one ``*.tf`` file must exist, and every ``variable`` and ``output`` block must carry a non-empty
``description``. No ``tofu`` binary is needed: this is the offline half of ``tofu validate``
(syntax and documentation; it does not resolve references or provider schemas).
Exit status: 0 when every check passes, 1 otherwise, 2 on bad usage.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import hcl2
from lark.exceptions import LarkError

SUFFIXES = (".tf", ".tfvars")
SKIPPED_DIRS = frozenset({".terraform", ".git"})
# python-hcl2 marks each block body with this key; it is not an attribute of the block.
META_PREFIX = "__"


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def _unquote(text: str) -> str:
    """python-hcl2 keeps the quotes of string literals and block labels by default."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def hcl_files(root: Path) -> list[Path]:
    """The ``*.tf`` and ``*.tfvars`` files under ``root``, skipping ``.terraform`` caches."""
    found = [
        path
        for path in root.rglob("*")
        if path.is_file()
        and path.name.endswith(SUFFIXES)
        and not SKIPPED_DIRS.intersection(path.relative_to(root).parts)
    ]
    return sorted(found)


def labelled_blocks(document: dict[str, Any], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(label, body)`` for each ``kind "label" { ... }`` block of a parsed file."""
    entries: Iterable[Any] = document.get(kind, [])
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        for label, body in entry.items():
            if label.startswith(META_PREFIX):
                continue
            yield _unquote(label), body if isinstance(body, dict) else {}


def undocumented(document: dict[str, Any]) -> list[str]:
    """``variable``/``output`` blocks whose ``description`` is missing or blank."""
    problems = []
    for kind in ("variable", "output"):
        for label, body in labelled_blocks(document, kind):
            description = body.get("description")
            if not isinstance(description, str) or not _unquote(description).strip():
                problems.append(f'{kind} "{label}" has no description')
    return problems


def check_file(path: Path) -> list[str]:
    """The problems of one file: a parse error, or undocumented variables and outputs."""
    try:
        with path.open(encoding="utf-8") as handle:
            document = hcl2.load(handle)
    except (LarkError, ValueError, OSError) as exc:  # UnicodeDecodeError is a ValueError
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [f"parse error: {first_line}"]
    if path.suffix == ".tfvars":
        return []
    return undocumented(document)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: check_hcl.py DIRECTORY\n")
        return 2
    root = Path(argv[0])
    if not root.is_dir():
        sys.stderr.write(f"check_hcl: {root} is not a directory\n")
        return 2
    files = hcl_files(root)
    if not any(path.suffix == ".tf" for path in files):
        sys.stderr.write(f"check_hcl: no .tf files under {root}\n")
        return 1
    failed = 0
    for path in files:
        problems = check_file(path)
        if problems:
            failed += 1
            _say(f"FAIL {path}")
            for problem in problems:
                _say(f"     {problem}")
        else:
            _say(f"ok   {path}")
    _say(f"check_hcl: {len(files) - failed} of {len(files)} file(s) ok")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
