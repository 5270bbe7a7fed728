"""The issue's targets, judged within one run: the reads as a share of GET /healthz's rate; the
checkout's holds as a share of the instant bookings' rate, the mass expiry's time and the hot
event's p99 meanwhile, the check-in's scans/s; and the hot bookings of this checkout against
another git ref's (--compare-ref)."""

from __future__ import annotations

from typing import Any

# Share of GET /healthz's rate each read must reach; and the p99 of GET /events/{id}.
READ_TARGETS: dict[str, float] = {"read": 0.70, "list": 0.50}
READ_P99_TARGET_MS = 20.0
# This checkout against --compare-ref: bookings/s and p99 within 5 %.
REF_TOLERANCE = 0.05
# Holds (a payment event) against instant bookings (hot) at the same connections: the rate's
# share, and the p99's ceiling as a multiple of hot's ("the same p99 bound", with hot's noise).
HOLDS_RATE_TARGET = 0.90
HOLDS_P99_RATIO = 1.10
# The mass expiry: every hold expired within this long of the due instant, and the hot event's
# p99 meanwhile at most this multiple of the hot scenario's at the same connections.
EXPIRY_TARGET_S = 10.0
EXPIRY_P99_RATIO = 2.0
# Check-in: verified scans (200 and 409) per second at the door.
CHECKIN_TARGET_PER_S = 2_000.0


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


def _means(runs: list[dict[str, Any]]) -> dict[str, tuple[float, float, int]]:
    """Per scenario: the mean rate, the mean p99 and how many runs measured it."""
    found: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        for r in run["results"]:
            found.setdefault(r["scenario"], []).append(r)
    return {
        name: (
            sum(r["ok_per_s"] for r in rs) / len(rs),
            sum(r["latency_ms"]["p99"] for r in rs) / len(rs),
            len(rs),
        )
        for name, rs in found.items()
    }


