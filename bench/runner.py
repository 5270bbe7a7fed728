"""The run: the database and its users, then each mode's server and scenarios, then the
outputs. ``main`` is ``python -m bench``."""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import BenchFailure
from bench.checkout import (
    new_ticket_key,
    probe_checkin,
    seed_tickets,
    ticket_signing,
    write_checkin_targets,
)
from bench.compare import RefCheckout, ref_checkout, ref_database
from bench.load import Inputs, Scenario, run_wrk, scenarios
from bench.machine import git_revision, invocation, machine_info
from bench.measure import measure
from bench.options import READS, Mode, Options, parse_options
from bench.report import write_outputs
from bench.results import ModeRun
from bench.seeding import (
    Database,
    EventSet,
    create_events,
    create_users,
    mint_organizer_token,
    mint_tokens,
    open_database,
    write_targets,
)
from bench.server import BenchServer
from bench.table import header, row, run_label


@dataclass(frozen=True)
class Session:
    """What every server start of the run shares."""

    db: Database
    organizer: uuid.UUID
    users: tuple[uuid.UUID, ...]
    secret: str
    ticket_key: str  # GOTICKET_TICKET_SIGNING_KEY: the check-in's codes are signed with it
    workdir: Path
    options: Options
    run_id: str


def run_mode(
    run: ModeRun, plan: Sequence[Scenario], session: Session, src: Path | None, number: int
) -> None:
    """Start the server for one mode (on ``src``'s code if given), warm it up, run ``plan``;
    the results land in ``run``. ``number`` tells the run's files from the others'."""
    options, db = session.options, session.db
    label = run_label(asdict(run))
    events = create_events(db, session.organizer, label, options, [s.kind for s in plan])
    folder = session.workdir / f"{number}-{re.sub(r'[^A-Za-z0-9._-]', '_', label)}"
    folder.mkdir()
    holds_tokens = session.workdir / "tokens-holds.txt"
    inputs = Inputs(
        session.workdir / "tokens.txt",
        write_targets(events, folder, run.mode),
        session.workdir / "organizer-token.txt",
        holds_tokens if holds_tokens.exists() else None,
    )
    print(f"\n== engine {label.upper()}: goticket serve --workers {options.workers}, "
          f"GOTICKET_DB_POOL_MAX={run.pool_max}", flush=True)  # fmt: skip
    server = BenchServer(
        mode=run.mode,
        pool=run.pool_max,
        options=options,
        db=db,
        secret=session.secret,
        ticket_key=session.ticket_key,
        label=folder.name,
        src=src,
    )
    key = f"{session.run_id}-{folder.name}-p{run.pool_max}"
    try:
        server.start()
        if options.warmup > 0:
            measure(Scenario("warmup", 64), server, db, events, inputs, options, key)
        for scenario in plan:
            if scenario.kind == "checkin":
                inputs.targets["checkin"] = prepare_checkin(server, session, events, folder)
            if scenario.kind in READS and options.warmup > 0:
                # A page in demand is served from a warm cache; its cold start (a query per
                # batch of misses, once per worker and event) is not the steady state measured.
                warm = replace(options, duration=options.warmup)
                run_wrk(scenario, server.base_url, inputs, warm, f"{key}-warm-{scenario.name}")
            result = measure(scenario, server, db, events, inputs, options, key, session.users)
            run.results.append(result)
            print(row(result), flush=True)
    finally:
        server.stop()


def prepare_checkin(server: BenchServer, session: Session, events: EventSet, folder: Path) -> Path:
    """The check-in's tickets and their codes (checkin.lua's input), once the server has shown
    that it checks tickets in."""
    token = (session.workdir / "organizer-token.txt").read_text().strip()
    probe_checkin(server.port, events.checkin, token)
    count = session.options.checkin_tickets
    started = time.monotonic()
    tickets = seed_tickets(session.db, events.checkin, session.users, count)
    path = folder / f"targets-{server.mode}-checkin.txt"
    write_checkin_targets(path, events.checkin, tickets, ticket_signing(session.ticket_key))
    print(f"{count:,} tickets issued and their codes signed in "
          f"{time.monotonic() - started:.1f} s", flush=True)  # fmt: skip
    return path


