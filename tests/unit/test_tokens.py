"""The verified-token cache: bounded, least recently used first out, never past a token's exp."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from goticket.kit.auth import Principal, Role
from goticket.kit.errors import AuthenticationFailed
from goticket.kit.tokens import TokenCodec, VerifiedTokens

T0 = 1_900_000_000.0


class Clock:
    def __init__(self, at: float = T0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def someone() -> Principal:
    return Principal(uuid.uuid4(), Role.USER)


def test_an_entry_is_served_until_its_own_exp_and_never_at_it() -> None:
    clock = Clock()
    cache = VerifiedTokens(10, clock)
    short, long = someone(), someone()
    cache.put("short", short, T0 + 5)
    cache.put("long", long, T0 + 60)
    clock.at = T0 + 4.999
    assert cache.get("short") == short
    clock.at = T0 + 5  # exp reached: gone, as the verifier would refuse it now
    assert cache.get("short") is None
    assert len(cache) == 1
    assert cache.get("long") == long
    clock.at = T0 + 60
    assert cache.get("long") is None
    assert len(cache) == 0


def test_the_least_recently_used_entry_leaves_first_and_the_size_stays_bounded() -> None:
    cache = VerifiedTokens(3, Clock())
    people = {name: someone() for name in "abcde"}
    for name in "abc":
        cache.put(name, people[name], T0 + 60)
    assert cache.get("a") == people["a"]  # a is now the most recently used
    cache.put("d", people["d"], T0 + 60)  # evicts b, the least recently used
    assert cache.get("b") is None
    cache.put("e", people["e"], T0 + 60)  # evicts c
    assert cache.get("c") is None
    assert [cache.get(name) for name in "ade"] == [people["a"], people["d"], people["e"]]
    assert len(cache) == 3


def test_a_flood_of_new_tokens_never_grows_the_cache_past_its_bound() -> None:
    cache = VerifiedTokens(100, Clock())
    regular = someone()
    cache.put("regular", regular, T0 + 60)
    for n in range(10_000):
        cache.put(f"one-off-{n}", someone(), T0 + 60)
        if n % 50 == 0:
            assert cache.get("regular") == regular  # a client still sending its token stays
    assert len(cache) == 100
    assert cache.get("regular") == regular


def test_putting_a_token_again_refreshes_it_without_growing() -> None:
    cache = VerifiedTokens(2, Clock())
    first, second = someone(), someone()
    cache.put("a", first, T0 + 60)
    cache.put("b", second, T0 + 60)
    cache.put("a", first, T0 + 60)
    cache.put("c", someone(), T0 + 60)  # evicts b: a was refreshed
    assert len(cache) == 2
    assert cache.get("a") == first
    assert cache.get("b") is None


def test_a_cache_needs_room_for_one_entry() -> None:
    with pytest.raises(ValueError, match="at least one"):
        VerifiedTokens(0)


def test_the_codec_remembers_a_token_only_until_its_exp_on_its_clock() -> None:
    clock = Clock()
    codec = TokenCodec(
        "k" * 40, issuer="goticket", audience="goticket-api", ttl_seconds=60, clock=clock
    )
    principal = someone()
    token = codec.issue(principal, datetime.fromtimestamp(T0, UTC)).token
    assert codec.verify(token) == principal
    clock.at = T0 + 59
    assert codec.verify(token) == principal  # from the cache
    clock.at = T0 + 60
    with pytest.raises(AuthenticationFailed):
        codec.verify(token)  # the cache lets go at exp, and the verifier refuses it too


def test_the_codec_cache_is_bounded() -> None:
    codec = TokenCodec(
        "k" * 40, issuer="goticket", audience="goticket-api", ttl_seconds=60, cache_size=5
    )
    now = datetime.now(UTC)
    tokens = [codec.issue(someone(), now).token for _ in range(20)]
    for token in tokens:
        codec.verify(token)
    assert len(codec._verified) == 5
