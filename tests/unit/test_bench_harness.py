"""The bench harness's own logic (no load, no database): its plan and how it judges targets."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bench.checkout import checkin_lines, expiry_times, new_ticket_key, ticket_signing
from bench.load import Inputs, Scenario, scenarios, wrk_command
from bench.options import parse_options
from bench.runner import mode_plan
from bench.targets import (
    checkout_lines,
    checkout_verdicts,
    read_lines,
    read_ratios,
    ref_comparisons,
)
from goticket.app import ticket_signing as server_signing
from goticket.config import Settings
from goticket.kit.clock import SystemClock


def _result(
    kind: str,
    per_s: float,
    p99: float,
    scenario: str | None = None,
    connections: int = 64,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "scenario": scenario or kind,
        "connections": connections,
        "ok_per_s": per_s,
        "ok": int(per_s * 10),
        "rejected_per_s": 0.0,
        "latency_ms": {"p99": p99},
        **extra,
    }


def test_reads_shortcut_plans_healthz_read_and_list_at_64_connections_engine_on() -> None:
    options = parse_options(["--reads", "--quick"])
    assert options.modes == ("on",)
    assert scenarios(options) == [
        Scenario("healthz", 64),
        Scenario("read", 64),
        Scenario("list", 64),
    ]
    assert not any(s.books for s in scenarios(options))


def test_default_plan_keeps_every_scenario_in_order() -> None:
    names = [s.name for s in scenarios(parse_options([]))]
    assert names == [
        "hot-64", "hot-256", "holds-64", "holds-256", "expiry", "storm", "spread",
        "healthz", "read", "list", "refuse", "checkin",
    ]  # fmt: skip


def test_checkout_scenarios_take_their_connections_and_only_holds_and_expiry_book() -> None:
    options = parse_options(["--scenarios", "checkin,expiry,holds", "--hot-connections", "32,128"])
    plan = scenarios(options)
    assert plan == [
        Scenario("holds", 32),
        Scenario("holds", 128),
        Scenario("expiry", 128),  # under the heaviest hot load, its p99's baseline
        Scenario("checkin", 64),
    ]
    assert [s.books for s in plan] == [True, True, True, False]
    assert [s.ok_status for s in plan] == ["201", "201", "201", "200"]
    quick = parse_options(["--quick"])
    assert (quick.checkin_tickets, parse_options([]).checkin_tickets) == (20_000, 100_000)


def test_checkin_runs_once_with_the_engine_on_unless_the_run_is_off_only() -> None:
    options = parse_options(["--scenarios", "hot,checkin", "--hot-connections", "64"])
    plan = scenarios(options)
    assert [s.name for s in mode_plan(plan, "on", options)] == ["hot-64", "checkin"]
    assert [s.name for s in mode_plan(plan, "off", options)] == ["hot-64"]
    off_only = parse_options(["--scenarios", "checkin", "--modes", "off"])
    assert mode_plan(scenarios(off_only), "off", off_only) == [Scenario("checkin", 64)]


def test_holds_book_with_their_own_users_tokens_when_there_are_some(tmp_path: Path) -> None:
    tokens, holders = tmp_path / "tokens.txt", tmp_path / "tokens-holds.txt"
    inputs = Inputs(tokens, {}, None, holders)
    assert [inputs.tokens_of(k) for k in ("hot", "holds", "expiry")] == [tokens, holders, tokens]
    assert Inputs(tokens, {}).tokens_of("holds") == tokens


def test_checkin_runs_its_own_script_with_the_organizers_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bench.load.shutil.which", lambda _: "/usr/bin/wrk")
    options = parse_options(["--scenarios", "checkin"])
    codes, token = tmp_path / "codes.txt", tmp_path / "organizer.txt"
    inputs = Inputs(tmp_path / "tokens.txt", {"checkin": codes}, token)
    command, _, threads = wrk_command(Scenario("checkin", 64), "http://x", inputs, options, "k")
    assert command[command.index("-s") + 1].endswith("checkin.lua")
    assert command[command.index("--") + 1 :] == [str(codes), str(token), "10.0", "0", "2"]
    assert threads == 2


def test_the_benchs_codes_verify_with_the_server_given_the_same_variable(tmp_path: Path) -> None:
    key = new_ticket_key()
    event, ticket = uuid.uuid4(), uuid.uuid4()
    code = ticket_signing(key).issue(ticket, event)
    settings = Settings(ticket_signing_key=SecretStr(key), data_dir=tmp_path)
    claims = server_signing(settings, SystemClock()).verify(code)
    assert (claims.ticket_id, claims.event_id) == (ticket, event)
    assert checkin_lines(f"/events/{event}/checkins", [code]) == [
        f"/events/{event}/checkins",
        code,
    ]
    assert not list(tmp_path.iterdir())  # the variable, not a key file of the data folder


def test_expiry_times_from_the_watch_samples() -> None:
    due = 1_000.0
    samples = [(1_000.05, 50_000), (1_000.9, 50_000), (1_001.2, 45_000), (1_004.25, 0)]
    times = expiry_times(samples, due, 50_000)
    assert (times.started_after_s, times.expired_after_s, times.left) == (1.2, 4.25, 0)
    stuck = expiry_times([(1_000.1, 50_000), (1_030.2, 5_000)], due, 50_000)
    assert (stuck.started_after_s, stuck.expired_after_s, stuck.left) == (30.2, None, 5_000)
    assert expiry_times([], due, 10).left == 10


def test_holds_are_judged_against_hot_at_the_same_connections_in_the_same_run() -> None:
    results = [
        _result("hot", 1_000, 50, "hot-64", 64),
        _result("hot", 2_000, 100, "hot-256", 256),
        _result("holds", 950, 54, "holds-64", 64),
        _result("holds", 1_700, 120, "holds-256", 256),
    ]
    by_name = {v["scenario"]: v for v in checkout_verdicts([{"mode": "on", "results": results}])}
    assert (by_name["holds-64"]["ratio"], by_name["holds-64"]["met"]) == (0.95, True)
    assert by_name["holds-64"]["p99_met"]  # 108 % of hot's
    assert (by_name["holds-256"]["ratio"], by_name["holds-256"]["met"]) == (0.85, False)
    assert not by_name["holds-256"]["p99_met"]  # 120 %
    lines = checkout_lines(list(by_name.values()))
    assert lines[0].startswith("engine on: holds-64 950/s = 95.0 % of hot-64 1,000/s")
    assert "(target >= 90 %: NOT MET)" in lines[1]
    hot, holds = dict(results[1]), dict(results[3])
    hot["cpu"] = {"wall_s": 10.0, "server_s": 8.0, "postgres_s": 2.0}  # 2,000 per CPU s
    holds["cpu"] = {"wall_s": 10.0, "server_s": 7.0, "postgres_s": 1.5}  # 2,000 per CPU s
    (per_cpu,) = checkout_verdicts([{"mode": "on", "results": [hot, holds]}])
    assert per_cpu["cpu_ratio"] == 1.0
    assert "; per CPU second (server + PostgreSQL) 100 % of hot's" in checkout_lines([per_cpu])[0]
    instant = _result("holds", 1_000, 50, "holds-64", 64, holds_pending=0)
    (not_held,) = checkout_verdicts([{"mode": "on", "results": [results[0], instant]}])
    assert (not_held["ratio"], not_held["met"], not_held["p99_met"]) == (1.0, False, False)
    assert checkout_lines([not_held])[0].endswith("(NOT HOLDS: bookings were confirmed at once)")
    alone = checkout_verdicts([{"mode": "on", "results": [_result("holds", 9, 9, "holds-64")]}])
    assert alone[0]["hot"] is None
    assert checkout_lines(alone) == ["engine on: holds-64 9/s (no hot run to judge)"]


def test_the_mass_expiry_is_judged_on_its_time_and_on_hot_p99_of_the_same_run() -> None:
    def run(seconds: float | None, p99: float) -> list[dict[str, Any]]:
        expiry = _result(
            "expiry", 1_800, p99, "expiry", 256, expiry_holds=50_000, expired_after_s=seconds,
            expiry_left=0 if seconds is not None else 1_234, expiry_started_after_s=0.9,
        )  # fmt: skip
        return [{"mode": "on", "results": [_result("hot", 2_000, 100, "hot-256", 256), expiry]}]

    (good,) = checkout_verdicts(run(3.4, 190))
    assert (good["met"], good["p99_ratio"], good["p99_met"]) == (True, 1.9, True)
    (slow,) = checkout_verdicts(run(None, 250))
    assert (slow["met"], slow["p99_met"]) == (False, False)
    (text,) = checkout_lines([slow])
    assert "1,234 still pending (the first expired after 0.9 s) (target <= 10 s: NOT MET)" in text
    assert "= 2.50x hot-256's 100.0 ms (target <= 2x: NOT MET)" in text
    (late,) = checkout_verdicts(run(10.5, 100))
    assert not late["met"]


def test_checkin_counts_first_scans_and_used_tickets_as_verified_scans() -> None:
    scans = _result("checkin", 1_500, 30, "checkin", 64)
    scans["rejected_per_s"] = 600.0
    (verdict,) = checkout_verdicts([{"mode": "on", "results": [scans]}])
    assert (verdict["per_s"], verdict["met"]) == (2_100, True)
    scans["rejected_per_s"] = 0.0
    (short,) = checkout_verdicts([{"mode": "on", "results": [scans]}])
    assert not short["met"]
    assert "1,500 verified scans/s at 64 connections" in checkout_lines([short])[0]


def test_compare_ref_needs_the_hot_scenarios() -> None:
    with pytest.raises(SystemExit):
        parse_options(["--compare-ref", "HEAD~1", "--scenarios", "read"])


def test_reads_are_judged_as_a_share_of_healthz_in_the_same_run() -> None:
    runs = [
        {
            "mode": "on",
            "results": [
                _result("healthz", 10_000, 10),
                _result("read", 7_500, 15),
                _result("list", 4_000, 30),
            ],
        },
        {"mode": "off", "results": [_result("read", 9_000, 5)]},  # no ceiling: not judged
    ]
    ratios = {r["scenario"]: r for r in read_ratios(runs)}
    assert set(ratios) == {"read", "list"}
    assert (ratios["read"]["ratio"], ratios["read"]["met"], ratios["read"]["p99_met"]) == (
        0.75,
        True,
        True,
    )
    assert (ratios["list"]["ratio"], ratios["list"]["met"], ratios["list"]["p99_met"]) == (
        0.4,
        False,
        None,
    )
    lines = read_lines(read_ratios(runs))
    assert lines[0].startswith("engine on: read 7,500/s = 75.0 % of healthz 10,000/s")
    assert "target >= 50 %: NOT MET" in lines[1]


def test_a_ref_run_is_compared_with_this_checkouts_run_of_its_mode() -> None:
    hot = "hot-256"
    runs: list[dict[str, Any]] = [
        {"mode": "on", "ref": None, "results": [_result("hot", 980, 104, hot)]},
        {"mode": "on", "ref": "HEAD~1", "results": [_result("hot", 1_000, 100, hot)]},
    ]
    (comparison,) = ref_comparisons(runs)
    assert (comparison["rate_ratio"], comparison["p99_ratio"], comparison["met"]) == (
        0.98,
        1.04,
        True,
    )
    runs[0]["results"] = [_result("hot", 940, 100, hot)]
    assert not ref_comparisons(runs)[0]["met"]


def test_compare_rounds_are_judged_on_the_means_of_each_side() -> None:
    hot = "hot-256"
    runs: list[dict[str, Any]] = [
        {"mode": "on", "ref": "HEAD~1", "results": [_result("hot", 1_000, 100, hot)]},
        {"mode": "on", "compare_only": True, "results": [_result("hot", 900, 110, hot)]},
        {"mode": "on", "ref": "HEAD~1", "results": [_result("hot", 1_100, 100, hot)]},
        {"mode": "on", "results": [_result("hot", 1_200, 90, hot), _result("read", 5, 1)]},
        {"mode": "off", "results": [_result("hot", 10, 900, hot)]},
    ]
    (comparison,) = ref_comparisons(runs)
    assert comparison["rounds"] == 2
    assert (comparison["per_s"], comparison["ref_per_s"]) == (1_050, 1_050)
    assert (comparison["p99_ms"], comparison["ref_p99_ms"]) == (100, 100)
    assert comparison["met"]
