"""bench/results/latest.png: answers/s, latency and the CPU split of every scenario and run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.table import run_label

COLORS = {"on": "tab:green", "off": "tab:gray"}
REF_COLOR = "tab:blue"


def answers_per_s(result: dict[str, Any]) -> float:
    if result["kind"] == "checkin":  # every verified scan: 200 (first) and 409 (used ticket)
        both: float = result["ok_per_s"] + result["rejected_per_s"]
        return both
    rate: float = result["rejected_per_s" if result["kind"] == "refuse" else "ok_per_s"]
    return rate


def draw_chart(report: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib as mpl

        mpl.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing (pip install -e '.[bench]'): no chart")
        return False
    runs = [run for run in report["runs"] if run["results"]]
    names = list(dict.fromkeys(r["scenario"] for run in runs for r in run["results"]))
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    width = 0.8 / max(1, len(runs))
    for i, run in enumerate(runs):
        by_name = {r["scenario"]: r for r in run["results"]}
        xs = [n + i * width for n in range(len(names))]
        label = f"engine {run_label(run)} (pool {run['pool_max']})"
        color = REF_COLOR if run.get("ref") else COLORS.get(run["mode"])
        ok = [answers_per_s(by_name[n]) if n in by_name else 0 for n in names]
        axes[0].bar(xs, ok, width, label=label, color=color)
        p99 = [by_name[n]["latency_ms"]["p99"] if n in by_name else 0 for n in names]
        p50 = [by_name[n]["latency_ms"]["p50"] if n in by_name else 0 for n in names]
        axes[1].bar(xs, p99, width, label=f"p99, {label}", color=color, alpha=0.55)
        axes[1].scatter(xs, p50, color="black", marker="_", s=200, zorder=3)
        bottom = [0.0] * len(names)
        for part, shade in (("server_s", 1.0), ("postgres_s", 0.6), ("wrk_s", 0.3)):
            values = [(by_name[n]["cpu"][part] or 0.0) if n in by_name else 0.0 for n in names]
            axes[2].bar(xs, values, width, bottom=bottom, color=color, alpha=shade,
                        label=f"{part[:-2]}, {run_label(run)}")  # fmt: skip
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ticks = [n + width * (len(runs) - 1) / 2 for n in range(len(names))]
    titles = (
        "answers/s: 201 (200 for the GETs, 409 for refuse, 200+409 for checkin)",
        "latency ms: p99 bars, p50 ticks",
        "CPU seconds: server / postgres / wrk",
    )
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xticks(ticks, names)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    machine = report.get("machine", {})
    fig.suptitle(
        f"GoTicket benchmark - {machine.get('cores', '?')} cores, "
        f"PostgreSQL {machine.get('postgresql', '?')}, {report['generated_at']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
