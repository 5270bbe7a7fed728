"""The OpenAPI 3.1 document: Litestar generates paths and responses from the handlers; request
bodies, which our handlers decode themselves (to report every bad field at once), are added here
from the structs each handler declares with ``opt=body(...)``."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import KwargDefinition, QueryParameter

from goticket.kit.bodies import NO_NUL_PATTERN
from goticket.kit.docs_ui import docs_handlers
from goticket.kit.problems import PROBLEM_JSON, Problem

_DESCRIPTIONS = {
    400: "Malformed JSON, or a body that is not a JSON object",
    401: "Missing, invalid or expired access token",
    403: "Authenticated but not allowed",
    404: "No such resource, or one the caller may not see",
    409: "Conflict with the current state",
    413: "Body over 64 KiB",
    415: "Body is not application/json",
    422: "Validation failed: `errors` lists every offending field",
    503: "Overloaded or outcome unknown: retry after `Retry-After` seconds",
}

SECURITY_COMPONENTS = Components(
    security_schemes={
        "bearerAuth": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT"),
    }
)


# What the server issues (unpadded base64url); anything else, the empty string included, is 422.
# Stated in the schema only: the cursor codec refuses the rest, with one message for every cause.
CURSOR = QueryParameter(
    description="nextCursor of the previous page (absent for the first page)",
    schema_extra={"minLength": 1, "pattern": "^[A-Za-z0-9_-]+$"},
)


def timestamp_query(name: str, description: str) -> KwargDefinition:
    return QueryParameter(
        name=name,
        description=f"RFC 3339 with a UTC offset; {description}. An instant outside the years"
        " 1..9999 in UTC is a 422.",
        schema_extra={"format": "date-time"},
    )


def body(struct: type[msgspec.Struct], *, required: bool = True) -> dict[str, Any]:
    return {"body": struct, "body_required": required}


def links(status: int, parameter: str, source: str, *targets: str) -> dict[str, Any]:
    """OpenAPI links from this operation's ``status`` answer to ``targets`` ("GET /events/{id}"),
    whose path ``parameter`` is the runtime expression ``source``: how a client, or a stateful
    fuzzer, goes from a created resource to what it can do with it."""
    return {"links": (status, parameter, source, targets)}


def errors(*statuses: int, with_body: bool = True) -> dict[int, ResponseSpec]:
    codes = set(statuses)
    if with_body:
        codes |= {400, 413, 415, 422}
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS.get(status, "Error"),
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in sorted(codes)
    }


def header_parameters(*parameters: dict[str, Any]) -> dict[str, Any]:
    """Header parameters (OpenAPI objects) that a handler reads from the raw request itself:
    declared as Litestar parameters they would be refused by the framework before the
    handler could answer with its own status (a webhook's missing signature is a 401)."""
    return {"header_parameters": parameters}


def conditional() -> dict[str, Any]:
    """For a GET answered by ``kit.cache.conditional``: documents ``If-None-Match``, the
    304 and the caching headers (Litestar cannot put headers on an extra response)."""
    return {"conditional": True}


_CACHE_HEADERS = {
    "Cache-Control": {
        "description": "`public, max-age=1`: the answer may be up to 1 second old",
        "schema": {"type": "string"},
    },
    "Age": {
        "description": "Seconds since the answer was read from the database, rounded up",
        "schema": {"type": "integer", "minimum": 0},
    },
}
_ETAG = {"description": "Strong entity tag of the representation", "schema": {"type": "string"}}
_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "Entity tags the client holds (`W/` compares weakly; `*` matches any): 304 if "
    "one is current",
    "schema": {"type": "string"},
}


def _document_conditional(operation: dict[str, Any]) -> None:
    operation.setdefault("parameters", []).append(dict(_IF_NONE_MATCH))
    responses = operation["responses"]
    tagged = {"ETag": _ETAG, **_CACHE_HEADERS}
    responses["200"].setdefault("headers", {}).update(copy.deepcopy(tagged))
    responses["304"] = {
        "description": "Not modified: the tag in If-None-Match is current; no body",
        "headers": copy.deepcopy(tagged),
    }
    if "404" in responses:
        responses["404"].setdefault("headers", {}).update(copy.deepcopy(_CACHE_HEADERS))


