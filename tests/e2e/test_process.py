"""Real ``goticket`` processes: the embedded database, graceful shutdown, several workers, the CLI.

Every test spawns the console script with an explicit environment, talks to it only on
127.0.0.1, bounds every wait, and kills whatever it started (server, workers, embedded
PostgreSQL) on teardown even when an assertion failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from goticket.kit.migrate import head_revision
from testbed import databases
from testbed.processes import GOTICKET, ServerProcess, stop_processes, wait_until

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
GRACE = 10  # GOTICKET_SHUTDOWN_GRACE for every server started here
HTTP_TIMEOUT = httpx.Timeout(20.0, connect=5.0)


# ---------------------------------------------------------------------------- helpers


def accepts_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def environment(**settings: str) -> dict[str, str]:
    """Only what the process needs: nothing from this test run's GOTICKET_* leaks in."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "GOTICKET_ARGON2_TIME_COST": "1",
        "GOTICKET_ARGON2_MEMORY_KIB": "256",
        "GOTICKET_ARGON2_PARALLELISM": "1",
        "GOTICKET_SHUTDOWN_GRACE": str(GRACE),
        "GOTICKET_LOG_LEVEL": "INFO",
    }
    if "XDG_RUNTIME_DIR" in os.environ:  # where pgserver keeps its inter-process lock
        env["XDG_RUNTIME_DIR"] = os.environ["XDG_RUNTIME_DIR"]
    if "PYTHONPATH" in os.environ:  # the server runs the same source tree as this test run
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    env.update({f"GOTICKET_{key.upper()}": value for key, value in settings.items()})
    return env


