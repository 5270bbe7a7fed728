"""What a scenario measured, and the runs they belong to (the JSON report is their asdict)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.cpu import CpuSplit
from bench.options import Kind, Mode


@dataclass
class Result:
    mode: Mode
    scenario: str
    kind: Kind
    connections: int
    threads: int
    pool_max: int
    duration_s: float
    sent: int
    answered: int
    statuses: dict[str, int]
    ok: int  # 201 when booking, 200 when reading or checking in
    rejected: int  # 409
    unavailable: int  # 503
    errors: int  # socket errors + answers other than ok/409/503
    socket_errors: dict[str, int]
    ok_per_s: float
    rejected_per_s: float
    requests_per_s: float
    latency_ms: dict[str, float]
    cpu: CpuSplit
    rows_inserted: int
    check: str
    batch_avg: float | None = None  # requests per booking transaction (from /metrics)
    commit_ms: float | None = None  # mean booking transaction time, lock to commit
    sold_out_after_s: float | None = None
    rejections_after_sell_out_per_s: float | None = None
    # holds: the pending holds the event gained (every booking made, on a payment event)
    holds_pending: int | None = None
    # expiry: the holds seeded, seconds from their due instant to the first expired and to the
    # last, and how many were still pending when the watch gave up
    expiry_holds: int | None = None
    expiry_started_after_s: float | None = None
    expired_after_s: float | None = None
    expiry_left: int | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class ModeRun:
    """One server start: an engine mode and pool size, on this checkout or on ``ref``."""

    mode: Mode
    pool_max: int
    results: list[Result]
    ref: str | None = None  # a git ref (--compare-ref): its code served this run
    # An extra hot run of this checkout between the ref's (--compare-rounds): only compared.
    compare_only: bool = False