def build_document(app: Litestar) -> dict[str, Any]:
    document = copy.deepcopy(app.openapi_schema.to_schema())
    bodies: list[tuple[str, str, type[msgspec.Struct], bool]] = []
    linked: list[tuple[str, str, tuple[int, str, str, tuple[str, ...]]]] = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if handler.opt.get("conditional"):
                _document_conditional(document["paths"][route.path_format]["get"])
            for method in handler.http_methods:
                where = (route.path_format, method.lower())
                if "body" in handler.opt:
                    bodies.append((*where, handler.opt["body"], handler.opt["body_required"]))
                if "links" in handler.opt:
                    linked.append((*where, handler.opt["links"]))
                if "header_parameters" in handler.opt:
                    operation = document["paths"][route.path_format][method.lower()]
                    operation.setdefault("parameters", []).extend(
                        copy.deepcopy(list(handler.opt["header_parameters"]))
                    )
    _drop_foreign_errors(document)
    _add_bodies(document, bodies)
    for path, method, link in linked:
        _add_links(document, document["paths"][path][method], *link)
    return document


def _drop_foreign_errors(document: dict[str, Any]) -> None:
    """Every error the API sends is a problem (``kit.problems.error_reply``); Litestar adds a 400
    of its own shape for handlers with parameters, which this API answers with 422 or 404."""
    for item in document["paths"].values():
        for operation in item.values():
            responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
            for status in [s for s in responses if s.startswith(("4", "5"))]:
                if PROBLEM_JSON not in responses[status].get("content", {}):
                    del responses[status]


def _add_bodies(
    document: dict[str, Any], bodies: list[tuple[str, str, type[msgspec.Struct], bool]]
) -> None:
    if not bodies:
        return
    _, components = msgspec.json.schema_components(
        {struct for *_, struct, _ in bodies}, ref_template="#/components/schemas/{name}"
    )
    for component in components.values():
        _state_the_nul_rule(component)
    document.setdefault("components", {}).setdefault("schemas", {}).update(components)
    for path, method, struct, required in bodies:
        operation = document["paths"][path][method]
        operation["requestBody"] = {
            "required": required,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{struct.__name__}"}}
            },
        }


def _state_the_nul_rule(schema: Any) -> None:
    """``kit.bodies`` refuses U+0000 in every string of a request body: each free-text string of
    a body schema says so with a pattern. A string with a pattern, format or enum of its own
    already excludes it (the patterns are written so)."""
    if isinstance(schema, list):
        for item in schema:
            _state_the_nul_rule(item)
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not schema.keys() & {"pattern", "format", "enum"}:
        schema["pattern"] = NO_NUL_PATTERN
    for value in schema.values():
        _state_the_nul_rule(value)


def _add_links(
    document: dict[str, Any],
    operation: dict[str, Any],
    status: int,
    parameter: str,
    source: str,
    targets: tuple[str, ...],
) -> None:
    response = operation["responses"][str(status)]
    for target in targets:
        method, path = target.split(" ", 1)
        operation_id = document["paths"][path][method.lower()]["operationId"]
        response.setdefault("links", {})[operation_id] = {
            "operationId": operation_id,
            "parameters": {f"path.{parameter}": source},
        }


def openapi_handlers() -> list[Any]:
    cache: dict[str, bytes] = {}

    @get("/openapi.json", include_in_schema=False, media_type="application/vnd.oai.openapi+json")
    async def openapi_json(request: Request[Any, Any, Any]) -> Response[bytes]:
        if "doc" not in cache:
            cache["doc"] = msgspec.json.encode(build_document(request.app))
        return Response(cache["doc"], media_type="application/json")

    return [openapi_json, *docs_handlers()]
