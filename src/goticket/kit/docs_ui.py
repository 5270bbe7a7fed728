"""``/docs``: Swagger UI served from this process, never from a CDN, so the page renders with no
internet access. The UI's files come from the pinned ``swagger-ui-bundle-v2`` wheel (Swagger UI's
own dist files, Apache-2.0); the start-up script is ours, beside this module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import MediaType, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import File
from swagger_ui_bundle import swagger_ui_path

# Same origin only, no inline script or style, no frames, no plugins. Swagger UI draws its icons
# from data: URIs in its stylesheet; "Try it out" calls this API (connect-src 'self').
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff"}

# Only these names are served (no directory listing, no path from the request touches the disk).
_DIST = Path(str(swagger_ui_path))
_ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui.css": (_DIST / "swagger-ui.css", "text/css"),
    "swagger-ui-bundle.js": (_DIST / "swagger-ui-bundle.js", "text/javascript"),
    "favicon-32x32.png": (_DIST / "favicon-32x32.png", "image/png"),
    "swagger-init.js": (Path(__file__).parent / "docs" / "swagger-init.js", "text/javascript"),
}

_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>GoTicket API</title>
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-init.js"></script>
<noscript>The OpenAPI document is at <a href="/openapi.json">/openapi.json</a>.</noscript>
</body></html>
"""


def docs_handlers() -> list[Any]:
    @get("/docs", include_in_schema=False, media_type=MediaType.HTML)
    async def docs() -> Response[str]:
        return Response(_DOCS_PAGE, media_type=MediaType.HTML, headers=_HEADERS)

    @get("/docs/{name:str}", include_in_schema=False)
    async def docs_asset(name: FromPath[str]) -> File:
        if name not in _ASSETS:
            raise NotFoundException()
        path, media_type = _ASSETS[name]
        return File(
            path,
            media_type=media_type,
            filename=name,
            content_disposition_type="inline",
            headers={**_HEADERS, "Cache-Control": "public, max-age=3600"},
        )

    return [docs, docs_asset]
