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


SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "API key",
    "description": "An API key from `trunkline keys create`, sent as `Authorization: Bearer <key>`.",
}


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
    _add_security(schema)
    _add_links(schema)
    app.openapi_schema = schema
    return schema


def _add_security(schema: dict[str, Any]) -> None:
    """Bearer keys everywhere, except on operations that never answer 401 (/health, /ready)."""
    schema["components"]["securitySchemes"] = {"bearerAuth": SECURITY_SCHEME}
    schema["security"] = [{"bearerAuth": []}]
    for operations in schema["paths"].values():
        for operation in operations.values():
            if "401" not in operation.get("responses", {}):
                operation["security"] = []


def _add_links(schema: dict[str, Any]) -> None:
    """Links from each create to what can be done with the id it returns, for clients and fuzzers."""
    paths, components = schema["paths"], schema["components"]["schemas"]
    for path, operations in paths.items():
        create, item = operations.get("post"), paths.get(f"{path}/{{id}}")
        if create is None or item is None:
            continue
        for status, response in create.get("responses", {}).items():
            ref = response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
            body = components.get(ref.rsplit("/", 1)[-1], {})
            if not status.startswith("2") or not body:
                continue
            # `{"data": {...}}`, or the bare object some creates return (access IP ranges).
            pointer = "/data/id" if "data" in body.get("properties", {}) else "/id"
            response["links"] = {
                f"{method.capitalize()}ById": {
                    "operationId": target["operationId"],
                    "parameters": {"id": f"$response.body#{pointer}"},
                }
                for method, target in item.items()
                if "operationId" in target
            }
