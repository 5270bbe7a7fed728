"""The composition root: ``create_app(settings)`` builds every object; the lifespan opens and
closes them in reverse order. Nothing is built at import time."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from uuid import UUID

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig

from goticket import __version__
from goticket.accounts.endpoints import accounts_router
from goticket.accounts.repository import PgAccountsUnitOfWork
from goticket.accounts.security import Argon2Hasher
from goticket.accounts.service import AccountService
from goticket.booking.checkout import CheckoutService
from goticket.booking.direct import DirectReserver
from goticket.booking.domain import BookingTerms
from goticket.booking.endpoints import BookingAnswer, booking_router
from goticket.booking.engine import ReservationEngine
from goticket.booking.ports import Reserver
from goticket.booking.repository import PgBookingUnitOfWork, PgInventoryRepository
from goticket.booking.service import BookingService
from goticket.booking.writer import BatchWriter
from goticket.config import Settings
from goticket.events.domain import Checkout, Event
from goticket.events.endpoints import event_fast_route, events_router
from goticket.events.reads import CHANNEL, EventReads
from goticket.events.repository import PgEventsRepository, PgEventsUnitOfWork
from goticket.events.service import EventService
from goticket.kit.asgi import RequestContext, first_of
from goticket.kit.auth import Principal
from goticket.kit.clock import Clock, SystemClock
from goticket.kit.db import Connection, Database, UnitOfWork
from goticket.kit.health import health_handlers
from goticket.kit.listen import Listener
from goticket.kit.logging import configure_logging, get_logger
from goticket.kit.metrics import EventStock, Metrics, forget_process, metrics_handler
from goticket.kit.migrate import head_revision
from goticket.kit.openapi import SECURITY_COMPONENTS, openapi_handlers
from goticket.kit.pagination import CursorCodec
from goticket.kit.problems import EXCEPTION_HANDLERS, MAX_BODY_BYTES
from goticket.kit.runtime import settle_heap
from goticket.kit.tokens import TokenCodec
from goticket.payments import fake as fake_provider
from goticket.payments import stripe as stripe_module
from goticket.payments.domain import PaymentDue
from goticket.payments.endpoints import payments_router
from goticket.payments.fake import FakeProvider, LoopbackPoster
from goticket.payments.ports import PaymentOutcomes
from goticket.payments.repository import PgPaymentsUnitOfWork
from goticket.payments.service import PaymentService
from goticket.payments.stripe import StripeProvider
from goticket.tickets.endpoints import CheckInAnswer, tickets_router
from goticket.tickets.keyring import KeyRing, resolve_ring
from goticket.tickets.repository import PgTicketsUnitOfWork
from goticket.tickets.service import TicketService, TicketSigning

API_DESCRIPTION = """GoTicket sells tickets and never oversells.

