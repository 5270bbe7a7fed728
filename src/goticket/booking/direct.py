"""``GOTICKET_ENGINE=off``: the reserver that runs one transaction per request."""

from __future__ import annotations

from uuid import UUID

from goticket.booking.domain import Booking, BookRequest
from goticket.booking.ports import BatchCommitter


class DirectReserver:
    """One transaction per request (``GOTICKET_ENGINE=off``): a batch of one, every time."""

    def __init__(self, writer: BatchCommitter) -> None:
        self._writer = writer

    async def reserve(self, request: BookRequest) -> Booking:
        (outcome,) = await self._writer.commit(request.event_id, [request])
        if isinstance(outcome, Booking):
            return outcome
        raise outcome

    def released(self, event_id: UUID) -> None:
        pass  # nothing cached

    def queued(self) -> int:
        return 0  # every request runs in its caller's task

    async def close(self) -> None:
        pass  # every request runs in its caller's task
