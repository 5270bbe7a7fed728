"""kit.cache: the LRU bound, the age bound, single-flight loads and conditional requests, on an
injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from goticket.kit.cache import (
    CACHE_CONTROL,
    Cached,
    Fresh,
    ResponseCache,
    conditional,
    etag_of,
    none_match,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """Counts loads per key; each answers the key and how many loads came before."""

    def __init__(self, status: int = 200) -> None:
        self.calls: dict[str, int] = {}
        self.status = status
        self.gate: asyncio.Event | None = None

    def of(self, key: str) -> Callable[[], Awaitable[Fresh]]:
        async def load() -> Fresh:
            self.calls[key] = self.calls.get(key, 0) + 1
            if self.gate is not None:
                await self.gate.wait()
            return Fresh(self.status, "application/json", f"{key}:{self.calls[key]}".encode())

        return load


def make(max_entries: int = 100, max_age: float = 1.0) -> tuple[ResponseCache[str], FakeClock]:
    clock = FakeClock()
    return ResponseCache(max_entries=max_entries, max_age=max_age, clock=clock), clock


async def test_an_entry_is_reused_until_it_is_max_age_old_then_refetched() -> None:
    cache, clock = make(max_age=1.0)
    loader = Loader()
    first = await cache.get("a", loader.of("a"))
    clock.now += 0.5
    assert await cache.get("a", loader.of("a")) is first
    assert loader.calls == {"a": 1}
    clock.now += 0.5
    again = await cache.get("a", loader.of("a"))
    assert again.body == b"a:2"
    assert again.born == clock.now
    assert loader.calls == {"a": 2}


async def test_a_read_late_in_an_entrys_life_serves_it_and_reloads_it_in_the_background() -> None:
    cache, clock = make(max_age=1.0)
    loader = Loader()
    first = await cache.get("a", loader.of("a"))
    clock.now += 0.8
    assert await cache.get("a", loader.of("a")) is first  # still within the bound: no wait
    assert await cache.get("a", loader.of("a")) is first  # one reload in flight, not two
    for _ in range(3):
        await asyncio.sleep(0)
    assert loader.calls == {"a": 2}
    clock.now += 0.5  # the first entry would be too old now; the reloaded one is not
    renewed = await cache.get("a", loader.of("a"))
    assert renewed.body == b"a:2"
    assert loader.calls == {"a": 2}


async def test_max_age_zero_loads_every_time() -> None:
    cache, _ = make(max_age=0)
    loader = Loader()
    for _ in range(3):
        await cache.get("a", loader.of("a"))
    assert loader.calls == {"a": 3}


async def test_the_least_recently_used_entry_goes_first_and_size_stays_bounded() -> None:
    cache, _ = make(max_entries=3)
    loader = Loader()
    for key in "abc":
        await cache.get(key, loader.of(key))
    await cache.get("a", loader.of("a"))  # a is now the most recently used
    await cache.get("d", loader.of("d"))  # evicts b
    assert len(cache) == 3
    await cache.get("a", loader.of("a"))
    await cache.get("b", loader.of("b"))
    assert loader.calls == {"a": 1, "b": 2, "c": 1, "d": 1}


async def test_a_million_distinct_keys_never_hold_more_than_the_bound() -> None:
    cache, _ = make(max_entries=1000)
    loader = Loader(status=404)  # ids that do not exist are entries like any other
    for i in range(20_000):
        await cache.get(str(i), loader.of(str(i)))
        assert len(cache) <= 1000
    assert len(cache) == 1000


async def stampede(cache: ResponseCache[str], loader: Loader, requests: int) -> list[Cached]:
    """``requests`` concurrent gets of "hot", all arriving while the first load is running."""
    loader.gate = asyncio.Event()
    waiters = [asyncio.create_task(cache.get("hot", loader.of("hot"))) for _ in range(requests)]
    await asyncio.sleep(0)
    loader.gate.set()
    return await asyncio.gather(*waiters)


async def test_concurrent_misses_on_one_key_make_one_load() -> None:
    cache, _ = make()
    loader = Loader()
    entries = await stampede(cache, loader, 100)
    assert loader.calls == {"hot": 1}
    assert {entry.body for entry in entries} == {b"hot:1"}


async def test_a_stale_entry_under_a_stampede_is_refetched_once() -> None:
    cache, clock = make(max_age=1.0)
    loader = Loader()
    await cache.get("hot", loader.of("hot"))
    clock.now += 5
    entries = await stampede(cache, loader, 50)
    assert loader.calls == {"hot": 2}
    assert {entry.body for entry in entries} == {b"hot:2"}  # nobody was served the stale one


async def test_a_failed_load_reaches_every_waiter_and_is_not_cached() -> None:
    cache, _ = make()
    gate = asyncio.Event()
    calls = 0

    async def failing() -> Fresh:
        nonlocal calls
        calls += 1
        await gate.wait()
        raise ConnectionError("database gone")

    waiters = [asyncio.create_task(cache.get("a", failing)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
    assert calls == 1
    assert len(cache) == 0
    entry = await cache.get("a", Loader().of("a"))
    assert entry.body == b"a:1"


async def test_a_waiter_that_goes_away_does_not_cancel_the_load_of_the_others() -> None:
    cache, _ = make()
    loader = Loader()
    loader.gate = asyncio.Event()
    leaving = asyncio.create_task(cache.get("a", loader.of("a")))
    staying = asyncio.create_task(cache.get("a", loader.of("a")))
    await asyncio.sleep(0)
    leaving.cancel()
    loader.gate.set()
    assert (await staying).body == b"a:1"
    assert leaving.cancelled()


async def test_invalidation_during_a_load_keeps_its_result_out_and_starts_a_new_load() -> None:
    cache, _ = make()
    loader = Loader()
    first_gate = loader.gate = asyncio.Event()
    before = asyncio.create_task(cache.get("a", loader.of("a")))
    await asyncio.sleep(0)
    cache.invalidate("a")  # the change committed while the first load was reading
    loader.gate = None
    after = await cache.get("a", loader.of("a"))
    assert after.body == b"a:2"
    first_gate.set()
    assert (await before).body == b"a:1"  # asked before the change was known
    # The late, older read did not replace the newer one.
    assert (await cache.get("a", loader.of("a"))).body == b"a:2"
    assert loader.calls == {"a": 2}


async def test_invalidate_and_clear_drop_entries() -> None:
    cache, _ = make()
    loader = Loader()
    for key in "ab":
        await cache.get(key, loader.of(key))
    cache.invalidate("a")
    assert len(cache) == 1
    await cache.get("a", loader.of("a"))
    cache.clear()
    assert len(cache) == 0
    await cache.get("b", loader.of("b"))
    assert loader.calls == {"a": 2, "b": 2}


async def test_only_a_200_carries_an_etag_and_it_is_the_digest_of_the_bytes() -> None:
    cache, _ = make()
    ok = await cache.get("a", Loader().of("a"))
    missing = await cache.get("b", Loader(status=404).of("b"))
    assert ok.etag == etag_of(b"a:1")
    assert ok.etag.startswith('"')
    assert ok.etag.endswith('"')
    assert etag_of(b"a:1") != etag_of(b"a:2")
    assert missing.etag is None


TAG = '"0123456789abcdef01234567"'


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        (TAG, True),
        (f"W/{TAG}", True),
        ("*", True),
        (" * ", True),
        (f'"other", {TAG}', True),
        (f'"other",W/{TAG} , "x"', True),
        ('"other"', False),
        (TAG[1:-1], False),  # not quoted: not an entity tag
        ('"a,"', False),
        ('"0123456789abcdef0123456"', False),
        ("W/", False),
    ],
)
def test_if_none_match_compares_weakly_and_accepts_lists_and_star(
    header: str | None, matches: bool
) -> None:
    assert none_match(header, TAG) is matches


def entry(status: int = 200, etag: str | None = TAG, born: float = 10.0) -> Cached:
    return Cached(status, "application/json", b"{}", etag, born)


def test_a_current_tag_gets_a_304_with_no_body_and_the_caching_headers() -> None:
    reply = conditional(entry(), TAG, now=10.2)
    assert reply.status == 304
    assert reply.body == b""
    assert reply.headers == {"cache-control": CACHE_CONTROL, "age": "1", "etag": TAG}


def test_another_tag_gets_the_body() -> None:
    reply = conditional(entry(), '"stale"', now=10.0)
    assert (reply.status, reply.body) == (200, b"{}")
    assert reply.headers == {"cache-control": CACHE_CONTROL, "age": "0", "etag": TAG}


def test_a_404_ignores_if_none_match_and_has_no_etag() -> None:
    reply = conditional(entry(404, None), "*", now=10.5)
    assert (reply.status, reply.body) == (404, b"{}")
    assert reply.headers == {"cache-control": CACHE_CONTROL, "age": "1"}


@pytest.mark.parametrize(("age", "header"), [(0.0, "0"), (0.001, "1"), (0.999, "1"), (1.0, "1")])
def test_age_is_rounded_up_so_downstream_caches_do_not_stretch_the_bound(
    age: float, header: str
) -> None:
    assert conditional(entry(), None, now=10.0 + age).headers["age"] == header


async def test_put_and_renew_change_an_older_entry_never_an_absent_or_newer_one() -> None:
    cache, clock = make(max_age=1.0)
    first = await cache.get("a", Loader().of("a"))
    cache.put("b", Fresh(200, "application/json", b"b"), clock.now + 1)
    cache.renew("b", clock.now + 1)
    assert cache.peek("b") is None  # nothing held: nothing to renew
    clock.now += 0.9
    cache.renew("a", clock.now)
    renewed = cache.peek("a")
    assert renewed is not None
    assert (renewed.body, renewed.etag, renewed.born) == (first.body, first.etag, clock.now)
    clock.now += 0.5
    assert await cache.get("a", Loader().of("a")) is renewed  # young again: no load
    cache.put("a", Fresh(200, "application/json", b"changed", "src"), clock.now)
    changed = cache.peek("a")
    assert changed is not None
    assert (changed.body, changed.etag, changed.source) == (b"changed", etag_of(b"changed"), "src")
    cache.put("a", Fresh(200, "application/json", b"older"), clock.now - 0.5)
    cache.renew("a", clock.now - 0.5)
    assert cache.peek("a") is changed  # a check older than what is held changes nothing
