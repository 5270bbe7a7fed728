"""Fails the build when a layer's coverage drops below its floor (the Go seed's figures)."""

from __future__ import annotations

import json
import sys
from collections import defaultdict

FLOORS = {"domain": 95.0, "repository": 87.0, "service": 82.0, "endpoints": 79.0}


def main(path: str) -> int:
    files = json.load(open(path))["files"]  # noqa: SIM115
    covered: dict[str, int] = defaultdict(int)
    statements: dict[str, int] = defaultdict(int)
    for name, data in files.items():
        layer = name.rsplit("/", 1)[-1].removesuffix(".py")
        if layer in FLOORS:
            covered[layer] += data["summary"]["covered_lines"]
            statements[layer] += data["summary"]["num_statements"]
    failed = False
    for layer, floor in FLOORS.items():
        percent = 100.0 * covered[layer] / statements[layer] if statements[layer] else 0.0
        ok = percent >= floor
        failed |= not ok
        print(
            f"coverage {layer:<11} {percent:6.1f} % (floor {floor:.0f} %) {'ok' if ok else 'LOW'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