def jobs(options: Options) -> list[tuple[Mode, int]]:
    if options.tune:
        return [(options.tune_mode, pool) for pool in options.tune_pools]
    return [(mode, options.pool[mode]) for mode in options.modes]


def run_all(
    options: Options, report: dict[str, Any], workdir: Path, ref: RefCheckout | None
) -> None:
    plan = scenarios(options)
    if options.tune:  # the pool matters where connections wait: hot row, many events
        plan = [s for s in plan if s.kind in ("hot", "spread")]
    with open_database(options) as db, contextlib.ExitStack() as stack:
        report["machine"] = machine_info(db)
        print(f"database ready: PostgreSQL {report['machine']['postgresql']}", flush=True)
        organizer, users = create_users(db, options.users)
        secret = secrets.token_urlsafe(48)
        mint_tokens(users, secret, workdir / "tokens.txt")
        mint_organizer_token(organizer, secret, workdir / "organizer-token.txt")
        if any(s.kind == "holds" for s in plan):
            # Each server start meets these tokens first in holds-64, as it meets hot's in
            # hot-64: a token's first verification costs (see jwt_cost), its next ones do not.
            _, holders = create_users(db, options.users, prefix="bench-holds")
            mint_tokens(holders, secret, workdir / "tokens-holds.txt")
        print(f"{len(users):,} users and their tokens ready", flush=True)
        session = Session(
            db,
            organizer,
            tuple(users),
            secret,
            new_ticket_key(),
            workdir,
            options,
            secrets.token_hex(4),
        )
        ref_session = session
        if ref is not None:
            ref_session = replace(session, db=stack.enter_context(ref_database(db, ref.head)))
        print(header(), flush=True)
        runs: list[ModeRun] = report["runs"]
        ref_src = ref.src if ref is not None else None
        for mode, pool in jobs(options):
            for run, scenarios_, src in schedule(mode, pool, plan, options, ref_src):
                runs.append(run)
                run_mode(run, scenarios_, session if src is None else ref_session, src, len(runs))


def schedule(
    mode: Mode, pool: int, plan: list[Scenario], options: Options, ref_src: Path | None
) -> list[tuple[ModeRun, list[Scenario], Path | None]]:
    """The server starts of one mode: with --compare-ref (engine on), the ref's hot runs
    alternating with extra ones of this checkout, ending right before this checkout's run
    (whose hot scenarios come first), so that each side measures on the other's machine state."""
    starts: list[tuple[ModeRun, list[Scenario], Path | None]] = []
    if ref_src is not None and mode == "on":
        hot = [s for s in plan if s.kind == "hot"]
        for round_ in range(options.compare_rounds):
            if round_:
                starts.append((ModeRun(mode, pool, [], compare_only=True), hot, None))
            starts.append((ModeRun(mode, pool, [], ref=options.compare_ref), hot, ref_src))
    return [*starts, (ModeRun(mode, pool, []), mode_plan(plan, mode, options), None)]


def mode_plan(plan: list[Scenario], mode: Mode, options: Options) -> list[Scenario]:
    """The scenarios of one mode's server start. The check-in does not go through the engine:
    it runs once, with the engine on (the service's defaults, pool included) unless the run has
    only the OFF mode, whose pool is sized for OFF's hot row."""
    door: Mode = "on" if "on" in options.modes else "off"
    return [s for s in plan if s.kind != "checkin" or mode == door]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    options = parse_options(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run every finally: stop servers
    report: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": invocation(argv),
        "git": git_revision(),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()},
        "runs": [],
        "ok": False,
    }
    failure: str | None = None
    workdir = Path(tempfile.mkdtemp(prefix="gtbench-"))
    try:
        with contextlib.ExitStack() as stack:
            ref = None
            if options.compare_ref and not options.tune:
                ref = stack.enter_context(ref_checkout(options.compare_ref))
            run_all(options, report, workdir, ref)
        report["ok"] = True
    except BenchFailure as exc:
        failure = str(exc)
        report["failure"] = failure
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        report["runs"] = [asdict(run) for run in report["runs"]]
        write_outputs(report, options)
    if failure is not None:
        print(f"\nBENCHMARK FAILED: {failure}", file=sys.stderr, flush=True)
        return 1
    return 0
