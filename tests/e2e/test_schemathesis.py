"""The outside fuzzer judges the OpenAPI document, as a user would run it: ``schemathesis run
…/openapi.json --checks all`` with an admin's token, against a real ``goticket serve`` on a fresh
database. Every phase runs (examples, coverage, fuzzing, and the stateful phase, which follows
the document's links from a created event to its bookings), with a fixed seed and a bounded number
of examples, so a run is repeatable and takes some 20 s.

One built-in check is replaced by a stricter-named twin: ``positive_data_acceptance`` (every
schema-valid request must succeed) runs as ``positive_data_acceptance_but_documented_rules``
(``fuzz_hooks.py``), which excuses exactly the 422s of rules JSON Schema cannot state, named there
with their reasons and required to be stated in the operation's description. Any other
disagreement between the document and the server fails this test, with the fuzzer's report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed import databases
from tests.e2e.fuzz_hooks import documented_refusal
from tests.e2e.test_process import PASSWORD, Served, environment, login, run_cli

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
ADMIN = "fuzz-admin@example.com"
SEED = 20261207
EXAMPLES = 15  # per operation and phase: about 20 s on this 2-core machine
RUN_TIMEOUT_S = 150


def fuzz_command(base_url: str, token: str) -> list[str]:
    return [
        str(SCHEMATHESIS),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",  # replaced by its twin in fuzz_hooks.py
        "--header",
        f"Authorization: Bearer {token}",
        "--seed",
        str(SEED),
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        "1",
        "--request-timeout",
        "10",
    ]


def test_the_fuzzer_finds_no_disagreement_with_the_document(
    server_url: str, tmp_path: Path
) -> None:
    with databases.fresh_database(server_url, "goticket_fuzz") as url:
        env = environment(database_url=url, data_dir=str(tmp_path / "data"), db_pool_max="4")
        env["GOTICKET_WORKERS"] = "1"
        if "PYTHONPATH" in os.environ:  # the code under test, when it is not the installed one
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        for args in (
            ("migrate",),
            ("users", "create", "--email", ADMIN, "--role", "admin", "--password", PASSWORD),
        ):
            done = run_cli(*args, env=env, cwd=tmp_path)
            assert done.returncode == 0, done.stdout + done.stderr
        with Served(env, tmp_path) as server:
            server.wait_ready()
            token = login(server.http, ADMIN)["Authorization"].removeprefix("Bearer ")
            command = fuzz_command(server.base_url, token)
            fuzzer_env = {
                **os.environ,
                "SCHEMATHESIS_HOOKS": "tests.e2e.fuzz_hooks",
                "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                "NO_COLOR": "1",
            }
            run = subprocess.run(
                command,
                env=fuzzer_env,
                cwd=tmp_path,  # its replay cache (.schemathesis/) lands there
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            shown = " ".join(command).replace(token, "$TOKEN")
            assert run.returncode == 0, f"{shown}\n{run.stdout[-12000:]}\n{run.stderr[-3000:]}"
            # The run did test every phase, the stateful one through the document's links.
            for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
                assert f"✅  {phase}" in run.stdout, run.stdout[-4000:]
            assert server.process.poll() is None, server.log_tail()


def problem(*errors: tuple[str, str]) -> dict[str, object]:
    return {"status": 422, "errors": [{"field": f, "message": m} for f, m in errors]}


def test_the_fuzzer_excuses_only_documented_rules_named_in_the_description() -> None:
    described = "`endAt` must be after `startAt`; `maxPerUser` at most `capacity`"
    after = ("endAt", "must be after startAt")
    assert documented_refusal(described, problem(after))
    assert documented_refusal(
        described, problem(after, ("maxPerUser", "must be between 1 and capacity"))
    )
    # Not excused: another error beside it, a rule the description does not name, no errors.
    assert not documented_refusal(
        described, problem(after, ("price", "Expected `int`, got `float`"))
    )
    assert not documented_refusal("no rule named here", problem(after))
    assert not documented_refusal(described, problem())
    # A bad ticket code: a signature JSON Schema cannot check, excused when `code` is named.
    invalid = {**problem(("code", "the signature does not verify")), "type": "x/invalid-ticket"}
    assert documented_refusal("a `code` that does not verify", invalid)
    assert not documented_refusal("no field named", invalid)
    assert not documented_refusal("a `code`", {**invalid, "type": "x/wrong-event"})
    assert not documented_refusal(described, None)
