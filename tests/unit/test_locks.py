"""The lock files are closed: every dependency of the project, and every dependency of a pinned
distribution, is pinned in the same lock (so ``pip install -r requirements.lock`` followed by
``pip install --no-deps .`` — the Makefile and the image — never resolves anything at install
time). Read from the installed distributions' metadata (the venv holds both locks' pins)."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: str) -> dict[str, str]:
    lines = (ROOT / lock).read_text().splitlines()
    pairs = (line.split("==", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {canonical(name): version for name, version in pairs}


def project_requirements(*extras: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in extras:
        declared += project["optional-dependencies"][extra]
    return [Requirement(text) for text in declared]


def missing(lock: dict[str, str], roots: list[Requirement]) -> set[str]:
    """Names needed (the roots, their extras, and transitively) but not pinned in ``lock``."""
    absent: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(canonical(r.name), frozenset(r.extras)) for r in roots]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        if name not in lock:
            absent.add(name)
            continue
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            wanted = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            marker = requirement.marker
            if marker is None or any(marker.evaluate(env) for env in wanted):
                todo.append((canonical(requirement.name), frozenset(requirement.extras)))
    return absent


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("requirements.lock", ()), ("requirements-dev.lock", ("dev", "bench"))],
)
def test_the_lock_is_closed(lock: str, extras: tuple[str, ...]) -> None:
    assert missing(pins(lock), project_requirements(*extras)) == set()


def test_the_dev_lock_keeps_the_runtime_pins() -> None:
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert {name: dev.get(name) for name in runtime} == runtime


def test_the_installed_versions_are_the_pinned_ones() -> None:
    for name, version in pins("requirements-dev.lock").items():
        assert metadata.version(name) == version, name
