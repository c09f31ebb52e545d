"""Serving the app: aiohttp's HTTP server with the edge's own answers to
what never reaches the app.

A request aiohttp's parser refuses (a bad header, a NUL, an over-long line,
broken framing) is answered by the protocol handler, not the app: by
default in plain text that quotes the offending bytes, and logged with
them, so a token followed by a NUL was echoed in the body and twice in the
log. ``EdgeRequestHandler`` answers those with the JSON error shape, a
neutral ``Server`` header and no byte of the request, and logs one line
naming only the exception's type.

Broken framing inside a body (a chunk size that is not hex) makes aiohttp's
C parser queue an error for the *next* request and leave the current body
waiting forever; ``EdgeRequestHandler`` hands the error to the body being
read, so the handler answers 400 at once. This reads two protected
attributes of aiohttp's handler (``_messages``, ``_current_request``):
``tests/integration/edge/test_framing.py`` fails if an upgrade changes them.

An idle connection, and one whose headers never finish, is closed after
``http_idle_seconds`` (aiohttp's keep-alive timer; its default is an
hour); a body is bounded by ``reconciler.api.bodies``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
from typing import Any, Final

from aiohttp import web
from aiohttp.web_protocol import RequestHandler, _ErrInfo
from aiohttp.web_request import BaseRequest

from reconciler.api.edge import SERVER_NAME
from reconciler.logs import uncached_logger

log = uncached_logger(__name__)

# After answering a request whose body it did not read (a 413 on a too-long
# body), aiohttp keeps reading and dropping the rest for a while, so that the
# client reads the answer instead of a reset. Its default, 10 s, lets each
# refused upload hold a connection and read junk for 10 s; 2 s covers a
# client finishing its write of what it already had in flight.
LINGER_SECONDS: Final = 2.0

_CODES: Final = {400: "bad_request", 413: "body_too_large", 431: "headers_too_large"}


class EdgeRequestHandler(RequestHandler):
    """aiohttp's protocol handler, but for what its parser refuses."""

    def data_received(self, data: bytes) -> None:
        queued = len(self._messages)
        super().data_received(data)
        current = self._current_request
        if current is None:
            return
        for message, _ in itertools.islice(self._messages, queued, None):
            if isinstance(message, _ErrInfo):
                current.content.set_exception(web.RequestPayloadError("broken body framing"))
                return

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp logs a failed connection with the exception's text, which
        may quote the request: only its type here."""
        exc = kw.get("exc_info")
        log.info("http.connection_dropped", error=type(exc).__name__ if exc else None)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            # Part of an answer is out: nothing can be added to it.
            raise ConnectionError("response already started")
        if status >= 500:
            log.error("http.server_error", status=status, client=request.remote, exc_info=exc)
            text = "something went wrong on our side"
        else:
            # The message and the exception's text quote the request's bytes.
            log.warning(
                "http.unparseable_request",
                status=status,
                error=type(exc).__name__ if exc is not None else None,
                client=request.remote,
            )
            text = "the request is not valid HTTP/1.1"
        body = {"error": {"code": _CODES.get(status, "http_error"), "message": text}}
        response = web.Response(
            status=status,
            text=json.dumps(body),
            content_type="application/json",
            headers={"Server": SERVER_NAME},
        )
        response.force_close()
        return response


class EdgeServer(web.Server):
    """A ``web.Server`` whose connections get ``EdgeRequestHandler``."""

    def __init__(self, base: web.Server, **handler_kwargs: Any) -> None:
        super().__init__(
            base.request_handler,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **handler_kwargs,
        )
        self._handler_kwargs = handler_kwargs

    def __call__(self) -> RequestHandler:
        return EdgeRequestHandler(self, loop=asyncio.get_running_loop(), **self._handler_kwargs)


class EdgeRunner(web.AppRunner):
    """``web.AppRunner`` serving through ``EdgeServer``; no aiohttp access
    log (``reconciler.api.edge`` writes its own)."""

    def __init__(self, app: web.Application, *, idle_seconds: float) -> None:
        super().__init__(app, access_log=None)
        self._handler_kwargs: dict[str, Any] = {
            "access_log": None,
            "keepalive_timeout": idle_seconds,
            "lingering_time": LINGER_SECONDS,
        }

    async def _make_server(self) -> web.Server:
        return EdgeServer(await super()._make_server(), **self._handler_kwargs)


async def serve(app: web.Application, host: str, port: int, idle_seconds: float) -> None:
    """Serve ``app`` until SIGINT or SIGTERM."""
    runner = EdgeRunner(app, idle_seconds=idle_seconds)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("api.listening", host=host, port=port)
        await stop.wait()
    finally:
        await runner.cleanup()
