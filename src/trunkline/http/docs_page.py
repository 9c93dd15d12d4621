"""The API docs page: Swagger UI served by trunkline itself, so it renders with no internet.

Swagger UI's bundle and stylesheet are the package data of fastapi-offline (its `static/` folder,
https://github.com/turettn/fastapi_offline), read once at start and answered from memory; no CDN and
no copy in this repository. The start-up script is ours and is served as a file like the others, so
the page runs no inline script and its Content-Security-Policy (http/middleware.py) can allow scripts
and styles from 'self' only.

Each asset's URL carries a digest of its bytes (`swagger-ui-bundle.<digest>.js`), so it can be cached
for a year as immutable: a new version of the package is a new URL. The assets need no key (nor does
the page), and none of these routes is in the OpenAPI document.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from importlib import resources

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, Response

# What the page loads from fastapi-offline's package data, with the type each is answered with.
_PACKAGED = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}

# Swagger UI's start, as FastAPI's own page configures it (fastapi.openapi.docs.get_swagger_ui_html),
# less the inline script: the document's URL is read from the page. No validator badge (Swagger UI's
# default sends the document's URL to validator.swagger.io).
_INIT_JS = b"""\
"use strict";
window.ui = SwaggerUIBundle({
  url: document.getElementById("swagger-ui").dataset.openapiUrl,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""

_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{css}">
<link rel="icon" type="image/png" href="{favicon}">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="{bundle}"></script>
<script src="{init}"></script>
</body>
</html>
"""

# Safe for as long as the URL names these bytes, which it does by their digest.
_CACHE_FOREVER = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str


def _fingerprinted(name: str, body: bytes) -> str:
    stem, _, suffix = name.rpartition(".")
    return f"{stem}.{hashlib.sha256(body).hexdigest()[:16]}.{suffix}"


def install(app: FastAPI, *, path: str, openapi_url: str, title: str) -> None:
    """Adds the page at `path` and its assets under `path`/assets/, none of them in the schema."""
    static = resources.files("fastapi_offline") / "static"
    sources = {name: (static / name).read_bytes() for name in _PACKAGED}
    sources["init.js"] = _INIT_JS
    media = {**_PACKAGED, "init.js": "text/javascript; charset=utf-8"}
    assets: dict[str, _Asset] = {}
    url: dict[str, str] = {}
    for name, body in sources.items():
        served = _fingerprinted(name, body)
        assets[served] = _Asset(body, media[name])
        url[name] = f"{path}/assets/{served}"
    page = _PAGE.format(
        title=html.escape(title),
        css=url["swagger-ui.css"],
        favicon=url["favicon.png"],
        bundle=url["swagger-ui-bundle.js"],
        init=url["init.js"],
        openapi_url=html.escape(openapi_url),
    ).encode()

    @app.get(path, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get(f"{path}/assets/{{name}}", include_in_schema=False)
    async def docs_asset(name: str) -> Response:
        asset = assets.get(name)
        if asset is None:
            raise HTTPException(404)  # answered as any unknown route is
        return Response(asset.body, media_type=asset.media_type, headers={"cache-control": _CACHE_FOREVER})
