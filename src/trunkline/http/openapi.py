"""Our OpenAPI document: request bodies are validated by the resources, so they are declared here."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

REF = "#/components/schemas/{model}"
# Request models named by routes; static type metadata, filled as route modules are imported.
_BODIES: dict[str, type[BaseModel]] = {}


def request_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """`openapi_extra` for a route whose JSON body is `model`."""
    _BODIES[model.__name__] = model
    content = {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}
    return {"requestBody": {"required": required, "content": content}}


def build(app: FastAPI) -> dict[str, Any]:
    """The document, with every declared request model added to the components."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, model in _BODIES.items():
        js = model.model_json_schema(ref_template=REF, mode="validation")
        for def_name, definition in js.pop("$defs", {}).items():
            components.setdefault(def_name, definition)
        components[name] = js
    app.openapi_schema = schema
    return schema
