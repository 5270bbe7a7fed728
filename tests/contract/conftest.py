"""``world``: every contract test runs once on the fakes and once on real PostgreSQL."""

from __future__ import annotations

import pytest

from tests.contract.worlds import FakeWorld, World, postgres_world


@pytest.fixture(params=["fake", "postgres"])
def world(request: pytest.FixtureRequest) -> World:
    if request.param == "fake":
        return FakeWorld()
    # Only the PostgreSQL run asks for the database (an emptied one, with a small pool).
    return postgres_world(request.getfixturevalue("database"))
