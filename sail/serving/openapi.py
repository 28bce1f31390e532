"""The server's OpenAPI document (`/openapi.json`, read at `/docs`) with the request schemas.

The embedding routes read raw bodies and validate them with the pydantic models of
`sail.serving.schema` (so errors name the item and field), which FastAPI cannot see. `document(app,
bodies)` puts each model's JSON schema in the document as the request body of its route.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

REF = "#/components/schemas/{model}"


def document(app: FastAPI, bodies: Mapping[tuple[str, str], type[BaseModel]]) -> None:
    """Generate `app`'s OpenAPI document once, with `bodies[(path, method)]` as the JSON body of
    that route (method in lower case, e.g. ("/openai/v1/embeddings", "post"))."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for (path, method), model in bodies.items():
                body = model.model_json_schema(ref_template=REF)
                schemas.update(body.pop("$defs", {}))
                schemas[model.__name__] = body
                operation = schema["paths"][path][method]
                operation["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}
                    },
                }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
