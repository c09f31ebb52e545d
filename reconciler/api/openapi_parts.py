"""Building blocks of the OpenAPI 3.1 document (``reconciler.api.openapi``):
parameters as the strict parsers of ``reconciler.api.params`` read them,
shared schemas, the error body and one operation's standard answers.

The bounds come from the handlers' own constants wherever they have one, so
a bound changed in a handler changes the document with it.
"""

from __future__ import annotations

from typing import Any, Final

from reconciler.api.params import ID_MAX, PAGE_SIZE_DEFAULT, PARAM_CHARS_MAX

Schema = dict[str, Any]
Operation = dict[str, Any]

# Cursors and ids the list routes read (``cursor_before``, ``query_after_id``).
CURSOR_MAX: Final = 10**18
DATE: Final[Schema] = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
TEXT: Final[Schema] = {"type": "string", "maxLength": PARAM_CHARS_MAX}
UUID: Final[Schema] = {"type": "string", "format": "uuid"}
MOMENT: Final[Schema] = {"type": "string", "format": "date-time"}
COUNT: Final[Schema] = {"type": "integer", "minimum": 0}
SERIES: Final[Schema] = {"type": "string", "pattern": "^[A-Z0-9-]{1,40}$"}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` or JSON null (OpenAPI 3.1: a type list, or ``anyOf``)."""
    if "type" in schema and isinstance(schema["type"], str) and len(schema) == 1:
        return {"type": [schema["type"], "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


STR: Final[Schema] = {"type": "string"}
INT: Final[Schema] = {"type": "integer"}
BOOL: Final[Schema] = {"type": "boolean"}
OBJ: Final[Schema] = {"type": "object"}
NSTR: Final[Schema] = {"type": ["string", "null"]}
NINT: Final[Schema] = {"type": ["integer", "null"]}
NOBJ: Final[Schema] = {"type": ["object", "null"]}


def obj(properties: dict[str, Schema], optional: tuple[str, ...] = ()) -> Schema:
    """An object holding every property but ``optional``; more keys may come
    (an answer may grow, never shrink: docs/interfaces.md)."""
    return {
        "type": "object",
        "required": [name for name in properties if name not in optional],
        "properties": properties,
    }


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def page(name: str, items: Schema, cursor: str = "next_cursor") -> Schema:
    """A page of a listing: the rows under ``name``, the next page's cursor (or null)."""
    return obj({name: array(items), cursor: nullable(STR if cursor == "next_cursor" else INT)})


def _parameter(where: str, name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
    }


def path(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return _parameter("path", name, schema, description)


def query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    """An optional query parameter (an empty value counts as absent)."""
    return _parameter("query", name, schema, description)


def decision_path() -> dict[str, Any]:
    """A fine's decision number in the path (the routes' ``{decision_number:.+}``)."""
    return path(
        "decision_number",
        {"type": "string", "minLength": 1},
        "the fine's decision number, typed any way (01234/qd-xphc)",
    )


def path_id(name: str, what: str) -> dict[str, Any]:
    """A database id in the path: ASCII digits, 0..ID_MAX (0 is found nowhere)."""
    return path(name, {"type": "integer", "minimum": 0, "maximum": ID_MAX}, f"the {what}'s id")


def limit(maximum: int, default: int = PAGE_SIZE_DEFAULT) -> dict[str, Any]:
    schema = {"type": "integer", "minimum": 1, "maximum": maximum, "default": default}
    return query("limit", schema, f"rows per page, 1..{maximum}")


def cursor_before() -> dict[str, Any]:
    return query(
        "cursor",
        {"type": "integer", "minimum": 1, "maximum": CURSOR_MAX},
        "the previous page's next_cursor: list below that id",
    )


def cursor_after() -> dict[str, Any]:
    return query(
        "cursor",
        {"type": "integer", "minimum": 0, "maximum": CURSOR_MAX},
        "the previous page's next_cursor: list above that id (0: from the start)",
    )


def after_id() -> dict[str, Any]:
    return query(
        "after_id",
        {"type": "integer", "minimum": 0, "maximum": CURSOR_MAX},
        "the previous page's next_after_id",
    )


def payment_cursor() -> dict[str, Any]:
    """``cursor`` of a payment list (``reconciler.api.lists.payment_position``)."""
    schema = {"type": "string", "pattern": r"^\d{1,17}\.[0-9a-f]{32}$"}
    return query("cursor", schema, "the previous page's next_cursor")


def json_body(schema: Schema, description: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {
        "required": True,
        "content": {"application/json": {"schema": schema}},
    }
    if description:
        body["description"] = description
    return body


ERROR_SCHEMA: Final[Schema] = obj(
    {
        "error": obj(
            {
                "code": {"type": "string", "description": "stable, for programs"},
                "message": {"type": "string", "description": "for the person at the counter"},
                "field": {"type": "string", "description": "the input at fault (400)"},
                "request_id": {"type": "string", "description": "to quote (500)"},
            },
            optional=("field", "request_id"),
        )
    }
)

# Why each error status is answered (the same text for every route).
ERROR_STATUSES: Final[dict[int, str]] = {
    400: "a bad input, named in error.field (nothing changed)",
    401: "no token, or one unknown, expired or revoked",
    403: "the caller's role may not do this, or only a person may",
    404: "no such resource (or one outside the caller's units)",
    409: "it conflicts with what exists (nothing changed)",
    413: "the body is over the route's cap (the connection is closed)",
    415: "a JSON route sent another content type or charset",
    422: "the same Idempotency-Key with another body",
    423: "the account is locked after too many wrong passwords",
    429: "too many requests; Retry-After says when to retry",
    503: "a part the request needs is unreachable (database, Temporal); Retry-After",
}


def responses(
    ok: dict[int, tuple[str, Schema | None]],
    errors: tuple[int, ...],
    *,
    content_type: str = "application/json",
) -> dict[str, Any]:
    """The success answers ``ok`` (status: (description, schema; None: no
    JSON, ``content_type`` bytes)) and the error statuses ``errors``."""
    out: dict[str, Any] = {}
    for status, (description, schema) in sorted(ok.items()):
        if schema is None:
            media = {content_type: {"schema": {"type": "string", "format": "binary"}}}
        else:
            media = {"application/json": {"schema": schema}}
        out[str(status)] = {"description": description, "content": media}
    for status in sorted(set(errors)):
        out[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    return out


def operation(
    summary: str,
    permission: str,
    ok: dict[int, tuple[str, Schema | None]],
    *,
    tag: str,
    params: tuple[dict[str, Any], ...] = (),
    body: dict[str, Any] | None = None,
    errors: tuple[int, ...] = (),
    content_type: str = "application/json",
    public: bool = False,
    description: str = "",
) -> Operation:
    """One operation. Every route may answer 400 (the edge screens every
    path and query value), 503 (the database); with a token also 401 and
    403; with a body 413 and 415; with a path parameter 404. A
    ``description`` is prefixed with the permission it needs."""
    standard = [400, 503] + ([] if public else [401, 403])
    if body is not None:
        standard += [413, 415]
    if any(p["in"] == "path" for p in params):
        standard.append(404)
    op: Operation = {
        "summary": summary,
        "tags": [tag],
        "x-permission": permission,
        "parameters": list(params),
        "responses": responses(ok, tuple(standard) + errors, content_type=content_type),
    }
    if description:
        op["description"] = f"Needs `{permission}`. {description}"
    if body is not None:
        op["requestBody"] = body
    if public:
        op["security"] = []
    return op


def error_responses() -> dict[str, Any]:
    return {
        f"E{status}": {
            "description": why,
            "content": {"application/json": {"schema": ref("Error")}},
        }
        for status, why in ERROR_STATUSES.items()
    }


def listing(
    summary: str,
    permission: str,
    rows: tuple[str, Schema],
    *,
    tag: str,
    params: tuple[dict[str, Any], ...],
    cursor: str = "next_cursor",
    description: str = "",
) -> Operation:
    """A GET of one page of a listing: ``rows`` (their key, their schema)
    and the next page's ``cursor``."""
    name, item = rows
    return operation(
        summary,
        permission,
        {200: ("a page", page(name, item, cursor))},
        tag=tag,
        params=params,
        description=description,
    )
