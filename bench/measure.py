"""One scenario against a running server: the load, the CPU split, the server's own engine
figures, then the database checks; for the mass expiry, its holds seeded before the load and
watched during it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bench.checkout import (
    ExpiryWatch,
    expiry_outcome,
    expiry_times,
    pending_holds,
    seed_holds,
    used_tickets,
)
from bench.checks import checkpoint, count_bookings, storm_figures, verify
from bench.cpu import CpuSnapshot, CpuSplit, postgres_roots
from bench.load import Inputs, Scenario, run_wrk, scenario_bounds
from bench.options import Options
from bench.results import Result
from bench.seeding import Database, EventSet
from bench.server import BenchServer

EXPIRY_LOAD_BEFORE_S = 1.0


def count_rows(db: Database, scenario: Scenario, events: EventSet) -> int:
    """What each ok answer adds: a booking, or a used ticket for the check-in."""
    if scenario.books:
        return count_bookings(db, events.of(scenario.kind))
    if scenario.kind == "checkin":
        return used_tickets(db, events.checkin)
    return 0


def start_expiry(
    db: Database, events: EventSet, users: Sequence[uuid.UUID], options: Options
) -> tuple[ExpiryWatch, Options, list[str]]:
    """The mass expiry's holds, due ``--expiry-lead`` seconds from now, and their watch; the
    options of its load, which runs from ``EXPIRY_LOAD_BEFORE_S`` before the due instant until
    ``--duration`` seconds past it."""
    started = time.time()
    due = started + options.expiry_lead
    seed_holds(db, events.expiry, users, options.expiry_holds, datetime.fromtimestamp(due, UTC))
    print(f"{options.expiry_holds:,} holds seeded in {time.time() - started:.1f} s, due in "
          f"{due - time.time():.1f} s", flush=True)  # fmt: skip
    notes: list[str] = []
    if (late := time.time() - due) > -0.5:
        notes.append(f"seeding the holds ended {late:+.1f} s from their due instant: raise "
                     "--expiry-lead")  # fmt: skip
    watch = ExpiryWatch(db, events.expiry, due, options.expiry_wait)
    watch.start()
    # The load starts a moment before the due instant, however long the seeding took: its p99
    # is that of the expiry's seconds, not of an idle wait.
    time.sleep(max(0.0, due - EXPIRY_LOAD_BEFORE_S - time.time()))
    load = replace(options, duration=max(0.0, due - time.time()) + options.duration)
    return watch, load, notes


def measure(
    scenario: Scenario,
    server: BenchServer,
    db: Database,
    events: EventSet,
    inputs: Inputs,
    options: Options,
    key: str,
    users: Sequence[uuid.UUID] = (),
) -> Result:
    """``key`` prefixes the Idempotency-Keys: unique per server start and scenario, since a key
    reused with another request is a 422. ``users``: whose holds the mass expiry seeds."""
    checkpoint(db)
    rows_before = count_rows(db, scenario, events)
    held_before = pending_holds(db, events.holds) if scenario.kind == "holds" else 0
    watch: ExpiryWatch | None = None
    notes: list[str] = []
    if scenario.kind == "expiry":
        watch, options, notes = start_expiry(db, events, users, options)
    pg_roots = postgres_roots(db.pgdata)
    sums_before = server.engine_sums()
    before = CpuSnapshot.take(server.roots(), pg_roots)
    summary = run_wrk(scenario, server.base_url, inputs, options, f"{key}-{scenario.name}")
    after = CpuSnapshot.take(server.roots(), pg_roots)
    sums = {k: v - sums_before.get(k, 0.0) for k, v in server.engine_sums().items()}
    rows = count_rows(db, scenario, events) - rows_before
    result = summarize(scenario, server, summary, options, CpuSplit.between(before, after))
    result.rows_inserted = rows
    result.notes += notes
    if watch is not None:
        expiry_figures(result, db, events, watch, options)
    if scenario.kind == "checkin" and result.rejected:
        result.notes.append(
            f"{result.rejected:,} scans were of used tickets (409): the codes ran out, or a "
            "ticket was scanned twice; raise --checkin-tickets for first scans only"
        )
    if scenario.kind == "holds":
        result.holds_pending = pending_holds(db, events.holds) - held_before
        if result.holds_pending < result.rows_inserted:
            result.notes.append(
                f"only {result.holds_pending:,} of the {result.rows_inserted:,} bookings are "
                "pending holds: does the server map the event's checkout to holds?"
            )
    transactions = sums.get("goticket_engine_batch_size_count", 0.0)
    if transactions:
        result.batch_avg = round(sums["goticket_engine_batch_size_sum"] / transactions, 1)
        result.commit_ms = round(
            1000 * sums["goticket_engine_commit_seconds_sum"] / transactions, 2
        )
    verify(result, db)
    if scenario.kind == "storm":
        storm_figures(result, db, events.storm, summary, options)
    return result


def expiry_figures(
    result: Result, db: Database, events: EventSet, watch: ExpiryWatch, options: Options
) -> None:
    """When the holds expired (after the load, the watch may still be waiting for the last
    ones), and what became of them."""
    samples = watch.join()
    times = expiry_times(samples, watch.due, options.expiry_holds)
    result.expiry_holds = options.expiry_holds
    result.expiry_started_after_s = times.started_after_s
    result.expired_after_s = times.expired_after_s
    result.expiry_left = times.left
    statuses, capacity, available = expiry_outcome(db, events.expiry)
    if times.expired_after_s is None:
        result.notes.append(
            f"{times.left:,} of {options.expiry_holds:,} holds still pending "
            f"{options.expiry_wait:g} s after their due instant (--expiry-wait)"
        )
    elif statuses != {"expired": options.expiry_holds} or available != capacity:
        result.notes.append(
            f"after the expiry: bookings {statuses}, available {available:,} of {capacity:,}"
        )


def summarize(
    scenario: Scenario,
    server: BenchServer,
    summary: dict[str, Any],
    options: Options,
    cpu: CpuSplit,
) -> Result:
    """wrk's counts as rates. A timed run counts the answers received within its window; a run
    with a budget (the storm) every answer over the time from its first request to its last."""
    seconds, budget = scenario_bounds(scenario, options)
    statuses: dict[str, int] = {str(k): int(v) for k, v in summary["statuses"].items()}
    ok_status = scenario.ok_status
    if budget:
        counted = statuses
        elapsed = max(1e-9, float(summary["last_answer"]) - float(summary["first_send"]))
    else:
        counted = {str(k): int(v) for k, v in summary["in_window"].items()}
        elapsed = seconds
    # A check-in's 409: a ticket already used (or void), verified all the same.
    refusals = ("409", "503") if scenario.books or scenario.kind == "checkin" else ("503",)
    expected = (ok_status, *refusals)
    socket_errors = {k: int(summary["errors"][k]) for k in ("connect", "read", "write", "timeout")}
    unexpected = sum(n for s, n in statuses.items() if s not in expected)
    lat = summary["latency_us"]
    return Result(
        mode=server.mode,
        scenario=scenario.name,
        kind=scenario.kind,
        connections=scenario.connections,
        threads=min(options.threads, scenario.connections),
        pool_max=server.pool,
        duration_s=round(elapsed, 2),
        sent=int(summary["sent"]),
        answered=int(summary["answered"]),
        statuses=dict(sorted(statuses.items())),
        ok=statuses.get(ok_status, 0),
        rejected=statuses.get("409", 0),
        unavailable=statuses.get("503", 0),
        errors=unexpected
        + socket_errors["connect"]
        + socket_errors["read"]
        + socket_errors["write"],
        socket_errors=socket_errors,
        ok_per_s=round(counted.get(ok_status, 0) / elapsed, 1),
        rejected_per_s=round(counted.get("409", 0) / elapsed, 1),
        requests_per_s=round(sum(counted.values()) / elapsed, 1),
        latency_ms={k: round(int(lat[k]) / 1000, 2) for k in ("p50", "p90", "p95", "p99", "max")}
        | {"mean": round(float(lat["mean"]) / 1000, 2)},
        cpu=cpu,
        rows_inserted=0,
        check="",
    )
