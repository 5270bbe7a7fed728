"""Use cases of tickets: sign, verify and publish codes (``TicketSigning``, no table), and show
tickets, check them in and sum an event's sales (``TicketService``).

The keys are loaded once per process by the composition root, so a rotation takes effect when
the service restarts; the old keys stay, so codes signed before still verify and check in."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from goticket.kit.auth import Principal
from goticket.kit.clock import Clock
from goticket.kit.errors import DomainError, NotFound, Unavailable
from goticket.tickets.domain import (
    OUTCOME_OF_ERROR,
    InvalidTicketCode,
    PublicKey,
    Scan,
    ScanOutcome,
    ScanResult,
    SigningKey,
    Ticket,
    TicketClaims,
    TicketNotFound,
    TicketStatus,
    claims_for_event,
    ensure_can_manage_door,
    issue_code,
    jwk,
    plan_sync,
    refuse_scan,
    scan_time,
    verify_code,
)
from goticket.tickets.ports import (
    BookingAccess,
    CheckInMetrics,
    EventOrganizers,
    NoMetrics,
    Sales,
    UnitOfWorkFactory,
)

ONLINE = "scan"
OFFLINE = "sync"
VERIFY_SLICE = 50
ORGANIZERS_KEPT = 100_000  # events whose organizer a process remembers


class TicketSigning:
    def __init__(self, current: SigningKey, published: Sequence[PublicKey]) -> None:
        self._current = current
        self._keys = {key.kid: key for key in published}
        self._jwks = [jwk(key) for key in published]

    def issue(self, ticket_id: UUID, event_id: UUID) -> str:
        return issue_code(ticket_id, event_id, self._current)

    def verify(self, code: str) -> TicketClaims:
        return verify_code(code, self._keys)

    def public_jwks(self) -> list[dict[str, str]]:
        return list(self._jwks)


@dataclass(frozen=True, slots=True)
class ShownTicket:
    """A ticket with its code, signed when shown (Ed25519 is deterministic: the same key gives
    the same code every time)."""

    ticket: Ticket
    code: str


class TicketService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        signing: TicketSigning,
        see_booking: BookingAccess,
        organizers: EventOrganizers,
        clock: Clock,
        *,
        metrics: CheckInMetrics | None = None,
    ) -> None:
        self._uow = uow
        self._signing = signing
        self._see_booking = see_booking
        self._organizers = organizers
        self._clock = clock
        self._metrics: CheckInMetrics = metrics or NoMetrics()
        self._organizer_of: dict[UUID, UUID] = {}
        self._gates = ScanBatcher(self._check_in_batch)

    def _shown(self, ticket: Ticket) -> ShownTicket:
        return ShownTicket(ticket, self._signing.issue(ticket.id, ticket.event_id))

    async def of_booking(self, actor: Principal, booking_id: UUID) -> list[ShownTicket]:
        """The booking's tickets, for whoever may see the booking (else the booking's 404)."""
        await self._see_booking(actor, booking_id)
        async with self._uow(readonly=True) as uow:
            tickets = await uow.tickets.of_booking(booking_id)
        return [self._shown(ticket) for ticket in tickets]

    async def code(self, actor: Principal, ticket_id: UUID) -> str:
        """A ticket's code, for whoever may see its booking; 404 for anyone else."""
        async with self._uow(readonly=True) as uow:
            ticket = await uow.tickets.get(ticket_id)
        if ticket is None:
            raise TicketNotFound("no such ticket")
        try:
            await self._see_booking(actor, ticket.booking_id)
        except NotFound:
            raise TicketNotFound("no such ticket") from None
        return self._signing.issue(ticket.id, ticket.event_id)

    async def check_in(self, actor: Principal, event_id: UUID, code: str) -> ShownTicket:
        """The first scan of a valid ticket uses it; any other scan is refused, saying why."""
        try:
            # The signature first: a forged or garbled code costs CPU only, never a query.
            claims = self._signing.verify(code)
            await self._ensure_door(actor, event_id)
            claims_for_event(claims, event_id)
            used = await self._gates.check_in(claims.ticket_id, event_id)
            ticket = None
            if used is None:
                # Not used by the batch: already used or void (a fresh statement sees the scan
                # that won meanwhile), gone, or still valid because another writer (a sync, a
                # cancel) held its row and the batch skipped it: this scan alone waits for it.
                async with self._uow(autocommit=True) as uow:
                    ticket = await uow.tickets.get(claims.ticket_id)
                    if ticket is not None and ticket.status is TicketStatus.VALID:
                        scan = [(claims.ticket_id, event_id)]
                        waited = await uow.tickets.check_in(scan, self._clock.now(), wait=True)
                        used = waited.get(claims.ticket_id)
                        if used is None:
                            ticket = await uow.tickets.get(claims.ticket_id)
            if used is None:
                if ticket is None:
                    # Gone with its event? Then the event's 404, as without the memory.
                    self._organizer_of.pop(event_id, None)
                    await self._ensure_door(actor, event_id)
                refuse_scan(ticket)
        except DomainError as error:
            outcome = OUTCOME_OF_ERROR.get(error.code)
            if outcome is not None:
                self._metrics.checked_in(outcome.value, ONLINE)
            raise
        assert used is not None
        self._metrics.checked_in(ScanOutcome.CHECKED_IN.value, ONLINE)
        return ShownTicket(used, code)  # the code just verified: no second signature

    async def sync(
        self, actor: Principal, event_id: UUID, scans: Sequence[tuple[str, datetime]]
    ) -> list[ScanResult]:
        """An offline scanner's batch, in one transaction: see ``domain.plan_sync``."""
        # Who may sync first: a stranger's batch of a thousand codes costs no signature check.
        await self._ensure_door(actor, event_id)
        now = self._clock.now()
        # A code scanned twice in a batch (two gates, a retried scan) is verified once. A
        # signature costs some 0.2 ms of CPU: a full batch yields to the event loop between
        # slices, so that other requests of this process are not held up behind it.
        claims: dict[str, TicketClaims | ScanOutcome] = {}
        for code, _ in scans:
            if code not in claims:
                claims[code] = self._claims(code, event_id)
                if len(claims) % VERIFY_SLICE == 0:
                    await asyncio.sleep(0)
        verified = [_scan(code, scan_time(at, now), claims[code]) for code, at in scans]
        ticket_ids = sorted({scan.ticket_id for scan in verified if scan.ticket_id is not None})
        if ticket_ids:
            async with self._uow() as uow:
                before = await uow.tickets.lock(event_id, ticket_ids)
                if not before and event_id in self._organizer_of:
                    # None of its tickets exists: gone with the event? Then its 404, as a
                    # process that never remembered the event would answer.
                    self._organizer_of.pop(event_id, None)
                    await self._ensure_door(actor, event_id)
                plan = plan_sync(verified, before)
                await uow.tickets.check_in_many(plan.check_ins)
                await uow.commit()
        else:
            plan = plan_sync(verified, {})
        counts: dict[ScanOutcome, int] = {}
        for result in plan.results:
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        for outcome, count in counts.items():
            self._metrics.checked_in(outcome.value, OFFLINE, count)
        return plan.results

    def _claims(self, code: str, event_id: UUID) -> TicketClaims | ScanOutcome:
        """The code's claims, or why a scan of it is refused before any query."""
        try:
            claims = self._signing.verify(code)
        except InvalidTicketCode:
            return ScanOutcome.INVALID
        return claims if claims.event_id == event_id else ScanOutcome.WRONG_EVENT

    async def sales(self, actor: Principal, event_id: UUID) -> Sales:
        await self._ensure_door(actor, event_id)
        async with self._uow(readonly=True) as uow:
            sales = await uow.tickets.sales(event_id)
        if sales is None:  # deleted since the check
            ensure_can_manage_door(actor, None)
        assert sales is not None
        return sales

    async def _check_in_batch(self, scans: Sequence[tuple[UUID, UUID]]) -> dict[UUID, Ticket]:
        # One conditional statement decides the whole batch: no transaction around it.
        async with self._uow(autocommit=True) as uow:
            used = await uow.tickets.check_in(scans, self._clock.now())
            await uow.commit()
        return used

    async def _ensure_door(self, actor: Principal, event_id: UUID) -> None:
        ensure_can_manage_door(actor, await self._organizer(event_id))

    async def _organizer(self, event_id: UUID) -> UUID | None:
        """An event's organizer never changes: once known, it is known without a query (a gate
        scans thousands of codes of one event). An unknown event is asked again each time."""
        organizer = self._organizer_of.get(event_id)
        if organizer is None:
            organizer = await self._organizers(event_id)
            if organizer is not None:
                if len(self._organizer_of) >= ORGANIZERS_KEPT:
                    self._organizer_of.clear()
                self._organizer_of[event_id] = organizer
        return organizer


