# syntax=docker/dockerfile:1
# GoTicket API image: `docker build -t goticket .`
#
# Configuration is by environment only (GOTICKET_*, see README.md). In a container
# GOTICKET_DATABASE_URL MUST be set: without it `goticket serve` would start the embedded
# PostgreSQL meant for `make run` inside the container, whose data dies with it.
# Also set GOTICKET_JWT_SECRET and GOTICKET_METRICS_TOKEN, identical on every replica; otherwise
# each container generates its own in GOTICKET_DATA_DIR and tokens of one replica fail on another.
#
#   docker run -e GOTICKET_DATABASE_URL=postgresql://user:pass@db:5432/goticket \
#              -e GOTICKET_JWT_SECRET=... -e GOTICKET_METRICS_TOKEN=... -p 8080:8080 goticket
#   docker run ... goticket migrate          # one-shot schema migration (serve migrates too)

# ---- builder: a virtual environment with the package and its runtime dependencies ----------
FROM python:3.11.14-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

WORKDIR /src
COPY pyproject.toml requirements.lock ./
COPY src ./src
# requirements.lock pins exactly the runtime dependencies (the dev and bench tools are in
# requirements-dev.lock, which the image never sees); the package goes on top without resolving
# anything, and pip check fails the build if the lock is not closed (tests/unit/test_locks.py
# checks the same on every test run). Every runtime dependency ships a linux/amd64 wheel, so no
# compiler is needed; pgserver has no arm64 Linux wheel, so the image is amd64 only. pip compiles
# the bytecode here, so a read-only root file system works.
RUN pip install --no-cache-dir -r requirements.lock \
 && pip install --no-cache-dir --no-deps . \
 && pip check

# ---- runtime: the interpreter and the venv, nothing else --------------------------------------
FROM python:3.11.14-slim-bookworm

RUN groupadd --system --gid 10001 goticket \
 && useradd --system --uid 10001 --gid goticket --no-create-home \
        --home-dir /var/lib/goticket --shell /usr/sbin/nologin goticket \
 && mkdir -p /var/lib/goticket \
 && chown goticket:goticket /var/lib/goticket \
 && chmod 0700 /var/lib/goticket

COPY --from=builder /opt/venv /opt/venv

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GOTICKET_HOST=0.0.0.0 \
    GOTICKET_PORT=8080 \
    GOTICKET_DATA_DIR=/var/lib/goticket

# An empty folder: no stray .env is read from it (pydantic-settings reads ./.env when present).
WORKDIR /app
USER 10001:10001

EXPOSE 8080

# Liveness only (/readyz also checks the database). Slim images have no curl: Python's urllib.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GOTICKET_PORT', '8080'), timeout=2)"]

# `goticket serve` handles SIGTERM: in-flight requests get GOTICKET_SHUTDOWN_GRACE seconds.
ENTRYPOINT ["goticket"]
CMD ["serve"]
