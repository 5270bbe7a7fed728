"""GoTicket benchmark: the booking path with the reservation engine ON and OFF, and the read path
against ``GET /healthz`` (the HTTP ceiling of the same run), driven by wrk.

``make bench`` (or ``.venv/bin/python -m bench``) does everything: starts an embedded PostgreSQL
(or uses GOTICKET_DATABASE_URL) with a fresh database, writes 20,000 users and the events straight
into it, mints the users' access tokens, then for each mode starts ``goticket serve`` on a free
port of 127.0.0.1 and runs the scenarios under wrk:

    hot-64, hot-256  one event that never sells out, 64 and 256 connections
    holds-64, -256   the same on a checkout "payment" event: every booking is a hold
    expiry           50,000 holds due in the same second expire while hot-256 runs
    storm            a 5,000-seat event sold out by 256 connections, rejections measured after
    spread           bookings across 1,000 events
    healthz          GET /healthz: the HTTP ceiling the reads are compared with
    read             GET /events/{id} across those 1,000 events
    list             GET /events?limit=20
    refuse           bookings of a sold-out event: the HTTP path's own ceiling for a 409
    checkin          POST /events/{id}/checkins of signed ticket codes, each once, 64 connections

After every scenario the database is checked: ``capacity = available + sum(quantity)`` of the
pending and confirmed bookings of every event, and the rows inserted equal the 201s wrk counted
(the tickets used, the 200s of the check-in). A violation
stops the run with exit status 1. Results: a table on stdout, bench/results/latest.json, a chart
(bench/results/latest.png, with matplotlib) and docs/benchmarks.md (not for --quick runs).

The modules, in the order a run uses them: options, seeding, server (with cpu), load, measure
(with checks, and checkout for the holds, their expiry and the ticket codes), report (with
targets, chart and docs); runner drives them.
"""


class BenchFailure(Exception):
    """A broken invariant or a harness step that failed: the run stops with exit status 1."""
