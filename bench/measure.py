"""One scenario against a running server: the load, the CPU split, the server's own engine
figures, then the database checks."""

from __future__ import annotations

from typing import Any

from bench.checks import checkpoint, count_bookings, storm_figures, verify
from bench.cpu import CpuSnapshot, CpuSplit, postgres_roots
from bench.load import Inputs, Scenario, run_wrk, scenario_bounds
from bench.options import Options
from bench.results import Result
from bench.seeding import Database, EventSet
from bench.server import BenchServer


def measure(
    scenario: Scenario,
    server: BenchServer,
    db: Database,
    events: EventSet,
    inputs: Inputs,
    options: Options,
    key: str,
) -> Result:
    """``key`` prefixes the Idempotency-Keys: unique per server start and scenario, since a key
    reused with another request is a 422."""
    targets = events.of(scenario.kind)
    checkpoint(db)
    rows_before = count_bookings(db, targets) if scenario.books else 0
    pg_roots = postgres_roots(db.pgdata)
    sums_before = server.engine_sums()
    before = CpuSnapshot.take(server.roots(), pg_roots)
    summary = run_wrk(scenario, server.base_url, inputs, options, f"{key}-{scenario.name}")
    after = CpuSnapshot.take(server.roots(), pg_roots)
    sums = {k: v - sums_before.get(k, 0.0) for k, v in server.engine_sums().items()}
    rows = count_bookings(db, targets) - rows_before if scenario.books else 0
    result = summarize(scenario, server, summary, options, CpuSplit.between(before, after))
    result.rows_inserted = rows
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
    ok_status = "201" if scenario.books else "200"
    if budget:
        counted = statuses
        elapsed = max(1e-9, float(summary["last_answer"]) - float(summary["first_send"]))
    else:
        counted = {str(k): int(v) for k, v in summary["in_window"].items()}
        elapsed = seconds
    expected = ("201", "409", "503") if scenario.books else ("200", "503")
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
