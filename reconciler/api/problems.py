"""The errors a handler raises to answer with a status of its own (the
domain's errors are mapped in ``reconciler.api.errors``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aiohttp import web

# Not an HTTP status anyone receives: the client hung up before the answer
# (nginx's convention). Counted apart from the server's own failures.
CLIENT_CLOSED: Final = 499
# The id of a request, in its access log line, any error log line and the
# body of a 500.
REQUEST_ID: Final = web.RequestKey("request_id", str)


class ApiError(Exception):
    """An error raised by a handler with its HTTP status and stable code."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


class ClientGoneError(ApiError):
    """The client closed the connection while we read its request."""

    def __init__(self) -> None:
        super().__init__(CLIENT_CLOSED, "client_closed", "the client closed the connection")
