"""The run's outputs: the table on stdout, the JSON report, the chart and docs/benchmarks.md."""

from __future__ import annotations

import json
import shutil
from typing import Any

from bench.chart import draw_chart
from bench.docs import render_docs
from bench.options import DOCS, RESULTS, ROOT, Options
from bench.table import run_label
from bench.targets import (
    checkout_lines,
    checkout_verdicts,
    read_lines,
    read_ratios,
    ref_comparisons,
    ref_lines,
)


def storm_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    for run in report["runs"]:
        for r in run["results"]:
            if r["kind"] == "storm":
                text = f"storm, engine {run_label(run)}: {r['sent']:,} booking requests"
                if r["sold_out_after_s"] is not None:
                    text += f", {r['ok']:,} seats sold out {r['sold_out_after_s']:.2f} s in"
                if r["rejections_after_sell_out_per_s"] is not None:
                    text += f", then {r['rejections_after_sell_out_per_s']:,.0f} rejections/s"
                lines.append(text)
            lines += [f"{run_label(run)}/{r['scenario']}: {note}" for note in r["notes"]]
    return lines


def verdict_lines(report: dict[str, Any]) -> list[str]:
    """The targets of the same run: reads against healthz, holds and the mass expiry against
    hot, the check-in's rate, this checkout against the ref."""
    return (
        read_lines(report["read_ratios"])
        + checkout_lines(report["checkout_verdicts"])
        + ref_lines(report["ref_comparisons"])
    )


def write_outputs(report: dict[str, Any], options: Options) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "tune" if options.tune else "latest"
    report["read_ratios"] = read_ratios(report["runs"])
    report["ref_comparisons"] = ref_comparisons(report["runs"])
    report["checkout_verdicts"] = checkout_verdicts(report["runs"])
    for line in storm_lines(report) + verdict_lines(report):
        print(line)
    if options.tune:
        report["recommendation"] = tune_recommendation(report)
        if report["recommendation"]:
            print(f"\nbest pool for engine {options.tune_mode}: {report['recommendation']}")
    path = RESULTS / f"{stem}.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    stamp = report["generated_at"].replace(":", "").replace("-", "")[:15]
    (RESULTS / f"{stem}-{stamp}.json").write_text(path.read_text())
    print(f"\nresults: {path.relative_to(ROOT)}")
    if not report["runs"] or options.tune:
        return
    chart = RESULTS / "latest.png"
    if draw_chart(report, chart):
        print(f"chart:   {chart.relative_to(ROOT)}")
    if options.docs and report["ok"]:
        if chart.exists():
            shutil.copyfile(chart, DOCS.with_suffix(".png"))
        lines = storm_lines(report) + verdict_lines(report)
        DOCS.write_text(render_docs(report, lines, RESULTS / "tune.json"))
        print(f"docs:    {DOCS.relative_to(ROOT)}")


def tune_recommendation(report: dict[str, Any]) -> int | None:
    """The pool size with the most bookings/s summed over the tuned scenarios (runs with
    errors are not candidates)."""
    scores = {
        run["pool_max"]: sum(r["ok_per_s"] for r in run["results"])
        for run in report["runs"]
        if run["results"] and not any(r["errors"] for r in run["results"])
    }
    return max(scores, key=lambda pool: scores[pool]) if scores else None
