"""Domain errors become JSON HTTP errors here, at the edge, and nowhere else."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Final, NoReturn

import structlog
from aiohttp import web

from ledger.core.errors import (
    ConflictError,
    ForbiddenError,
    IdempotencyConflictError,
    LedgerError,
    NotFoundError,
    ValidationError,
)

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS_BY_ERROR: Final[tuple[tuple[type[LedgerError], int], ...]] = (
    (ValidationError, 400),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (IdempotencyConflictError, 422),
    (ConflictError, 409),
)


class ApiError(Exception):
    """An error raised by a handler with its HTTP status and stable code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    body: dict[str, Any] = {"error": {"code": code, "message": message, **extra}}
    return web.json_response(body, status=status, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


_HTTP_CODES: Final = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as err:
        return error_response(err.status, err.code, err.message)
    except LedgerError as err:
        for kind, status in _STATUS_BY_ERROR:
            if isinstance(err, kind):
                extra = {"field": err.field} if isinstance(err, ValidationError) else {}
                return error_response(status, err.code, err.message, **extra)
        raise
    except web.HTTPRequestEntityTooLarge as err:
        return error_response(413, "body_too_large", f"request body is too large: {err.text}")
    except web.HTTPException as err:
        if err.status < 400:
            raise
        code = _HTTP_CODES.get(err.status, "http_error")
        message = err.text if err.text and not err.text.startswith(str(err.status)) else err.reason
        return error_response(err.status, code, message or err.reason)


def bad_request(field: str, message: str) -> NoReturn:
    raise ValidationError(field, message)


async def read_json(request: web.Request) -> Any:
    """The request body as JSON, or a 400 that says what is wrong with it."""
    if request.content_type not in ("application/json", ""):
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    raw = await request.read()
    if not raw:
        bad_request("body", "is empty; send a JSON object")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        bad_request("body", "is not UTF-8")
    except json.JSONDecodeError as err:
        bad_request("body", f"is not valid JSON (line {err.lineno}, column {err.colno})")