def run_cli(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GOTICKET, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def create_user(email: str, role: str, *, env: dict[str, str], cwd: Path) -> None:
    """``goticket users create`` with the test password; fails the test if it fails."""
    created = run_cli(
        "users",
        "create",
        "--email",
        email,
        "--password",
        PASSWORD,
        "--role",
        role,
        env=env,
        cwd=cwd,
    )
    assert created.returncode == 0, created.stdout + created.stderr


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    """PostgreSQL servers whose command line names ``pgdata``."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any(str(pgdata) in part for part in cmdline) and "postgres" in " ".join(cmdline):
            found.append(proc)
    return found


def fresh_database(server_url: str) -> contextlib.AbstractContextManager[str]:
    """An empty database (not migrated) on the test PostgreSQL, dropped afterwards."""
    return databases.fresh_database(server_url, "goticket_e2e")


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A short directory: the embedded server's Unix socket path must fit in 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="gtp-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Served(ServerProcess):
    """``goticket serve`` with an HTTP client on it; killed on exit if still running."""

    def __init__(
        self, env: dict[str, str], cwd: Path, *, workers: int = 1, port: int | None = None
    ) -> None:
        super().__init__(env, cwd=cwd, workers=workers, port=port)
        self.http = httpx.Client(base_url=self.base_url, timeout=HTTP_TIMEOUT)

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        self.kill()


def login(http: httpx.Client, email: str) -> dict[str, str]:
    response = http.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['accessToken']}"}


def event_body(capacity: int = 10) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(days=30)
    return {
        "name": "Process Test Live",
        "startAt": start.isoformat(),
        "endAt": (start + timedelta(hours=3)).isoformat(),
        "price": 2500,
        "capacity": capacity,
    }


# ---------------------------------------------------------------------------- a. embedded database


def test_embedded_database_serves_shares_with_the_cli_and_stops_on_sigterm(workdir: Path) -> None:
    data_dir = workdir / "data"
    pgdata = (data_dir / "pg16").resolve()
    env = environment(data_dir=str(data_dir))
    assert len(str(pgdata / ".s.PGSQL.5432").encode()) <= 107
    try:
        with Served(env, workdir) as server:
            server.wait_ready()
            assert "embedded PostgreSQL" in server.log
            assert postgres_processes(pgdata), "no embedded postgres runs for the data folder"

            created = run_cli(
                "users",
                "create",
                "--email",
                "root@example.com",
                "--password",
                PASSWORD,
                "--role",
                "admin",
                env=env,
                cwd=workdir,
            )
            assert created.returncode == 0, created.stdout + created.stderr
            assert "created admin root@example.com" in created.stdout
            # The CLI let go of the embedded server without stopping it under the server.
            assert server.http.get("/readyz").status_code == 200

            headers = login(server.http, "root@example.com")
            me = server.http.get("/auth/me", headers=headers)
            assert me.status_code == 200, me.text
            assert me.json()["role"] == "admin"
            event = server.http.post("/events", json=event_body(), headers=headers)
            assert event.status_code == 201, event.text

            started = time.monotonic()
            assert server.terminate() == 0, server.log
            assert time.monotonic() - started < GRACE + 10
            assert "embedded postgres released" in server.log
        wait_until(lambda: not postgres_processes(pgdata), 10, "the embedded postgres to stop")
    finally:
        stop_processes(postgres_processes(pgdata))


def test_embedded_database_is_stopped_after_a_crashed_server_is_restarted(workdir: Path) -> None:
    """A server killed with SIGKILL leaves its postgres (and its handle) behind; the next server
    adopts that postgres and must still stop it when it shuts down."""
    data_dir = workdir / "data"
    pgdata = (data_dir / "pg16").resolve()
    env = environment(data_dir=str(data_dir))
    try:
        with Served(env, workdir) as crashed:
            crashed.wait_ready()
            crashed.process.kill()
            crashed.wait(10)
        assert postgres_processes(pgdata), "SIGKILL cannot stop the embedded postgres"

        with Served(env, workdir) as server:
            server.wait_ready()
            assert server.terminate() == 0, server.log
        wait_until(lambda: not postgres_processes(pgdata), 10, "the embedded postgres to stop")
    finally:
        stop_processes(postgres_processes(pgdata))


# ---------------------------------------------------------------------------- b. in-flight request


def test_request_in_flight_at_sigterm_is_answered(server_url: str, workdir: Path) -> None:
    with fresh_database(server_url) as url:
        env = environment(
            database_url=url,
            data_dir=str(workdir / "data"),
            jwt_secret="process-test-" + "s" * 40,
            lock_timeout_ms="20000",
        )
        create_user("org@example.com", "organizer", env=env, cwd=workdir)

        with Served(env, workdir) as server, ThreadPoolExecutor(max_workers=1) as pool:
            server.wait_ready()
            event = server.http.post(
                "/events", json=event_body(10), headers=login(server.http, "org@example.com")
            )
            assert event.status_code == 201, event.text
            event_id = event.json()["id"]
            registered = server.http.post(
                "/auth/register", json={"email": "fan@example.com", "password": PASSWORD}
            )
            assert registered.status_code == 201, registered.text
            fan = login(server.http, "fan@example.com")

            with psycopg.connect(url, connect_timeout=10) as blocker:
                # Hold the hot row: the booking transaction waits behind this lock.
                blocker.execute(
                    "SELECT available FROM event_inventory WHERE event_id = %s FOR UPDATE",
                    (event_id,),
                )
                booking: Future[httpx.Response] = pool.submit(
                    server.http.post,
                    f"/events/{event_id}/bookings",
                    json={"quantity": 2},
                    headers=fan,
                )

                def waiting_on_lock() -> bool:
                    with psycopg.connect(url, autocommit=True, connect_timeout=10) as probe:
                        row = probe.execute(
                            "SELECT count(*) FROM pg_stat_activity"
                            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                        ).fetchone()
                    return row is not None and row[0] >= 1

                wait_until(waiting_on_lock, 15, "the booking to wait on the inventory lock")
                assert not booking.done()

                server.process.send_signal(signal.SIGTERM)
                # The listener closes at once; the request in flight is still being served.
                wait_until(lambda: not accepts_connections(server.port), 5, "the listener to close")
                time.sleep(1.0)
                assert server.process.poll() is None, "exited with a request in flight"
                assert not booking.done()
                blocker.rollback()  # release the lock

                response = booking.result(timeout=20)
            assert response.status_code == 201, response.text
            assert response.json()["quantity"] == 2
            assert server.wait() == 0, server.log

        with psycopg.connect(url, connect_timeout=10) as check:
            available = check.execute(
                "SELECT available FROM event_inventory WHERE event_id = %s", (event_id,)
            ).fetchone()
            booked = check.execute(
                "SELECT count(*) FROM bookings WHERE id = %s AND status = 'confirmed'",
                (response.json()["id"],),
            ).fetchone()
        assert available == (8,)
        assert booked == (1,)


# ---------------------------------------------------------------------------- c. several workers


def test_two_workers_serve_and_stop_on_sigterm(server_url: str, workdir: Path) -> None:
    with fresh_database(server_url) as url:
        env = environment(
            database_url=url,
            data_dir=str(workdir / "data"),
            jwt_secret="process-test-" + "w" * 40,
            db_pool_min="1",
            db_pool_max="4",
        )
        with Served(env, workdir, workers=2) as server:
            started = server.wait_for_workers(2)
            workers = [p for p in server.children() if p.pid in started]
            assert len(workers) == 2, "the workers are processes of the server"
            assert server.process.pid not in started

            # Fresh connections each time, so the kernel spreads them over both workers.
            def fetch(i: int) -> int:
                with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT) as http:
                    path = ("/healthz", "/readyz", "/events", "/openapi.json")[i % 4]
                    return http.get(path).status_code

            with ThreadPoolExecutor(max_workers=8) as pool:
                statuses = list(pool.map(fetch, range(40)))
            assert statuses == [200] * 40

            registered = server.http.post(
                "/auth/register", json={"email": "w@example.com", "password": PASSWORD}
            )
            assert registered.status_code == 201, registered.text
            me = server.http.get("/auth/me", headers=login(server.http, "w@example.com"))
            assert me.status_code == 200, me.text

            assert server.terminate() == 0, server.log
            _, alive = psutil.wait_procs(workers, timeout=10)
            assert not alive, f"workers still running: {alive}"


# ---------------------------------------------------------------------------- d. the command line


@pytest.mark.parametrize(
    "args",
    [["--help"], ["serve", "--help"], ["migrate", "--help"], ["users", "create", "--help"]],
    ids=["goticket", "serve", "migrate", "users-create"],
)
def test_help(args: list[str], workdir: Path) -> None:
    result = run_cli(*args, env=environment(data_dir=str(workdir / "data")), cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Usage" in result.stdout
    assert not (workdir / "data").exists(), "--help must not touch the data folder"


# ---------------------------------------------------------------------------- e. concurrent migrate


def test_concurrent_migrations_both_succeed(server_url: str, workdir: Path) -> None:
    with fresh_database(server_url) as url:
        env = environment(database_url=url, data_dir=str(workdir / "data"))
        barrier = threading.Barrier(2)

        def migrate(_: int) -> subprocess.CompletedProcess[str]:
            barrier.wait(timeout=10)
            return run_cli("migrate", env=env, cwd=workdir, timeout=60)

        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(migrate, range(2)))
        for result in results:
            assert result.returncode == 0, result.stdout + result.stderr
            assert "database schema is current" in result.stdout

        with psycopg.connect(url, connect_timeout=10) as check:
            versions = check.execute("SELECT version_num FROM alembic_version").fetchall()
            tables = check.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
                " AND table_name IN ('users', 'events', 'event_inventory', 'bookings')"
            ).fetchone()
        assert versions == [(head_revision(),)]
        assert tables == (4,)


# ---------------------------------------------------------------------------- f. metrics, workers


METRICS_TOKEN = "process-metrics-" + "t" * 32
HTTP_REQUESTS = "goticket_http_requests_total"
HEALTHZ_200 = {"route": "/healthz", "method": "GET", "status": "200"}


def counted_by_worker(folder: Path, sample: str, labels: dict[str, str]) -> dict[int, float]:
    """Each worker's own count of one counter series, read from its counter_<pid>.db file."""
    counts: dict[int, float] = {}
    for path in folder.glob("counter_*.db"):
        pid = int(path.stem.removeprefix("counter_"))
        entries = MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
        for key, value, _, _ in entries:
            _, name, found, _ = json.loads(key)
            if name == sample and found == labels:
                counts[pid] = counts.get(pid, 0.0) + value
    return counts


def counter_pids(folder: Path) -> set[int]:
    return {int(path.stem.removeprefix("counter_")) for path in folder.glob("counter_*.db")}


def scrape_healthz_200(base_url: str) -> float | None:
    """GET /metrics on a fresh connection (any worker may answer): the /healthz 200 count."""
    with httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT) as http:
        response = http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    found: float | None = None
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == HTTP_REQUESTS and sample.labels == HEALTHZ_200:
                assert found is None, "the series is listed twice"
                found = sample.value
    return found


