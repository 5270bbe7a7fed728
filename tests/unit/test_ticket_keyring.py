"""The key ring in the data folder: generated once (0600), the same for every process that starts at
once, rotated by kid without losing a key; or configured by ``GOTICKET_TICKET_SIGNING_KEY``."""

from __future__ import annotations

import json
import multiprocessing
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest

from goticket.tickets.domain import b64url, issue_code, verify_code
from goticket.tickets.keyring import (
    FILE_NAME,
    KeyRingFile,
    parse_file,
    parse_variable,
    resolve_ring,
)
from goticket.tickets.signing import BadKey

NOW = datetime(2026, 12, 7, 17, 0, tzinfo=UTC)
SEED_A = b64url(bytes(range(32)))
SEED_B = b64url(bytes(range(1, 33)))


def test_the_ring_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    ring = KeyRingFile(tmp_path).load_or_create(NOW)
    path = tmp_path / FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document["current"] == ring.current.kid
    assert [k["kid"] for k in document["keys"]] == [ring.current.kid]
    assert document["keys"][0]["createdAt"] == NOW.isoformat()
    again = KeyRingFile(tmp_path).load_or_create(NOW)
    assert again.current.seed() == ring.current.seed()
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME]  # no temporary file left


def _create(folder: str) -> str:
    return KeyRingFile(Path(folder)).load_or_create(datetime.now(UTC)).current.kid


def test_concurrent_creation_keeps_one_ring(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        kids = set(pool.map(_create, [str(tmp_path)] * 32))
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as processes:
        kids |= set(processes.map(_create, [str(tmp_path)] * 8))
    assert kids == {parse_file((tmp_path / FILE_NAME).read_text()).current.kid}
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME]


def test_rotation_adds_a_current_key_and_keeps_the_old_ones(tmp_path: Path) -> None:
    keys = KeyRingFile(tmp_path)
    first = keys.load_or_create(NOW)
    old_code = issue_code(uuid4(), uuid4(), first.current)
    rotated = keys.rotate(NOW)
    assert rotated.current.kid != first.current.kid
    reloaded = keys.load_or_create(NOW)
    assert [k.kid for k in reloaded.keys] == [first.current.kid, rotated.current.kid]
    assert reloaded.current.kid == rotated.current.kid
    assert verify_code(old_code, dict(reloaded.public_keys())).kid == first.current.kid
    assert stat.S_IMODE((tmp_path / FILE_NAME).stat().st_mode) == 0o600


def test_concurrent_rotations_lose_no_key(tmp_path: Path) -> None:
    keys = KeyRingFile(tmp_path)
    with ThreadPoolExecutor(8) as pool:
        added = {ring.current.kid for ring in pool.map(lambda _: keys.rotate(NOW), range(16))}
    ring = keys.load_or_create(NOW)
    assert len(added) == 16
    assert added <= set(ring.public_keys())
    assert len(ring.keys) == 17  # the first key, created by the first rotation, and 16 more


def test_rotation_of_a_missing_ring_creates_it_first(tmp_path: Path) -> None:
    ring = KeyRingFile(tmp_path / "new").rotate(NOW)
    assert len(ring.keys) == 2


def test_the_variable_names_the_current_key_first() -> None:
    ring = parse_variable(f"new:{SEED_B}, old:{SEED_A}")
    assert ring.current.kid == "new"
    assert list(ring.public_keys()) == ["new", "old"]


def test_a_configured_ring_wins_and_writes_nothing(tmp_path: Path) -> None:
    ring = resolve_ring(tmp_path, f"k1:{SEED_A}", NOW)
    assert ring.current.seed() == bytes(range(32))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "value",
    [
        "",
        SEED_A,
        f"k1:{SEED_A}=",
        f"k1:{b64url(bytes(31))}",
        f"k 1:{SEED_A}",
        f"k1:{SEED_A},k1:{SEED_B}",
        f"k1:{SEED_A},",
        f"{SEED_A}:k1",
        f"k1:{SEED_B},{SEED_A}:k2",
    ],
    ids=[
        "empty",
        "no kid",
        "padded",
        "31 bytes",
        "bad kid",
        "kid twice",
        "trailing comma",
        "seed:kid, the wrong way round",
        "the wrong way round, second",
    ],
)
def test_a_bad_variable_is_refused_without_showing_the_key(value: str) -> None:
    with pytest.raises(BadKey) as refused:
        parse_variable(value)
    assert SEED_A not in str(refused.value)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        json.dumps({"current": "k1", "keys": []}),
        json.dumps({"current": "k2", "keys": [{"kid": "k1", "privateKey": SEED_A}]}),
        json.dumps({"current": "k1", "keys": [{"kid": "k1", "privateKey": "short"}]}),
    ],
    ids=["not JSON", "not an object", "no keys", "current not in the ring", "bad key"],
)
def test_an_unreadable_ring_file_is_refused(text: str) -> None:
    with pytest.raises(BadKey):
        parse_file(text)