Errors are RFC 9457 problem details (`application/problem+json`); problem `type`s are stable URIs
under `https://goticket.dev/problems/`. Lists are cursor-paginated (`limit` 1..100, `cursor`).
Every response carries `X-Request-ID`.
"""

log = get_logger("goticket.app")
# Each provider's checkout route, from its own module (the fake's and Stripe's methods use them).
CHECKOUT_PATHS = {
    fake_provider.NAME: fake_provider.CHECKOUT_PATH,
    stripe_module.NAME: stripe_module.CHECKOUT_PATH,
}


class CatalogTerms:
    """Booking's view of the catalog, read on the booking transaction's own connection."""

    def __init__(self, connection: Connection) -> None:
        self._events = PgEventsRepository(connection)

    async def terms(self, event_ids: Sequence[UUID]) -> dict[UUID, BookingTerms]:
        return {event.id: terms_of(event) for event in await self._events.get_many(event_ids)}


def terms_of(event: Event) -> BookingTerms:
    return BookingTerms(
        event.id,
        event.organizer_id,
        event.end_at,
        event.price,
        event.currency,
        event.max_per_user,
        event.sales_start_at,
        event.hold_seconds if event.checkout is Checkout.PAYMENT else None,
    )


def token_codec(settings: Settings) -> TokenCodec:
    return TokenCodec(
        settings.resolved_jwt_secret(),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.access_token_ttl,
    )


def account_service(
    settings: Settings, database: Database, tokens: TokenCodec, clock: Clock
) -> AccountService:
    """The accounts context as the API, the CLI (``users create``) and the tests use it."""
    hasher = Argon2Hasher(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )
    return AccountService(partial(PgAccountsUnitOfWork, database), hasher, tokens, clock)


def ticket_keys(settings: Settings) -> str | None:
    """``GOTICKET_TICKET_SIGNING_KEY``, if set (else the data folder's key ring is used)."""
    configured = settings.ticket_signing_key
    return configured.get_secret_value() if configured is not None else None


def signing_from(ring: KeyRing) -> TicketSigning:
    return TicketSigning(ring.current, list(ring.public_keys().values()))


def ticket_signing(settings: Settings, clock: Clock) -> TicketSigning:
    """The keys that sign ticket codes (``tickets.signing.BadKey`` when configured wrong)."""
    return signing_from(resolve_ring(settings.data_dir, ticket_keys(settings), clock.now()))


def ticket_service(
    database: Database,
    signing: TicketSigning,
    bookings: BookingService,
    events: EventService,
    clock: Clock,
    metrics: Metrics,
) -> TicketService:
    """Tickets, check-in and sales, seeing bookings and events through the other contexts'
    services: the booking's visibility rule stays the booking context's."""

    async def see_booking(actor: Principal, booking_id: UUID) -> None:
        await bookings.get(actor, booking_id)  # its 404 for whoever may not see it

    async def organizer(event_id: UUID) -> UUID | None:
        event = await events.find(event_id)
        return event.organizer_id if event is not None else None

    uow = partial(PgTicketsUnitOfWork, database)
    return TicketService(uow, signing, see_booking, organizer, clock, metrics=metrics)


class CheckoutOutcomes:
    """The payments context's ``PaymentOutcomes``: booking's checkout service, adapted."""

    def __init__(self, checkout: CheckoutService) -> None:
        self._checkout = checkout

    async def payment_succeeded(self, payment_id: UUID, amount: int, currency: str) -> None:
        await self._checkout.payment_succeeded(payment_id, amount, currency)

    async def payment_failed(self, payment_id: UUID) -> None:
        await self._checkout.payment_failed(payment_id)

    async def payment(self, payment_id: UUID) -> PaymentDue | None:
        due = await self._checkout.payment(payment_id)
        if due is None:
            return None
        return PaymentDue(payment_id, due.payer, due.amount, due.currency)


def checkout_url(provider: str, payment_id: UUID) -> str | None:
    """Where a hold's payment is made, as its provider's module says (booking's ``CheckoutUrl``);
    None for a provider this service does not know."""
    path = CHECKOUT_PATHS.get(provider)
    return path.format(payment_id=payment_id) if path is not None else None


class PaymentRefunds:
    """Booking's ``Refunds``, given to the payments service once it exists (each needs the
    other: payments applies its outcomes through booking, booking refunds through payments)."""

    service: PaymentService | None = None

    async def refund(self, payment_id: UUID, provider: str, amount: int, currency: str) -> None:
        if self.service is None:
            raise RuntimeError("refunds are not wired to the payments service")
        await self.service.refund(payment_id, provider, amount, currency)


def payment_service(
    settings: Settings,
    database: Database,
    outcomes: PaymentOutcomes,
    clock: Clock,
    metrics: Metrics | None = None,
) -> tuple[PaymentService, LoopbackPoster]:
    """The payments context with the configured provider. The fake one posts its webhooks
    through the poster, whose ``app`` the caller binds once the app exists (unused otherwise:
    the fake checkout is a 404 under another provider)."""
    poster = LoopbackPoster()
    uow = partial(PgPaymentsUnitOfWork, database)
    if settings.payment_provider == "stripe":
        stripe = stripe_provider(settings)
        service = PaymentService(stripe, outcomes, uow, clock, hosted=stripe, metrics=metrics)
        return service, poster
    fake = FakeProvider(settings.resolved_payment_webhook_secret())
    service = PaymentService(fake, outcomes, uow, clock, fake=fake, poster=poster, metrics=metrics)
    return service, poster


def stripe_provider(settings: Settings) -> StripeProvider:
    missing = settings.missing_for_provider()
    key, secret = settings.stripe_api_key, settings.stripe_webhook_secret
    if missing or key is None or secret is None or settings.stripe_success_url is None:
        raise RuntimeError("the Stripe payment provider needs " + ", ".join(missing))
    return StripeProvider(
        key.get_secret_value(),
        secret.get_secret_value(),
        success_url=settings.stripe_success_url,
        cancel_url=settings.stripe_cancel_url,
        api_base=settings.stripe_api_base,
    )


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    outcomes: PaymentOutcomes | None = None,
) -> RequestContext:
    if settings.database_url is None:
        raise RuntimeError("GOTICKET_DATABASE_URL is not set (goticket serve sets it for you)")
    clock = clock or SystemClock()
    secret = settings.resolved_jwt_secret()
    database = Database(
        settings.database_url.get_secret_value(),
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        lock_timeout_ms=settings.lock_timeout_ms,
    )
    tokens = token_codec(settings)
    cursors = CursorCodec(secret)
    accounts = account_service(settings, database, tokens, clock)
    events = EventService(partial(PgEventsUnitOfWork, database, PgInventoryRepository), clock)
    reads = EventReads(
        events,
        cursors,
        max_events=settings.read_cache_events,
        max_pages=settings.read_cache_pages,
        max_age=settings.read_cache_max_age,
    )
    listener = Listener(
        settings.database_url.get_secret_value(),
        CHANNEL,
        reads.changed,
        reads.reset,
        ping_every=settings.read_cache_ping,
    )

    async def booking_terms(event_id: UUID) -> BookingTerms | None:
        event = await events.find(event_id)
        return terms_of(event) if event is not None else None

    metrics = Metrics()
    booking_uow = partial(PgBookingUnitOfWork, database, CatalogTerms)
    writer = BatchWriter(booking_uow, clock, metrics, payment_provider=settings.payment_provider)
    reserver: Reserver = (
        ReservationEngine(
            writer,
            queue_limit=settings.engine_queue_limit,
            max_batch=settings.engine_max_batch,
            deadline=settings.engine_deadline,
            sold_out_ttl=settings.sold_out_ttl,
            metrics=metrics,
        )
        if settings.engine == "on"
        else DirectReserver(writer)
    )

    def held_terms(event_id: UUID) -> BookingTerms | None:
        # The read cache's copy (kept fresh by the catalog's notifications) serves the booking
        # path's early on-sale check: no second cache of events to keep in step.
        view = reads.held(event_id)
        return terms_of(view.event) if view is not None else None

    refunds = PaymentRefunds()
    bookings = BookingService(
        booking_uow,
        booking_terms,
        reserver,
        clock,
        metrics=metrics,
        cached_terms=held_terms,
        refunds=refunds,
    )
    checkout = CheckoutService(booking_uow, reserver, refunds, clock, metrics=metrics)
    booking_answer = BookingAnswer(bookings, tokens, checkout_url)
    payments, loopback = payment_service(
        settings, database, outcomes or CheckoutOutcomes(checkout), clock, metrics
    )
    refunds.service = payments
    signing = ticket_signing(settings, clock)
    tickets = ticket_service(database, signing, bookings, events, clock, metrics)
    check_in = CheckInAnswer(tickets, tokens)

    async def stock(limit: int) -> Sequence[EventStock]:
        async with UnitOfWork(database, readonly=True) as uow:
            rows = await PgInventoryRepository(uow.connection).on_sale(limit)
        return [
            EventStock(str(event_id), available, capacity) for event_id, capacity, available in rows
        ]

    async def sample_every_second() -> None:
        while True:
            pool = database.pool
            metrics.sample(
                pool_size=pool.get_size(), pool_idle=pool.get_idle_size(), queued=reserver.queued()
            )
            await asyncio.sleep(1.0)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await database.open()
        await accounts.prepare()
        background = [
            asyncio.create_task(sample_every_second()),
            asyncio.create_task(checkout.sweep_every(settings.hold_sweep_period)),
            asyncio.create_task(payments.forget_webhooks_every()),
        ]
        if settings.read_cache_max_age > 0:  # at 0 nothing is reused: nothing to keep fresh
            listener.start()
            background.append(asyncio.create_task(reads.refresh_every_period()))
        log.info("worker started", pid=os.getpid(), engine=settings.engine)
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await reserver.close()
            await payments.close()
            await listener.close()
            await database.close()
            forget_process()
            log.info("worker stopped", pid=os.getpid())

    app = Litestar(
        route_handlers=[
            accounts_router(accounts),
            events_router(events, reads, cursors),
            booking_router(bookings, booking_answer, cursors),
            tickets_router(signing, tickets, check_in),
            payments_router(payments),
            *health_handlers(database, head_revision()),
            metrics_handler(
                metrics, settings.resolved_metrics_token(), stock, settings.metrics_events
            ),
            *openapi_handlers(),
        ],
        lifespan=[lifespan],
        exception_handlers=dict(EXCEPTION_HANDLERS),
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="GoTicket API",
            version=__version__,
            description=API_DESCRIPTION,
            components=SECURITY_COMPONENTS,
            use_handler_docstrings=True,  # each handler's docstring is its operation's description
            path="/schema",
            render_plugins=[],
        ),
        state=State({"tokens": tokens}),
        logging_config=None,  # kit.logging configures logging once per process
        debug=False,
    )
    # The routes of a stampede skip the framework (plumbing around their one implementation):
    # the booking, the event page the fans reload, and the scan at the gates.
    fast = first_of(booking_answer.fast_route(), event_fast_route(reads), check_in.fast_route())
    context = RequestContext(app, metrics.request, fast)
    loopback.app = context  # the fake provider's webhooks come in through the front door
    return context


def app_from_env() -> RequestContext:
    """The factory ``goticket serve`` hands to uvicorn: each worker process builds its own app."""
    settings = Settings()
    configure_logging(settings.log_level)
    app = create_app(settings)
    settle_heap()
    return app