def get_healthz(base_url: str) -> int:
    with httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT) as http:
        return http.get("/healthz").status_code


def test_two_workers_expose_one_metrics_view_and_a_restart_starts_it_empty(
    server_url: str, workdir: Path
) -> None:
    with fresh_database(server_url) as url:
        data_dir = workdir / "data"
        env = environment(
            database_url=url,
            data_dir=str(data_dir),
            jwt_secret="process-test-" + "m" * 40,
            metrics_token=METRICS_TOKEN,
            db_pool_min="1",
            db_pool_max="4",
        )
        with Served(env, workdir, workers=2) as server:
            workers = server.wait_for_workers(2)
            folder = (data_dir / f"metrics-{server.port}").resolve()
            assert folder.is_dir(), list(data_dir.iterdir())
            # Each worker built its app in multiprocess mode: it has its own counter file.
            assert counter_pids(folder) == workers

            # Fresh connections, in rounds of 20, until both workers answered some.
            sent = 0
            with ThreadPoolExecutor(max_workers=8) as pool:
                for _ in range(10):
                    statuses = list(pool.map(get_healthz, [server.base_url] * 20))
                    assert statuses == [200] * 20
                    sent += 20
                    by_worker = counted_by_worker(folder, HTTP_REQUESTS, HEALTHZ_200)
                    if sent >= 60 and len(by_worker) == 2:
                        break
            wait_until(
                lambda: sum(counted_by_worker(folder, HTTP_REQUESTS, HEALTHZ_200).values()) == sent,
                5,
                f"the workers to count {sent} requests",
            )
            by_worker = counted_by_worker(folder, HTTP_REQUESTS, HEALTHZ_200)
            assert set(by_worker) == workers, by_worker  # both workers answered, and wrote
            assert all(count > 0 for count in by_worker.values()), by_worker

            # Whichever worker answers a scrape, it reports the sum of all of them.
            assert [scrape_healthz_200(server.base_url) for _ in range(6)] == [sent] * 6
            scraped = {**HEALTHZ_200, "route": "/metrics"}
            wait_until(
                lambda: sum(counted_by_worker(folder, HTTP_REQUESTS, scraped).values()) == 6,
                5,
                "the six scrapes to be counted",
            )

            processes = [p for p in server.children() if p.pid in workers]
            assert server.terminate() == 0, server.log
            _, alive = psutil.wait_procs(processes, timeout=10)
            assert not alive, f"workers still running: {alive}"
            # The stopped workers' counters stay behind: the next start must not add them in.
            assert counter_pids(folder) == workers
            port = server.port

        with Served(env, workdir, workers=2, port=port) as restarted:
            new_workers = restarted.wait_for_workers(2)
            assert not new_workers & workers
            assert counter_pids(folder) == new_workers  # the old files were wiped
            assert scrape_healthz_200(restarted.base_url) is None
            assert get_healthz(restarted.base_url) == 200
            wait_until(
                lambda: scrape_healthz_200(restarted.base_url) == 1, 5, "one /healthz counted"
            )
            assert restarted.terminate() == 0, restarted.log


