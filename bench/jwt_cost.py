"""What one first-seen access token costs to verify: PyJWT against joserfc, HS256, the same checks.

Both verifiers check what ``goticket.kit.tokens.TokenCodec`` checks: the algorithm (HS256 only),
the signature, ``exp``, ``iss``, ``aud`` and the presence of sub, role, iat, exp, iss, aud. Every
timed token is distinct, as a worker sees them under the hot bench (most tokens are new to it).
"TokenCodec" is the service's own path (joserfc, plus the cache's miss). PyJWT comes with the
``bench`` and ``dev`` extras; without it, it is left out.

    PYTHONPATH=src:. python -m bench.jwt_cost [--tokens 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from joserfc import jwt as jose_jwt
from joserfc.jwk import OctKey

from goticket.kit.auth import Principal, Role
from goticket.kit.tokens import TokenCodec

SECRET = "bench-secret-" + "x" * 40
ISSUER, AUDIENCE = "goticket", "goticket-api"
REQUIRED = ["sub", "role", "iat", "exp", "iss", "aud"]

Verifier = Callable[[str], Any]


def pyjwt_verifier() -> Verifier | None:
    try:
        import jwt
    except ImportError:
        return None
    key = jwt.PyJWK(
        {"kty": "oct", "k": base64.urlsafe_b64encode(SECRET.encode()).rstrip(b"=").decode()},
        algorithm="HS256",
    )

    def verify(token: str) -> Any:
        return jwt.decode(
            token,
            key,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": REQUIRED},
        )

    return verify


def joserfc_verifier() -> Verifier:
    key = OctKey.import_key(SECRET)
    options: dict[str, Any] = {name: {"essential": True} for name in REQUIRED}
    options["iss"] = {"essential": True, "value": ISSUER}
    options["aud"] = {"essential": True, "value": AUDIENCE}
    registry = jose_jwt.JWTClaimsRegistry(**options)

    def verify(token: str) -> Any:
        claims = jose_jwt.decode(token, key, algorithms=["HS256"]).claims
        registry.validate(claims)
        return claims

    return verify


def codec_verifier() -> Verifier:
    # The service's own path (cache included): every token is new to it, so this is the
    # first-seen cost plus what the cache adds on a miss.
    codec = TokenCodec(SECRET, issuer=ISSUER, audience=AUDIENCE, ttl_seconds=900)
    return codec.verify


def tokens(count: int) -> list[str]:
    codec = TokenCodec(SECRET, issuer=ISSUER, audience=AUDIENCE, ttl_seconds=900)
    now = datetime.now(UTC)
    return [codec.issue(Principal(uuid.uuid4(), Role.USER), now).token for _ in range(count)]


def per_verify_us(verify: Verifier, batch: list[str]) -> float:
    started = time.perf_counter()
    for token in batch:
        verify(token)
    return (time.perf_counter() - started) / len(batch) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20_000, help="distinct tokens per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    candidates: dict[str, Verifier | None] = {
        "pyjwt": pyjwt_verifier(),
        "joserfc": joserfc_verifier(),
    }
    verifiers = {name: v for name, v in candidates.items() if v is not None}
    sample = tokens(1)[0]
    for verify in verifiers.values():
        verify(sample)  # each one accepts what the service issues
    results: dict[str, list[float]] = {name: [] for name in [*verifiers, "TokenCodec"]}
    for _ in range(args.rounds):
        batch = tokens(args.tokens)
        for name, verify in verifiers.items():
            results[name].append(per_verify_us(verify, batch))
        # A fresh codec each round: its cache starts empty, like a worker facing new tokens.
        results["TokenCodec"].append(per_verify_us(codec_verifier(), batch))
    for name, runs in results.items():
        shown = " ".join(f"{r:.1f}" for r in runs)
        print(f"{name:>10}: median {statistics.median(runs):6.1f} µs/verify  (rounds: {shown})")
    if "pyjwt" not in verifiers:
        print("     pyjwt: not installed (pip install -e '.[bench]') — left out")


if __name__ == "__main__":
    main()
