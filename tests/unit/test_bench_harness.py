"""The bench harness's own logic (no load, no database): its plan and how it judges targets."""

from __future__ import annotations

from typing import Any

import pytest

from bench.load import Scenario, scenarios
from bench.options import parse_options
from bench.targets import read_lines, read_ratios, ref_comparisons


def _result(kind: str, per_s: float, p99: float, scenario: str | None = None) -> dict[str, Any]:
    return {
        "kind": kind,
        "scenario": scenario or kind,
        "ok_per_s": per_s,
        "latency_ms": {"p99": p99},
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
    assert names == ["hot-64", "hot-256", "storm", "spread", "healthz", "read", "list", "refuse"]


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