def _scan(code: str, at: datetime, claims: TicketClaims | ScanOutcome) -> Scan:
    if isinstance(claims, ScanOutcome):
        return Scan(code, at, None, claims)
    return Scan(code, at, claims.ticket_id)


Scans = Sequence[tuple[UUID, UUID]]


class ScanBatcher:
    """Group commit for the gates: the scans that arrive while a statement is in flight go
    together in the next one (no timer: a batch of one when the gates are quiet). Of several
    scans of one ticket in a batch, the first is decided by the statement and the others get
    None (the caller reads the ticket, used by then, and answers 409): exactly one 200."""

    def __init__(self, run: Callable[[Scans], Awaitable[dict[UUID, Ticket]]]) -> None:
        self._run = run
        self._waiting: list[tuple[UUID, UUID, asyncio.Future[Ticket | None]]] = []
        self._draining = False
        self._task: asyncio.Task[None] | None = None  # kept: the loop holds tasks weakly

    async def check_in(self, ticket_id: UUID, event_id: UUID) -> Ticket | None:
        future: asyncio.Future[Ticket | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((ticket_id, event_id, future))
        if not self._draining:
            self._draining = True
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        batch: list[tuple[UUID, UUID, asyncio.Future[Ticket | None]]] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    used = await self._run([(ticket, event) for ticket, event, _ in batch])
                except Exception as exc:  # noqa: BLE001 -- each waiting scan answers it
                    _fail(batch, exc)
                    continue
                answered: set[UUID] = set()
                for ticket_id, _, future in batch:
                    ticket = None if ticket_id in answered else used.get(ticket_id)
                    answered.add(ticket_id)
                    if not future.done():
                        future.set_result(ticket)
        finally:
            # Cancelled (the worker stopping) or broken: no scan may wait forever.
            self._draining = False
            stranded, self._waiting = [*batch, *self._waiting], []
            _fail(stranded, None)


def _fail(
    batch: Sequence[tuple[UUID, UUID, asyncio.Future[Ticket | None]]], cause: Exception | None
) -> None:
    """Answer the scans of a batch that could not be decided: a 503 each (its own exception
    object, so that N requests do not pile their tracebacks on one), or, for a bug, the bug."""
    for *_, future in batch:
        if future.done():
            continue
        if cause is None or isinstance(cause, Unavailable):
            error: Exception = Unavailable(
                str(cause) if cause is not None else "the check-in was interrupted; scan again"
            )
            error.__cause__ = cause
        else:
            error = cause
        future.set_exception(error)
