"""The harness's knobs: ``python -m bench --help`` lists them."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
DOCS = ROOT / "docs" / "benchmarks.md"

Mode = Literal["on", "off"]
Kind = Literal[
    "warmup", "hot", "holds", "expiry", "storm", "spread", "healthz", "read", "list", "refuse",
    "checkin",
]  # fmt: skip
MODES: tuple[Mode, ...] = ("on", "off")
KINDS: tuple[Kind, ...] = (
    "hot", "holds", "expiry", "storm", "spread", "healthz", "read", "list", "refuse", "checkin",
)  # fmt: skip
# The GET scenarios: no booking; healthz is the HTTP ceiling the other two are compared with.
READS: tuple[Kind, ...] = ("healthz", "read", "list")
# The scenarios that book (POST /events/{id}/bookings, book.lua): their 201s are bookings rows.
BOOKS: tuple[Kind, ...] = ("warmup", "hot", "holds", "expiry", "storm", "spread", "refuse")

# GOTICKET_DB_POOL_MAX (per worker process) for each mode. OFF holds a connection for the whole
# transaction, queued behind the hot row's lock, so it gets its own size: with `--tune` on the
# 2-core machine, 1 per worker came out best on the hot event (hot-256: 1,167 bookings/s; 2: 825,
# 4: 714, 8: 713, 16: 585, 32: 496) and level with the others on the spread (1,024 vs
# 1,036-1,191): more connections only lengthen the lock queue inside PostgreSQL. ON keeps the
# application's default (16).
DEFAULT_POOL: dict[Mode, int] = {"on": 16, "off": 1}


@dataclass(frozen=True)
class Options:
    modes: tuple[Mode, ...]
    kinds: tuple[Kind, ...]
    duration: float
    drain: float
    warmup: float
    threads: int
    hot_connections: tuple[int, ...]
    storm_connections: int
    spread_connections: int
    read_connections: int
    storm_capacity: int
    storm_requests: int
    storm_max_seconds: float
    spread_events: int
    expiry_holds: int
    expiry_lead: float
    expiry_wait: float
    checkin_connections: int
    checkin_tickets: int
    users: int
    workers: int
    log_level: str
    pool: dict[Mode, int]
    quick: bool
    tune: bool
    tune_mode: Mode
    tune_pools: tuple[int, ...]
    compare_ref: str | None
    compare_rounds: int
    docs: bool
    keep_db: bool
    data_dir: Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the booking path (reservation engine on and off) and the read "
        "path against GET /healthz, under wrk.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="short smoke run: 3 s per scenario, no docs")
    add("--modes", default="on,off", help="engine modes, in order: on, off or on,off")
    add("--scenarios", default=",".join(KINDS), help="subset of " + ",".join(KINDS))
    add("--reads", action="store_true",
        help="the reads and their ceiling: --scenarios healthz,read,list --modes on")  # fmt: skip
    add("--duration", type=float, help="seconds of load per scenario [10; --quick 3]")
    add("--drain", type=float, default=20.0, help="longest wait for the last answers, seconds")
    add("--warmup", type=float, help="seconds of unreported load after a start [2; --quick 1]")
    add("--threads", type=int, default=2, help="wrk threads")
    add("--hot-connections", default="64,256", help="connections of the hot runs")
    add("--storm-connections", type=int, default=256)
    add("--spread-connections", type=int, default=64)
    add("--read-connections", type=int, default=64, help="connections of healthz, read, list")
    add("--storm-capacity", type=int, help="seats of the sell-out event [5000; --quick 1000]")
    add("--storm-requests", type=int, help="booking requests of the storm [25000; --quick 5000]")
    add("--storm-max-seconds", type=float, default=90.0, help="the storm stops then at the latest")
    add("--spread-events", type=int, default=1000)
    add("--expiry-holds", type=int, default=50_000,
        help="expiry: pending holds seeded on one event, all due in the same second")  # fmt: skip
    add("--expiry-lead", type=float, default=8.0,
        help="expiry: seconds from the seeding to the holds' due instant")  # fmt: skip
    add("--expiry-wait", type=float, default=30.0,
        help="expiry: longest wait after the due instant, seconds")  # fmt: skip
    add("--checkin-connections", type=int, default=64, help="connections of the check-in run")
    add("--checkin-tickets", type=int,
        help="check-in: tickets signed, each scanned once [100000; --quick 20000]")  # fmt: skip
    add("--users", type=int, default=20_000, help="users (one token each)")
    add("--workers", type=int, default=2, help="goticket serve --workers")
    add("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="GOTICKET_LOG_LEVEL (INFO: a JSON line per request, to a file)")  # fmt: skip
    add("--pool-on", type=int, default=_env_int("BENCH_POOL_ON", DEFAULT_POOL["on"]),
        help="GOTICKET_DB_POOL_MAX with the engine on [env BENCH_POOL_ON]")  # fmt: skip
    add("--pool-off", type=int, default=_env_int("BENCH_POOL_OFF", DEFAULT_POOL["off"]),
        help="GOTICKET_DB_POOL_MAX with the engine off [env BENCH_POOL_OFF]")  # fmt: skip
    add("--tune", action="store_true", help="try --tune-pools for --tune-mode, recommend one")
    add("--tune-mode", choices=MODES, default="off")
    add("--tune-pools", default="1,2,4,8,16,32")
    add("--compare-ref", metavar="REF",
        help="also run the engine-ON hot scenarios on git REF (e.g. HEAD~1), checked out in a "
        "temporary worktree, right before this checkout's, and print the ratio")  # fmt: skip
    add("--compare-rounds", type=int, default=1,
        help="with --compare-ref: hot runs of each side, alternating ref and this checkout, "
        "compared on their means (more rounds, less noise)")  # fmt: skip
    add("--docs", action=argparse.BooleanOptionalAction, default=None,
        help="write docs/benchmarks.md [default: yes, except with --quick or --tune]")  # fmt: skip
    add("--keep-db", action="store_true", help="keep the embedded bench database afterwards")
    add("--data-dir", type=Path, default=ROOT / ".goticket" / "bench",
        help="embedded PostgreSQL folder (short path: Unix socket limit)")  # fmt: skip
    return parser


def parse_options(argv: Sequence[str]) -> Options:
    parser = _parser()
    args = parser.parse_args(argv)
    quick: bool = args.quick
    if args.reads:
        args.scenarios, args.modes = ",".join(READS), "on"
    options = Options(
        modes=tuple(_choices(args.modes, MODES, "--modes")),  # type: ignore[arg-type]
        kinds=tuple(_choices(args.scenarios, KINDS, "--scenarios")),  # type: ignore[arg-type]
        duration=args.duration or (3.0 if quick else 10.0),
        drain=args.drain,
        warmup=args.warmup if args.warmup is not None else (1.0 if quick else 2.0),
        threads=args.threads,
        hot_connections=tuple(int(c) for c in args.hot_connections.split(",") if c),
        storm_connections=args.storm_connections,
        spread_connections=args.spread_connections,
        read_connections=args.read_connections,
        storm_capacity=args.storm_capacity or (1_000 if quick else 5_000),
        storm_requests=args.storm_requests or (5_000 if quick else 25_000),
        storm_max_seconds=args.storm_max_seconds,
        spread_events=args.spread_events,
        expiry_holds=args.expiry_holds,
        expiry_lead=args.expiry_lead,
        expiry_wait=args.expiry_wait,
        checkin_connections=args.checkin_connections,
        checkin_tickets=args.checkin_tickets or (20_000 if quick else 100_000),
        users=args.users,
        workers=args.workers,
        log_level=args.log_level,
        pool={"on": args.pool_on, "off": args.pool_off},
        quick=quick,
        tune=args.tune,
        tune_mode=args.tune_mode,
        tune_pools=tuple(int(p) for p in args.tune_pools.split(",") if p),
        compare_ref=args.compare_ref,
        compare_rounds=args.compare_rounds,
        docs=args.docs if args.docs is not None else not (quick or args.tune),
        keep_db=args.keep_db,
        data_dir=args.data_dir,
    )
    connections = [
        *options.hot_connections,
        options.storm_connections,
        options.spread_connections,
        options.read_connections,
        options.checkin_connections,
    ]
    if min(connections) < options.threads:
        parser.error("every connection count must be at least --threads")
    if options.duration <= 0 or options.drain < 0 or options.users < 1:
        parser.error("--duration must be > 0, --drain >= 0, --users >= 1")
    if options.expiry_holds < 1 or options.checkin_tickets < 1:
        parser.error("--expiry-holds and --checkin-tickets must be at least 1")
    if options.expiry_lead < 1 or options.expiry_wait <= 0:
        parser.error("--expiry-lead must be >= 1 s, --expiry-wait > 0")
    if options.compare_rounds < 1:
        parser.error("--compare-rounds must be at least 1")
    if options.compare_ref and ("hot" not in options.kinds or "on" not in options.modes):
        parser.error("--compare-ref compares the engine-ON hot scenarios: keep 'hot' and 'on'")
    return options


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _choices(text: str, allowed: Sequence[str], flag: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [part for part in chosen if part not in allowed]
    if unknown or not chosen:
        raise SystemExit(f"{flag}: choose among {', '.join(allowed)} (got {text!r})")
    return chosen
