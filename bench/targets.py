"""The issue's targets, judged within one run: the reads as a share of GET /healthz's rate, and
the hot bookings of this checkout against another git ref's (--compare-ref)."""

from __future__ import annotations

from typing import Any

# Share of GET /healthz's rate each read must reach; and the p99 of GET /events/{id}.
READ_TARGETS: dict[str, float] = {"read": 0.70, "list": 0.50}
READ_P99_TARGET_MS = 20.0
# This checkout against --compare-ref: bookings/s and p99 within 5 %.
REF_TOLERANCE = 0.05


def _met(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def read_ratios(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each run with a healthz scenario: every read's rate as a share of it."""
    ratios = []
    for run in runs:
        by_kind = {r["kind"]: r for r in run["results"]}
        ceiling = by_kind.get("healthz")
        if ceiling is None or not ceiling["ok_per_s"]:
            continue
        for kind, target in READ_TARGETS.items():
            if (read := by_kind.get(kind)) is None:
                continue
            ratio = read["ok_per_s"] / ceiling["ok_per_s"]
            p99_target = READ_P99_TARGET_MS if kind == "read" else None
            p99 = read["latency_ms"]["p99"]
            ratios.append(
                {
                    "mode": run["mode"],
                    "ref": run.get("ref"),
                    "scenario": kind,
                    "per_s": read["ok_per_s"],
                    "healthz_per_s": ceiling["ok_per_s"],
                    "ratio": round(ratio, 3),
                    "target": target,
                    "met": ratio >= target,
                    "p99_ms": p99,
                    "p99_target_ms": p99_target,
                    "p99_met": None if p99_target is None else p99 <= p99_target,
                }
            )
    return ratios


def read_lines(ratios: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in ratios:
        text = (
            f"engine {r['mode']}: {r['scenario']} {r['per_s']:,.0f}/s = {100 * r['ratio']:.1f} % "
            f"of healthz {r['healthz_per_s']:,.0f}/s (target >= {100 * r['target']:.0f} %: "
            f"{_met(r['met'])})"
        )
        if r["p99_target_ms"] is not None:
            text += (
                f"; p99 {r['p99_ms']:.1f} ms (target <= {r['p99_target_ms']:g} ms: "
                f"{_met(r['p99_met'])})"
            )
        lines.append(text)
    return lines


def ref_comparisons(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each scenario a --compare-ref run measured, against this checkout's run of its mode."""
    comparisons = []
    current = {run["mode"]: run for run in runs if run.get("ref") is None}
    for run in runs:
        if run.get("ref") is None or run["mode"] not in current:
            continue
        ours = {r["scenario"]: r for r in current[run["mode"]]["results"]}
        for theirs in run["results"]:
            mine = ours.get(theirs["scenario"])
            if mine is None or not theirs["ok_per_s"] or not theirs["latency_ms"]["p99"]:
                continue
            rate = mine["ok_per_s"] / theirs["ok_per_s"]
            p99 = mine["latency_ms"]["p99"] / theirs["latency_ms"]["p99"]
            comparisons.append(
                {
                    "mode": run["mode"],
                    "ref": run["ref"],
                    "scenario": theirs["scenario"],
                    "per_s": mine["ok_per_s"],
                    "ref_per_s": theirs["ok_per_s"],
                    "rate_ratio": round(rate, 3),
                    "p99_ms": mine["latency_ms"]["p99"],
                    "ref_p99_ms": theirs["latency_ms"]["p99"],
                    "p99_ratio": round(p99, 3),
                    "met": rate >= 1 - REF_TOLERANCE and p99 <= 1 + REF_TOLERANCE,
                }
            )
    return comparisons


def ref_lines(comparisons: list[dict[str, Any]]) -> list[str]:
    return [
        f"engine {c['mode']}: {c['scenario']} {c['per_s']:,.0f}/s vs {c['ref_per_s']:,.0f}/s at "
        f"{c['ref']} ({100 * c['rate_ratio']:.1f} %), p99 {c['p99_ms']:.1f} vs "
        f"{c['ref_p99_ms']:.1f} ms ({100 * c['p99_ratio']:.1f} %) (target: within "
        f"{100 * REF_TOLERANCE:.0f} %: {_met(c['met'])})"
        for c in comparisons
    ]
