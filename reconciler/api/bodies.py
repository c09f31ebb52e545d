"""Request bodies: read whole within a size cap and a deadline, and JSON
parsed strictly. Every handler reads its body through here.

Sizes and deadlines are per route (``BodyRules``): a declared
``Content-Length`` over the cap is refused at once with 413 (the edge
middleware checks it before authentication, so nobody waits for 10 MB to
arrive); a body still arriving at the deadline gets 408; broken framing
(chunked encoding, a ``Content-Encoding: gzip`` body that is not gzip) gets
400; a client that hangs up is ``ClientGoneError`` (counted apart, never a
5xx). The body is read into memory once and kept for the request.

JSON is refused (400 naming the field) when it is not UTF-8, nested deeper
than ``JSON_DEPTH_MAX``, holds an integer of more than
``JSON_INTEGER_DIGITS_MAX`` digits (Python refuses 4,300 with an exception
of its own, and then it is a 500), NaN or Infinity, a key twice (which one
counts is the parser's guess), an over-long string or key, or a character
``domain.text.unsafe_character`` refuses: controls, lone surrogates, NUL,
zero-width and bidirectional-override characters (line breaks only in the
free-text ``MULTILINE_FIELDS``).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn

from aiohttp import web

from domain.text import unsafe_character
from ledger.core.errors import ValidationError
from reconciler.api.problems import ApiError, ClientGoneError

JSON_DEPTH_MAX: Final = 32
JSON_INTEGER_DIGITS_MAX: Final = 20
JSON_NUMBER_CHARS_MAX: Final = 40
JSON_STRING_CHARS_MAX: Final = 100_000
JSON_KEY_CHARS_MAX: Final = 100
# Free text a person types (a reason, a complaint) may hold line breaks and tabs.
MULTILINE_FIELDS: Final = frozenset({"reason", "description"})
_BODY: Final = web.RequestKey("body_bytes", bytes)


@dataclass(frozen=True)
class BodyRule:
    bytes_max: int
    seconds: float


@dataclass(frozen=True)
class BodyRules:
    """The body rule of each route (by its template), and the default."""

    default: BodyRule
    by_route: Mapping[str, BodyRule] = field(default_factory=dict)

    def for_request(self, request: web.Request) -> BodyRule:
        resource = request.match_info.route.resource
        template = resource.canonical if resource is not None else ""
        return self.by_route.get(template, self.default)

    @property
    def bytes_max(self) -> int:
        return max([self.default.bytes_max, *(r.bytes_max for r in self.by_route.values())])


BODY_RULES: Final = web.AppKey("body_rules", BodyRules)


def _too_large(rule: BodyRule) -> ApiError:
    message = f"the request body may be at most {rule.bytes_max} bytes"
    return ApiError(413, "body_too_large", message)


def refuse_declared_length(request: web.Request) -> None:
    """413 when the declared ``Content-Length`` is over the route's cap."""
    rule = request.app[BODY_RULES].for_request(request)
    if request.content_length is not None and request.content_length > rule.bytes_max:
        raise _too_large(rule)


async def read_body(request: web.Request) -> bytes:
    """The whole body (empty if none), read once within the route's rule."""
    cached: bytes | None = request.get(_BODY)
    if cached is not None:
        return cached
    rule = request.app[BODY_RULES].for_request(request)
    refuse_declared_length(request)
    data = bytearray()
    try:
        async with asyncio.timeout(rule.seconds):
            while chunk := await request.content.readany():
                data += chunk
                if len(data) > rule.bytes_max:
                    raise _too_large(rule)
    except TimeoutError:
        message = f"the request body did not arrive within {rule.seconds:g} s"
        raise ApiError(408, "body_timeout", message) from None
    except web.RequestPayloadError:
        if request.transport is None or request.transport.is_closing():
            raise ClientGoneError() from None
        message = "the request body is malformed (its framing or content encoding)"
        raise ApiError(400, "bad_body", message) from None
    except ConnectionError:
        raise ClientGoneError() from None
    request[_BODY] = body = bytes(data)
    return body


async def read_json(request: web.Request) -> Any:
    """The request body as strict JSON, or a 400/408/413/415 that says what
    is wrong with it."""
    content_type = request.content_type
    charset = (request.charset or "utf-8").lower()
    if content_type not in ("application/json", "") or charset not in ("utf-8", "utf8"):
        raise ApiError(415, "unsupported_media_type", "send the body as application/json (UTF-8)")
    raw = await read_body(request)
    if not raw:
        _refuse("body", "is empty; send a JSON object")
    return parse_json(raw)


def _refuse(name: str, message: str) -> NoReturn:
    raise ValidationError(name, message)


def parse_json(raw: bytes) -> Any:
    """``raw`` as strict JSON (see the module's docstring)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        _refuse("body", "is not UTF-8")
    try:
        value = json.loads(
            text,
            parse_int=_integer,
            parse_float=_float,
            parse_constant=_constant,
            object_pairs_hook=_object,
        )
    except json.JSONDecodeError as err:
        _refuse("body", f"is not valid JSON (line {err.lineno}, column {err.colno})")
    except RecursionError:
        _refuse("body", f"is nested deeper than {JSON_DEPTH_MAX} levels")
    _check_tree(value)
    return value


def _integer(digits: str) -> int:
    if len(digits.lstrip("-")) > JSON_INTEGER_DIGITS_MAX:
        _refuse("body", f"holds an integer of more than {JSON_INTEGER_DIGITS_MAX} digits")
    return int(digits)


def _float(text: str) -> float:
    value = float(text) if len(text) <= JSON_NUMBER_CHARS_MAX else math.inf
    if not math.isfinite(value):
        _refuse("body", "holds a number too long or too large")
    return value


def _constant(name: str) -> NoReturn:
    _refuse("body", f"holds {name}, which is not JSON")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                _refuse(_name(key), "is given twice")
            seen.add(key)
    return result


def _name(key: str) -> str:
    """A key as an error may name it (it may be what was wrong)."""
    return key if len(key) <= JSON_KEY_CHARS_MAX and unsafe_character(key) is None else "body"


def _check_tree(root: Any) -> None:
    """Depth, string lengths and characters of every key and value."""
    stack: list[tuple[Any, str, str, int]] = [(root, "body", "body", 1)]
    while stack:
        value, path, key, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value, path, multiline=key in MULTILINE_FIELDS)
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > JSON_DEPTH_MAX:
            _refuse("body", f"is nested deeper than {JSON_DEPTH_MAX} levels")
        if isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", key, depth + 1) for i, item in enumerate(value))
            continue
        for name, item in value.items():
            if len(name) > JSON_KEY_CHARS_MAX:
                _refuse(path, f"has a key longer than {JSON_KEY_CHARS_MAX} characters")
            bad = unsafe_character(name)
            if bad is not None:
                _refuse(path, f"has a key holding the character {bad}")
            child = name if path == "body" else f"{path}.{name}"
            stack.append((item, child, name, depth + 1))


def _check_text(text: str, path: str, *, multiline: bool) -> None:
    if len(text) > JSON_STRING_CHARS_MAX:
        _refuse(path, f"is longer than {JSON_STRING_CHARS_MAX} characters")
    bad = unsafe_character(text, multiline=multiline)
    if bad is not None:
        _refuse(path, f"holds the character {bad}, which text here may not hold")
