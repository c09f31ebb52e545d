"""Domain errors become JSON HTTP errors here, at the edge, and nowhere else.

Every 4xx and 5xx the app answers is ``{"error": {"code", "message"}}``;
an exception nobody expected is a 500 whose body holds only a request id
(the log line with the traceback carries the same id), never the
exception's text, which may quote what the client sent.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Final, NoReturn

from aiohttp import web

from ledger.core.errors import (
    ConflictError,
    ForbiddenError,
    IdempotencyConflictError,
    LedgerError,
    NotFoundError,
    ValidationError,
)
from reconciler.api.bodies import read_json
from reconciler.api.problems import REQUEST_ID, ApiError
from reconciler.logs import uncached_logger

__all__ = ["ApiError", "Handler", "error_middleware", "error_response", "read_json"]

log = uncached_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS_BY_ERROR: Final[tuple[tuple[type[LedgerError], int], ...]] = (
    (ValidationError, 400),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (IdempotencyConflictError, 422),
    (ConflictError, 409),
)


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
    408: "body_timeout",
    413: "body_too_large",
    415: "unsupported_media_type",
}
# After these the rest of the body is not worth reading: close the connection.
_CLOSING_STATUSES: Final = frozenset({408, 413})


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as err:
        response = error_response(err.status, err.code, err.message)
        response.headers.update(err.headers)
        if err.status in _CLOSING_STATUSES or err.code == "bad_body":
            response.force_close()
        return response
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
    except Exception:
        request_id = request.get(REQUEST_ID, "-")
        log.exception("http.unhandled_error", request_id=request_id, method=request.method)
        return error_response(
            500,
            "internal_error",
            "something went wrong on our side; quote the request id if you report it",
            request_id=request_id,
        )


def bad_request(field: str, message: str) -> NoReturn:
    raise ValidationError(field, message)