# ---------------------------------------------------------------- f. what the process writes

LAYOUT = ("timestamp", "level", "logger", "event")


def test_every_line_serve_writes_on_start_and_stop_is_json_in_one_layout(
    server_url: str, workdir: Path
) -> None:
    with fresh_database(server_url) as url:
        env = environment(
            database_url=url,
            data_dir=str(workdir / "data"),
            jwt_secret="process-test-" + "j" * 40,
            log_level="debug",  # any case; debug also lets asyncio and uvicorn speak
        )
        with Served(env, workdir, workers=2) as server:
            server.wait_for_workers(2)
            assert server.http.get("/healthz").status_code == 200
            assert server.http.get("/no-such-page").status_code == 404
            assert server.terminate() == 0, server.log
            output = server.log

    loggers = set()
    lines = output.splitlines()
    assert len(lines) > 10, output
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
        assert tuple(record)[: len(LAYOUT)] == LAYOUT, line
        assert record["level"] in ("debug", "info", "warning", "error", "critical"), line
        assert record["timestamp"].endswith("Z"), line
        assert isinstance(record["event"], str), line
        loggers.add(record["logger"])
    # Our own loggers and the libraries' standard-library ones, parent and workers alike.
    assert {"goticket.cli", "goticket.app", "goticket.http", "uvicorn.error"} <= loggers, loggers
    assert any(name.startswith("alembic") for name in loggers), loggers


@pytest.mark.parametrize("variable", ["log_level", "port"])
def test_a_bad_setting_is_one_line_on_stderr_not_a_traceback(variable: str, workdir: Path) -> None:
    env = environment(data_dir=str(workdir / "data"), **{variable: "loud"})
    result = run_cli("serve", env=env, cwd=workdir, timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: invalid configuration: GOTICKET_{variable.upper()}:")
    assert "Traceback" not in result.stderr
    assert not (workdir / "data").exists(), "nothing is started on a bad setting"