def ref_comparisons(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each scenario the --compare-ref runs measured, against this checkout's runs of the same
    mode: means over the runs of each side (one each, unless --compare-rounds)."""
    comparisons = []
    for ref, mode in dict.fromkeys((run["ref"], run["mode"]) for run in runs if run.get("ref")):
        ours = _means([run for run in runs if run.get("ref") is None and run["mode"] == mode])
        theirs = _means([run for run in runs if run.get("ref") == ref and run["mode"] == mode])
        for name, (ref_rate, ref_p99, rounds) in theirs.items():
            if name not in ours or not ref_rate or not ref_p99:
                continue
            rate, p99, _ = ours[name]
            comparisons.append(
                {
                    "mode": mode,
                    "ref": ref,
                    "scenario": name,
                    "rounds": rounds,
                    "per_s": round(rate, 1),
                    "ref_per_s": round(ref_rate, 1),
                    "rate_ratio": round(rate / ref_rate, 3),
                    "p99_ms": round(p99, 2),
                    "ref_p99_ms": round(ref_p99, 2),
                    "p99_ratio": round(p99 / ref_p99, 3),
                    "met": rate / ref_rate >= 1 - REF_TOLERANCE
                    and p99 / ref_p99 <= 1 + REF_TOLERANCE,
                }
            )
    return comparisons


def ref_lines(comparisons: list[dict[str, Any]]) -> list[str]:
    return [
        f"engine {c['mode']}: {c['scenario']} {c['per_s']:,.0f}/s vs {c['ref_per_s']:,.0f}/s at "
        f"{c['ref']} ({100 * c['rate_ratio']:.1f} %), p99 {c['p99_ms']:.1f} vs "
        f"{c['ref_p99_ms']:.1f} ms ({100 * c['p99_ratio']:.1f} %) (target: within "
        f"{100 * REF_TOLERANCE:.0f} %: {_met(c['met'])})"
        + (f", means of {c['rounds']} runs each" if c["rounds"] > 1 else "")
        for c in comparisons
    ]


def per_cpu_s(result: dict[str, Any]) -> float | None:
    """Successful answers per CPU second of the server and PostgreSQL: what a scenario costs,
    whatever else the machine ran meanwhile (the rate itself moves with that)."""
    cpu = result.get("cpu") or {}
    spent = (cpu.get("server_s") or 0.0) + (cpu.get("postgres_s") or 0.0)
    wall = cpu.get("wall_s") or 0.0
    if spent <= 0 or wall <= 0:
        return None
    return float(result["ok_per_s"]) * wall / spent


def _hot_of(results: list[dict[str, Any]], connections: int) -> dict[str, Any] | None:
    return next(
        (r for r in results if r["kind"] == "hot" and r["connections"] == connections), None
    )


def checkout_verdicts(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each run: holds against its hot scenario of the same connections, the mass expiry
    (its time; its p99 against that hot p99), the check-in's rate. A scenario whose baseline
    did not run in the same server start is reported without a verdict on that part."""
    verdicts: list[dict[str, Any]] = []
    for run in runs:
        for r in run["results"]:
            hot = _hot_of(run["results"], r["connections"])
            base = {"mode": run["mode"], "ref": run.get("ref"), "scenario": r["scenario"]}
            p99 = r["latency_ms"]["p99"]
            if r["kind"] == "holds":
                # Bookings confirmed at once are not holds: the scenario measured nothing new.
                held = r.get("holds_pending") is None or r["holds_pending"] >= r["ok"]
                entry = base | {"per_s": r["ok_per_s"], "p99_ms": p99, "hot": None, "held": held}
                if hot is not None and hot["ok_per_s"] and hot["latency_ms"]["p99"]:
                    ratio = r["ok_per_s"] / hot["ok_per_s"]
                    hot_p99 = hot["latency_ms"]["p99"]
                    entry |= {
                        "hot": hot["scenario"],
                        "hot_per_s": hot["ok_per_s"],
                        "ratio": round(ratio, 3),
                        "met": held and ratio >= HOLDS_RATE_TARGET,
                        "hot_p99_ms": hot_p99,
                        "p99_ratio": round(p99 / hot_p99, 3),
                        "p99_met": held and p99 <= HOLDS_P99_RATIO * hot_p99,
                    }
                    mine, theirs = per_cpu_s(r), per_cpu_s(hot)
                    if mine and theirs:  # not judged: a hint when the machine was busy
                        entry["cpu_ratio"] = round(mine / theirs, 3)
                verdicts.append(entry)
            elif r["kind"] == "expiry":
                seconds = r.get("expired_after_s")
                entry = base | {
                    "holds": r.get("expiry_holds"),
                    "expired_after_s": seconds,
                    "started_after_s": r.get("expiry_started_after_s"),
                    "left": r.get("expiry_left"),
                    "met": seconds is not None and seconds <= EXPIRY_TARGET_S,
                    "per_s": r["ok_per_s"],
                    "p99_ms": p99,
                    "hot": None,
                }
                if hot is not None and hot["latency_ms"]["p99"]:
                    hot_p99 = hot["latency_ms"]["p99"]
                    entry |= {
                        "hot": hot["scenario"],
                        "hot_p99_ms": hot_p99,
                        "p99_ratio": round(p99 / hot_p99, 3),
                        "p99_met": p99 <= EXPIRY_P99_RATIO * hot_p99,
                    }
                verdicts.append(entry)
            elif r["kind"] == "checkin":
                # Every answer counted is a verified one: 200 (first scan) or 409 (used).
                per_s = r["ok_per_s"] + r["rejected_per_s"]
                verdicts.append(
                    base
                    | {
                        "per_s": round(per_s, 1),
                        "first_per_s": r["ok_per_s"],
                        "used_per_s": r["rejected_per_s"],
                        "connections": r["connections"],
                        "p99_ms": p99,
                        "met": per_s >= CHECKIN_TARGET_PER_S,
                    }
                )
    return verdicts


def checkout_lines(verdicts: list[dict[str, Any]]) -> list[str]:
    lines = []
    for v in verdicts:
        head = f"engine {v['mode']}" + (f"@{v['ref']}" if v.get("ref") else "")
        if v["scenario"].startswith("holds"):
            if v["hot"] is None:
                lines.append(f"{head}: {v['scenario']} {v['per_s']:,.0f}/s (no hot run to judge)")
                continue
            lines.append(
                f"{head}: {v['scenario']} {v['per_s']:,.0f}/s = {100 * v['ratio']:.1f} % of "
                f"{v['hot']} {v['hot_per_s']:,.0f}/s (target >= {100 * HOLDS_RATE_TARGET:.0f} "
                f"%: {_met(v['met'])}); p99 {v['p99_ms']:.1f} vs {v['hot_p99_ms']:.1f} ms "
                f"({100 * v['p99_ratio']:.0f} %, target <= {100 * HOLDS_P99_RATIO:.0f} %: "
                f"{_met(v['p99_met'])})"
                + (
                    f"; per CPU second (server + PostgreSQL) {100 * v['cpu_ratio']:.0f} % of hot's"
                    if v.get("cpu_ratio")
                    else ""
                )
                + ("" if v["held"] else " (NOT HOLDS: bookings were confirmed at once)")
            )
        elif v["scenario"] == "expiry":
            holds = v["holds"] or 0
            timing = (
                f"all expired {v['expired_after_s']:.1f} s after their due instant"
                if v["expired_after_s"] is not None
                else f"{v['left']:,} still pending"
            )
            if v.get("started_after_s") is not None:
                timing += f" (the first expired after {v['started_after_s']:.1f} s)"
            text = (
                f"{head}: expiry of {holds:,} holds due in one second: {timing} (target <= "
                f"{EXPIRY_TARGET_S:g} s: {_met(v['met'])}); the hot event meanwhile "
                f"{v['per_s']:,.0f}/s, p99 {v['p99_ms']:.1f} ms"
            )
            if v["hot"] is not None:
                text += (
                    f" = {v['p99_ratio']:.2f}x {v['hot']}'s {v['hot_p99_ms']:.1f} ms (target <= "
                    f"{EXPIRY_P99_RATIO:g}x: {_met(v['p99_met'])})"
                )
            lines.append(text)
        else:
            lines.append(
                f"{head}: check-in {v['per_s']:,.0f} verified scans/s at {v['connections']} "
                f"connections ({v['first_per_s']:,.0f}/s first scans, {v['used_per_s']:,.0f}/s "
                f"of used tickets), p99 {v['p99_ms']:.1f} ms (target >= "
                f"{CHECKIN_TARGET_PER_S:,.0f}/s: {_met(v['met'])})"
            )
    return lines
