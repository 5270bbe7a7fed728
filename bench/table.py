"""The results table: its columns as printed on stdout, and the cells docs/benchmarks.md reuses."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from bench.results import Result

_COLUMNS = (
    ("mode", 4), ("scenario", 8), ("conns", 5), ("pool", 4), ("answered", 9), ("ok/s", 8),
    ("409/s", 8), ("p50 ms", 7), ("p95 ms", 7), ("p99 ms", 7), ("errors", 6), ("503", 5),
    ("cpu srv", 7), ("cpu pg", 7), ("cpu wrk", 7), ("idle%", 5), ("batch", 5), ("tx ms", 5),
    ("non-2xx", 22), ("check", 5),
)  # fmt: skip


def header() -> str:
    head = " ".join(f"{name:>{width}}" for name, width in _COLUMNS)
    return head + "\n" + "-" * len(head)


def cells(r: dict[str, Any]) -> list[str]:
    lat, cpu = r["latency_ms"], r["cpu"]
    non_2xx = {s: n for s, n in r["statuses"].items() if not s.startswith("2")}
    pg = cpu["postgres_s"]
    return [
        r["mode"], r["scenario"], str(r["connections"]), str(r["pool_max"]),
        f"{r['answered']:,}", f"{r['ok_per_s']:,.0f}", f"{r['rejected_per_s']:,.0f}",
        f"{lat['p50']:.1f}", f"{lat['p95']:.1f}", f"{lat['p99']:.1f}",
        str(r["errors"]), str(r["unavailable"]),
        f"{cpu['server_s']:.1f}", "n/a" if pg is None else f"{pg:.1f}", f"{cpu['wrk_s']:.1f}",
        f"{cpu['idle_pct']:.0f}",
        "-" if r.get("batch_avg") is None else f"{r['batch_avg']:.1f}",
        "-" if r.get("commit_ms") is None else f"{r['commit_ms']:.1f}",
        " ".join(f"{s}:{n}" for s, n in non_2xx.items()) or "-",
        r["check"].split(" ")[0],
    ]  # fmt: skip


def row(result: Result) -> str:
    values = cells(asdict(result))
    return " ".join(f"{c:>{w}}" for c, (_, w) in zip(values, _COLUMNS, strict=True))


def run_label(run: dict[str, Any]) -> str:
    """``on``, ``off``; ``on@HEAD~1`` for a --compare-ref run, ``on*`` for an extra compared
    run of this checkout (--compare-rounds)."""
    mode: str = run["mode"]
    if run.get("ref") is not None:
        return f"{mode}@{run['ref']}"
    return mode + ("*" if run.get("compare_only") else "")
