"""HTTP/1.1 by hand over a socket, for requests no client library sends:
lying lengths, broken framing, bytes that are not UTF-8 in headers, a body
in several packets. Blocking: call it through ``asyncio.to_thread`` from a
test whose event loop serves the app."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Long enough for any deadline of the edge under test; a request that has
# no answer by then hangs, and the test says so.
ANSWER_TIMEOUT_SECONDS = 30.0


class NoAnswerError(AssertionError):
    """The server neither answered nor closed the connection in time."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def is_json_error(self) -> bool:
        if not self.headers.get("content-type", "").startswith("application/json"):
            return False
        try:
            error = self.json().get("error")
        except ValueError:
            return False
        return isinstance(error, dict) and {"code", "message"} <= set(error)


def request_bytes(
    method: str, target: bytes, headers: Sequence[tuple[bytes, bytes]], body: bytes = b""
) -> bytes:
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: test"]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def exchange(
    port: int,
    parts: Sequence[bytes],
    *,
    pause_seconds: float = 0.0,
    timeout: float = ANSWER_TIMEOUT_SECONDS,
) -> Answer | None:
    """Send ``parts`` (``pause_seconds`` apart, each its own packet), then
    read one answer. None: the server closed without answering."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for i, part in enumerate(parts):
                if i and pause_seconds:
                    time.sleep(pause_seconds)
                sock.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered (and closed) before the whole request went out
        # A HEAD answer has a length but no body: http.client must know.
        method = "HEAD" if parts and parts[0].startswith(b"HEAD ") else "GET"
        response = http.client.HTTPResponse(sock, method=method)
        try:
            response.begin()
            body = response.read()
        except TimeoutError as err:
            raise NoAnswerError(f"no answer within {timeout} s") from err
        except (http.client.RemoteDisconnected, ConnectionResetError):
            return None
        headers = {name.lower(): value for name, value in response.getheaders()}
        return Answer(response.status, headers, body)
