"""``OPTIONS`` answers that list every method of a path.

Litestar builds a path's automatic ``OPTIONS`` handler when the first handler of that path is
registered, and keeps it when more handlers join the path: ``OPTIONS /events`` then said
``Allow: OPTIONS, POST`` although ``GET /events`` exists. An explicit handler per path, built
from all the handlers of the path, answers for every method."""

from __future__ import annotations

from collections.abc import Sequence

from litestar import Response, route
from litestar.handlers import HTTPRouteHandler
from litestar.types import Method


def with_options(handlers: Sequence[HTTPRouteHandler]) -> list[HTTPRouteHandler]:
    """``handlers`` after one ``OPTIONS`` handler per path (first, so that Litestar makes none)."""
    methods: dict[str, set[Method]] = {}
    for handler in handlers:
        for path in handler.paths:
            methods.setdefault(path, {"OPTIONS"}).update(handler.http_methods)
    return [*(_options(path, allowed) for path, allowed in methods.items()), *handlers]


def _options(path: str, methods: set[Method]) -> HTTPRouteHandler:
    allow = ", ".join(sorted(methods))

    @route(path, http_method="OPTIONS", include_in_schema=False, sync_to_thread=False)
    def options() -> Response[None]:
        return Response(None, status_code=204, headers={"Allow": allow})

    return options
