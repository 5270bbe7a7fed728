"""LISTEN on a dedicated connection, kept alive: a lost one is re-established with backoff.

A notification sent while no connection listened is lost for good, so each (re)connection
calls ``on_reset`` once it listens: whoever holds derived state throws it away. A connection that
died silently (no FIN from a dead network) is found by a ``SELECT 1`` every ``ping_every``
seconds; that poll, and the cache's own age bound, are the safety net under the notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from typing import Any

import asyncpg

from goticket.kit.logging import get_logger

log = get_logger("goticket.listen")


class Listener:
    def __init__(
        self,
        dsn: str,
        channel: str,
        on_notify: Callable[[str], None],
        on_reset: Callable[[], None],
        *,
        ping_every: float = 5.0,
        backoff_first: float = 0.1,
        backoff_max: float = 5.0,
    ) -> None:
        self._dsn = dsn
        self._channel = channel
        self._on_notify = on_notify
        self._on_reset = on_reset
        self._ping_every = ping_every
        self._backoff_first = backoff_first
        self._backoff_max = backoff_max
        self._task: asyncio.Task[None] | None = None
        self.connections = 0  # how many times it (re)connected and listened: for tests and logs
        self.backend_pid: int | None = None  # the server process of the current connection
        self.failures = 0  # connections that failed or were lost
        self.listening = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"listen {self._channel}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = self._backoff_first
        while True:
            try:
                await self._listen()
                backoff = self._backoff_first  # it was up: the next loss starts from short again
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 -- whatever broke it, listen again
                self.failures += 1
                log.warning("listen connection failed", channel=self._channel, error=repr(exc))
            # Jitter: workers that lost the database together do not reconnect in lockstep.
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))  # noqa: S311
            backoff = min(backoff * 2, self._backoff_max)

    async def _listen(self) -> None:
        connection: asyncpg.Connection[Any] = await asyncpg.connect(
            self._dsn,
            timeout=10,
            server_settings={"application_name": "goticket-listen"},
        )
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _: lost.set())
            await connection.add_listener(self._channel, self._notified)
            self.connections += 1
            self.backend_pid = connection.get_server_pid()
            self._on_reset()
            self.listening.set()
            log.info("listening", channel=self._channel, connections=self.connections)
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self._ping_every)
                    break
                await connection.fetchval("SELECT 1", timeout=self._ping_every)
            self.failures += 1
            log.warning("listen connection lost", channel=self._channel)
        finally:
            self.listening.clear()
            self.backend_pid = None
            connection.terminate()

    def _notified(self, _: object, __: int, ___: str, payload: object) -> None:
        self._on_notify(str(payload))
