"""A per-process cache of encoded responses and HTTP conditional requests (RFC 9110/9111).

Framework-free: it holds bytes, so a hit costs a dict lookup and no encoding. Each entry is
refetched once it is ``max_age`` old, counted from the moment its load began (the data can be
no older than that); loads are single-flight per key, so a stampede on one key makes about one
load per ``max_age`` per process (reloaded ahead, in the last quarter of its life, when read).
Memory is bounded by an LRU of ``max_entries`` entries, whatever keys the clients invent (a
not-found answer is an entry like any other).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

K = TypeVar("K", bound=Hashable)
Monotonic = Callable[[], float]

CACHE_CONTROL = "public, max-age=1"
REFRESH_AHEAD = 0.75  # of max_age: a read of an entry this old also starts its reload
_ENTITY_TAG = re.compile(r'(?:W/)?"([\x21\x23-\x7e\x80-\xff]*)"')


@dataclass(frozen=True, slots=True)
class Fresh:
    """What a load produced: one encoded response, and what it was encoded from (if the owner
    wants to re-encode it later without a load, see ``put``)."""

    status: int
    media_type: str
    body: bytes
    source: object = None


@dataclass(frozen=True, slots=True)
class Cached:
    status: int
    media_type: str
    body: bytes
    etag: str | None  # strong, only on 200: a tag names one representation of the resource
    born: float  # the clock when its load began: the data is at least this recent
    source: object = None


def cached(fresh: Fresh, born: float) -> Cached:
    etag = etag_of(fresh.body) if fresh.status == 200 else None
    return Cached(fresh.status, fresh.media_type, fresh.body, etag, born, fresh.source)


class Answer(NamedTuple):
    status: int
    body: bytes
    headers: dict[str, str]


def etag_of(body: bytes) -> str:
    # A digest of the bytes: every worker computes the same tag for the same representation,
    # so a client revalidating against another worker still gets its 304.
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def none_match(header: str | None, etag: str) -> bool:
    """Does ``If-None-Match: header`` match ``etag``? Weak comparison, as RFC 9110 13.1.2 asks
    for this header: ``W/"x"`` matches ``"x"``; ``*`` matches any current representation."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")[1:-1]
    return any(match.group(1) == opaque for match in _ENTITY_TAG.finditer(header))


def conditional(entry: Cached, if_none_match: str | None, now: float) -> Answer:
    """Status, body and headers for ``entry``: a 304 with no body when the client holds the
    current tag.

    ``Age`` is rounded up: a shared cache downstream counts it against ``max-age=1``, so what
    it serves is never older than the bound in total (an entry of 0.3 s says Age: 1, and the
    downstream cache revalidates, which costs a 304 from memory)."""
    headers = {"cache-control": CACHE_CONTROL, "age": str(math.ceil(max(0.0, now - entry.born)))}
    if entry.etag is None:
        return Answer(entry.status, entry.body, headers)
    headers["etag"] = entry.etag
    if none_match(if_none_match, entry.etag):
        return Answer(304, b"", headers)
    return Answer(entry.status, entry.body, headers)


class ResponseCache(Generic[K]):
    def __init__(
        self,
        *,
        max_entries: int,
        max_age: float,
        clock: Monotonic = time.monotonic,
        refresh_ahead: bool = True,
    ) -> None:
        self._max_entries = max_entries
        self._max_age = max_age
        # Without: the owner keeps the entries fresh itself (``renew``, ``put``), and a reload
        # per key read late would only pile up behind its batch when that runs late.
        self._refresh_after = max_age * REFRESH_AHEAD if refresh_ahead else math.inf
        self._clock = clock
        self._entries: OrderedDict[K, Cached] = OrderedDict()
        self._flights: dict[K, asyncio.Task[Cached]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def now(self) -> float:
        return self._clock()

    async def get(self, key: K, load: Callable[[], Awaitable[Fresh]]) -> Cached:
        """The entry for ``key``, loaded by ``load()`` unless a young enough one is held.

        A load that fails is not cached: every caller waiting on it gets the error."""
        entry = self._entries.get(key)
        if entry is not None:
            age = self._clock() - entry.born
            if age < self._max_age:
                self._entries.move_to_end(key)
                if age >= self._refresh_after and key not in self._flights:
                    # Refresh ahead: a key in demand is reloaded in the background while its
                    # entry is still young enough to serve, so its readers never queue on a load.
                    self._fly(key, load)
                return entry
        flight = self._flights.get(key) or self._fly(key, load)
        # Shielded: a caller that goes away (its client disconnected) does not cancel the load
        # the others are waiting on.
        return await asyncio.shield(flight)

    def _fly(self, key: K, load: Callable[[], Awaitable[Fresh]]) -> asyncio.Task[Cached]:
        flight = asyncio.create_task(self._load(key, load))
        flight.add_done_callback(_retrieve)
        self._flights[key] = flight
        return flight

    async def _load(self, key: K, load: Callable[[], Awaitable[Fresh]]) -> Cached:
        born = self._clock()
        mine = asyncio.current_task()
        try:
            fresh = await load()
        finally:
            if self._flights.get(key) is mine:
                del self._flights[key]
                stored = True
            else:
                # Invalidated while loading: what was read may predate the change. The callers
                # already waiting get it (they asked before the change was known); it is not
                # kept, and callers from now on start a new load.
                stored = False
        entry = cached(fresh, born)
        if stored:
            self._store(key, entry)
        return entry

    def _store(self, key: K, entry: Cached) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def peek(self, key: K) -> Cached | None:
        """The entry held for ``key``, however old, without counting as a use."""
        return self._entries.get(key)

    def fresh(self, key: K) -> Cached | None:
        """The entry held for ``key`` if ``get`` would serve it (younger than ``max_age``),
        without counting as a use and without loading."""
        entry = self._entries.get(key)
        young = entry is not None and self._clock() - entry.born < self._max_age
        return entry if young else None

    def put(self, key: K, fresh: Fresh, born: float) -> None:
        """Replace what is held for ``key`` by what its owner read at ``born`` (a batch check of
        many keys, instead of a load per key). Ignored unless an entry older than that is held:
        one invalidated or reloaded meanwhile stays as it is."""
        held = self._entries.get(key)
        if held is not None and held.born < born:
            self._entries[key] = cached(fresh, born)

    def renew(self, key: K, born: float) -> None:
        """Its owner found at ``born`` that what is held for ``key`` is still current."""
        held = self._entries.get(key)
        if held is not None and held.born < born:
            self._entries[key] = Cached(
                held.status, held.media_type, held.body, held.etag, born, held.source
            )

    def invalidate(self, key: K) -> None:
        self._entries.pop(key, None)
        self._flights.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
        self._flights.clear()


def _retrieve(task: asyncio.Task[Cached]) -> None:
    # The callers saw the error (or all went away): nothing to log as "never retrieved".
    if not task.cancelled():
        task.exception()
