"""``ScanBatcher``: the gates' group commit. Scans that arrive while a statement runs go in the
next one; a ticket scanned twice in one batch is used once; a failed statement fails its scans."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from goticket.kit.errors import Unavailable
from goticket.tickets.domain import Ticket, TicketStatus
from goticket.tickets.service import ScanBatcher

EVENT = uuid4()
NOW = datetime(2030, 1, 1, tzinfo=UTC)


class Statement:
    """A stand-in for the conditional UPDATE: uses the valid tickets it is given, once."""

    def __init__(self, valid: set[UUID], *, fail: bool = False) -> None:
        self.valid = set(valid)
        self.batches: list[list[UUID]] = []
        self.fail = fail

    async def __call__(self, scans: Sequence[tuple[UUID, UUID]]) -> dict[UUID, Ticket]:
        self.batches.append([ticket_id for ticket_id, _ in scans])
        await asyncio.sleep(0.01)  # a round trip: the next scans queue meanwhile
        if self.fail:
            raise Unavailable("the database connection was lost, retry shortly")
        used = {}
        for ticket_id, event_id in scans:
            if ticket_id in self.valid:
                self.valid.discard(ticket_id)
                used[ticket_id] = Ticket(
                    ticket_id, uuid4(), event_id, 1, TicketStatus.USED, NOW, NOW
                )
        return used


async def test_scans_arriving_during_a_statement_go_together_in_the_next() -> None:
    tickets = [uuid4() for _ in range(50)]
    statement = Statement(set(tickets))
    batcher = ScanBatcher(statement)
    first = asyncio.create_task(batcher.check_in(tickets[0], EVENT))
    await asyncio.sleep(0.001)  # its statement is under way
    rest = await asyncio.gather(*(batcher.check_in(t, EVENT) for t in tickets[1:]))
    results = [await first, *rest]
    assert [r.id if r else None for r in results] == tickets
    # The first alone, the 49 that queued behind it together.
    assert [len(batch) for batch in statement.batches] == [1, 49]


async def test_one_ticket_scanned_many_times_at_once_is_used_once() -> None:
    ticket = uuid4()
    statement = Statement({ticket})
    batcher = ScanBatcher(statement)
    results = await asyncio.gather(*(batcher.check_in(ticket, EVENT) for _ in range(20)))
    assert sum(r is not None for r in results) == 1
    assert results[0] is not None  # the first to arrive


async def test_a_failed_statement_fails_each_of_its_scans_and_the_next_batch_runs() -> None:
    statement = Statement(set(), fail=True)
    batcher = ScanBatcher(statement)
    outcomes = await asyncio.gather(
        *(batcher.check_in(uuid4(), EVENT) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(o, Unavailable) for o in outcomes)
    statement.fail = False
    ticket = uuid4()
    statement.valid.add(ticket)
    used = await batcher.check_in(ticket, EVENT)
    assert used is not None
    assert used.id == ticket


@pytest.mark.parametrize("quiet", [1, 3])
async def test_quiet_gates_get_a_statement_each(quiet: int) -> None:
    statement = Statement(set())
    batcher = ScanBatcher(statement)
    for _ in range(quiet):
        assert await batcher.check_in(uuid4(), EVENT) is None
    assert [len(batch) for batch in statement.batches] == [1] * quiet


async def test_a_drain_cancelled_mid_statement_leaves_no_scan_waiting() -> None:
    """The worker stopping (its tasks cancelled) answers every scan, queued ones too."""
    statement = Statement({uuid4()})
    batcher = ScanBatcher(statement)
    first = [asyncio.create_task(batcher.check_in(uuid4(), EVENT)) for _ in range(3)]
    await asyncio.sleep(0.001)  # the statement of the first three is under way
    queued = [asyncio.create_task(batcher.check_in(uuid4(), EVENT)) for _ in range(2)]
    await asyncio.sleep(0)
    assert batcher._task is not None
    batcher._task.cancel()
    outcomes = await asyncio.wait_for(
        asyncio.gather(*first, *queued, return_exceptions=True), timeout=1
    )
    assert all(isinstance(o, Unavailable) for o in outcomes), outcomes
    assert len({id(o) for o in outcomes}) == 5  # an exception object each
    # And the next scan starts a drain of its own.
    assert await batcher.check_in(uuid4(), EVENT) is None
