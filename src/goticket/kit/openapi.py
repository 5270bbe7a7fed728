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


def body(struct: type[msgspec.Struct], *, required: bool = True) -> dict[str, Any]:
    return {"body": struct, "body_required": required}


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


def build_document(app: Litestar) -> dict[str, Any]:
    document = copy.deepcopy(app.openapi_schema.to_schema())
    bodies: list[tuple[str, str, type[msgspec.Struct], bool]] = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            struct = handler.opt.get("body")
            if struct is None:
                continue
            for method in handler.http_methods:
                bodies.append(
                    (route.path_format, method.lower(), struct, handler.opt["body_required"])
                )
    if not bodies:
        return document
    _, components = msgspec.json.schema_components(
        {struct for *_, struct, _ in bodies}, ref_template="#/components/schemas/{name}"
    )
    document.setdefault("components", {}).setdefault("schemas", {}).update(components)
    for path, method, struct, required in bodies:
        operation = document["paths"][path][method]
        operation["requestBody"] = {
            "required": required,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{struct.__name__}"}}
            },
        }
    return document


def openapi_handlers() -> list[Any]:
    cache: dict[str, bytes] = {}

    @get("/openapi.json", include_in_schema=False, media_type="application/vnd.oai.openapi+json")
    async def openapi_json(request: Request[Any, Any, Any]) -> Response[bytes]:
        if "doc" not in cache:
            cache["doc"] = msgspec.json.encode(build_document(request.app))
        return Response(cache["doc"], media_type="application/json")

    return [openapi_json, *docs_handlers()]
