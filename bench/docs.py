"""docs/benchmarks.md, rendered from a run's report (and the last --tune report, if any)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.seeding import HOLD_SECONDS
from bench.table import cells, run_label

_SCENARIOS = [
    "- **hot-64 / hot-256**: every request books one event of capacity 10,000,000 (never "
    "sells out), no per-user limit.",
    '- **holds-64 / holds-256**: the same load as hot on an event with `checkout: "payment"` '
    "(`holdSeconds` {hold_seconds}): every booking is a hold (pending, `expiresAt`), none "
    "expires within the run. Target: >= 90 % of hot's bookings/s at the same connections, "
    "p99 at most 110 % of hot's, in the same server start. Its users are others than hot's "
    "(as many, their tokens as new to the server), and its line also gives its bookings per "
    "CPU second (server + PostgreSQL) against hot's: not judged, it tells a busy machine from "
    "a slower path.",
    "- **expiry**: {expiry_holds:,} pending holds of one spot, written in SQL on a payment event "
    "(its spots taken from the inventory), all due in the same second, {expiry_lead:g} s after "
    "the seeding began; from 1 s before that instant until `--duration` seconds past it, "
    "{expiry_connections} connections book the hot event (their p99 covers that load). The "
    "harness counts the event's pending holds every 0.1 s from the due instant (the server's "
    "sweeper runs in every worker, one at a time, batches of 5,000). Target: every hold "
    "expired within 10 s; the hot event's p99 meanwhile at most 2x "
    "hot-{expiry_connections}'s of the same run.",
    "- **checkin**: {checkin_tickets:,} tickets of one event (confirmed bookings written in SQL, "
    "their tickets issued by the database's trigger), each code signed by the harness with the "
    "key the server is given (`GOTICKET_TICKET_SIGNING_KEY`), scanned once each by "
    "{checkin_connections} connections as the event's organizer: `POST /events/{{id}}/checkins`; "
    "the server checks each Ed25519 signature. 200 is a first scan, 409 a used ticket (a "
    "connection that runs out of codes starts its share again); both are verified answers. "
    "It runs once, with the engine on (it books nothing). Target: >= 2,000 verified scans/s.",
    "- **storm**: one event of {storm_capacity:,} seats, limit 4 per user, "
    "{storm_connections} connections; it sells out early and the rest of the run "
    "measures how fast the service says no (409).",
    "- **spread**: bookings across {spread_events:,} events, a random one per request.",
    "- **healthz**: `GET /healthz`, {read_connections} connections: the HTTP ceiling of the "
    "same run (no database, no auth), which the reads are compared with.",
    "- **read**: `GET /events/{{id}}` across those events, {read_connections} connections.",
    "- **list**: `GET /events?limit=20`, {read_connections} connections.",
    "- The reads are measured after an unreported warm-up of the same reads: a page in demand "
    "is served from a warm per-worker cache. A cold cache (a worker's start, or an event not "
    "read for over a second) costs one query per batch of misses; measured by hand on "
    "2026-12-07, 1,000 cold events raised the p99 of the first 8 s of reads to 36-104 ms "
    "(warm: 13 ms).",
    "- **refuse**: {storm_connections} connections book an event that is already sold "
    "out, without an `Idempotency-Key`: with the engine on, each process refuses from memory "
    "after its first refusal, so this is the cost of the HTTP path itself (auth, body, "
    "problem+json, request log, metrics) — the ceiling of any rejection rate; with it off, "
    "every request is a transaction.",
    "- Each mode gets its own events and its own server start, then a short unreported "
    "warm-up. With `--compare-ref REF` the hot scenarios run once more, engine on, on the "
    "code of git `REF` (a temporary worktree), against the same database (or, when its "
    "schema is older, a copy of it migrated down to its head), right before this "
    "checkout's engine-on run (whose hot scenarios come first); with `--compare-rounds N`, N "
    "times, alternating with extra hot runs of this checkout (`on*`), compared on the means.",
]

_COLUMNS = [
    "- `201/s (200/s)`: successful requests per second of load (bookings; 200s for the GETs):"
    " answers received within the timed window / its length; for the storm, every answer "
    "over the time from its first request to its last answer.",
    "- `409/s`: rejections (sold out, per-user limit; for the check-in, scans of used "
    "tickets). `503`: the service shed load "
    "(busy row, queue bound); the client retries with its key.",
    "- `errors`: socket errors plus answers other than 201/409/503 (200/503 for the GETs).",
    "- Latency: wrk's percentiles over every answer (201, 409 and 503 alike).",
    "- CPU seconds over the run: the `goticket serve` process tree, the PostgreSQL process "
    "tree (postmaster and every backend, including those that exited), and wrk; `idle %` "
    "is the share of the machine's cores left idle; `other` is every other process on the "
    "machine (this harness's checks, the kernel, anything else running meanwhile).",
    "- `check`: after every scenario the harness verifies, with SQL, "
    "`capacity = available + sum(quantity of confirmed bookings)` for **every** event, and "
    "that the rows the bookings table gained equal the 201s wrk counted. A violation stops "
    "the run with exit status 1.",
]

_BOUNDS = [
    "- One machine does everything: wrk, the API workers and PostgreSQL share the same "
    "{cores} cores, so the CPU split above shows what each side costs and an idle "
    "share near 0 % means the run was CPU-bound, not the design's limit. A large `other` "
    "share means something else ran on the machine meanwhile: rerun on a quiet machine.",
    "- Every booking is a durable commit (WAL flush per transaction, or per batch with the "
    "engine): the commit rate of the disk bounds the OFF path on the hot row, which "
    "serialises on one row lock.",
    "- The embedded PostgreSQL is stock (pgserver's initdb defaults) and reached over a "
    "Unix socket; a tuned, dedicated server behaves differently.",
    "- Runs are short (seconds), so the figures are indicative: compare modes within one "
    "run rather than across machines. Even VMs of the same kind differ: the same "
    "booking path gave hot-256 6,792 (ON) / 1,080 (OFF) bookings/s on one 2-core VM "
    "(2026-11-25) and 2,888 / 380 on another (2026-11-26), where both the CPU per "
    "request and the WAL flush took ~2.5x longer; the ON/OFF ratio held.",
]

_HOW_TO_RUN = [
    "## How to run",
    "",
    "```bash",
    "make bench                          # full run (~7 min): both modes, every scenario",
    'make bench BENCH_ARGS="--quick"     # ~2 min smoke run; docs/benchmarks.md untouched',
    'make bench BENCH_ARGS="--reads"     # healthz, read, list only, engine on',
    'make bench BENCH_ARGS="--tune"      # pool sizes 1-32 for the OFF baseline',
    'make bench BENCH_ARGS="--compare-ref HEAD~1 --compare-rounds 3"  # hot runs vs HEAD~1',
    'make bench BENCH_ARGS="--modes off --scenarios hot --duration 20"',
    'make bench BENCH_ARGS="--modes on --scenarios hot,holds,expiry,checkin"  # checkout',
    ".venv/bin/python -m bench --help    # every knob",
    "```",
    "",
    "`make bench` installs `wrk` with apt-get when it is missing and the `bench` extra "
    "(matplotlib). With `GOTICKET_DATABASE_URL` set the harness uses that database as it is "
    "(it adds users and events to it: use a dedicated one); otherwise it creates a fresh "
    "database in an embedded PostgreSQL under `.goticket/bench` and drops it afterwards.",
    "",
]


def _md_table(report: dict[str, Any]) -> list[str]:
    head = [
        "engine", "scenario", "conns", "pool", "requests", "201/s (200/s)", "409/s",
        "p50 ms", "p95 ms", "p99 ms", "errors", "503", "non-2xx",
        "CPU s server", "CPU s postgres", "CPU s wrk", "CPU s other", "idle %",
        "requests/tx", "tx ms", "check",
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in report["runs"]:
        for r in run["results"]:
            c = cells(r)
            other = f"{r['cpu']['other_s']:.1f}"
            row = [run_label(run), *c[1:12], c[18], c[12], c[13], c[14], other, c[15], c[16]]
            lines.append("| " + " | ".join([*row, c[17], r["check"]]) + " |")
    return lines


def _scenario_knobs(options: dict[str, Any]) -> dict[str, Any]:
    """The options the scenario lines name, with the defaults of a report written before the
    checkout scenarios existed."""
    return {
        "expiry_holds": 50_000,
        "expiry_lead": 8.0,
        "checkin_tickets": 100_000,
        "checkin_connections": 64,
        **options,
        "hold_seconds": HOLD_SECONDS,
        "expiry_connections": max(options.get("hot_connections") or [256]),
    }


def render_docs(report: dict[str, Any], findings: list[str], tune_path: Path) -> str:
    """``findings``: the storm lines and the targets' verdicts, one bullet each."""
    m = report["machine"]
    o = report["options"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m bench` (`make bench`); rerun it to refresh this page. Raw "
        "figures: `bench/results/latest.json` (not committed); chart: `docs/benchmarks.png`.",
        "",
        "## Latest run",
        "",
        f"- Command: `{report['command']}`",
        f"- When: {report['generated_at']} (git {report['git']})",
        f"- Machine: {m['cores']} cores ({m['cpu_model'] or 'unknown CPU'}), "
        f"{m['memory_gib']} GiB memory, {m['os']}, Python {m['python']}",
        f"- PostgreSQL {m['postgresql']}, {m['database']}; durability untouched "
        "(`fsync` and `synchronous_commit` on)",
        f"- Load: {m['wrk']}, {o['threads']} threads, {o['duration']:g} s of load per timed "
        f"scenario, {o['storm_requests']:,} requests for the storm; every request sent is "
        f"answered before wrk stops; {o['users']:,} users with a bearer token each, a unique "
        "`Idempotency-Key` per request, quantity 1",
        f"- Server: `goticket serve --workers {o['workers']}`, "
        f"`GOTICKET_LOG_LEVEL={o.get('log_level', 'INFO')}` (the request log goes to a file), "
        f"`GOTICKET_DB_POOL_MAX` per worker: on {o['pool']['on']}, off {o['pool']['off']}",
        "",
        *_md_table(report),
        "",
        "![throughput, latency and CPU split](benchmarks.png)",
        "",
        *[f"- {line}" for line in findings],
        "",
        "## Scenarios",
        "",
        *[line.format(**_scenario_knobs(o)) for line in _SCENARIOS],
        "",
        "## Columns",
        "",
        *_COLUMNS,
        "",
        "## What bounds these numbers",
        "",
        *[line.format(cores=m["cores"]) for line in _BOUNDS],
        "",
        *_tune_section(tune_path),
        *_HOW_TO_RUN,
    ]
    return "\n".join(lines)


def _tune_section(path: Path) -> list[str]:
    if not path.exists():
        return []
    tune = json.loads(path.read_text())
    if not tune.get("ok") or not tune.get("runs"):
        return []
    mode = tune["options"]["tune_mode"]
    lines = [
        f"## Pool size for engine {mode.upper()} (`--tune`, {tune['generated_at']})",
        "",
        f"`GOTICKET_DB_POOL_MAX` per worker, {tune['options']['workers']} workers; "
        "successful requests/s and p99 latency (ms):",
        "",
    ]
    names = list(dict.fromkeys(r["scenario"] for run in tune["runs"] for r in run["results"]))
    lines += ["| pool | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for run in tune["runs"]:
        by_name = {r["scenario"]: r for r in run["results"]}
        values = [
            f"{by_name[n]['ok_per_s']:,.0f} / {by_name[n]['latency_ms']['p99']:.1f}"
            if n in by_name
            else "-"
            for n in names
        ]
        lines.append(f"| {run['pool_max']} | " + " | ".join(values) + " |")
    lines += [
        "",
        f"Best (most bookings/s summed): **{tune.get('recommendation')}**; the harness default "
        f"for engine {mode} is `DEFAULT_POOL` in `bench/options.py`.",
        "",
    ]
    return lines
