"""Reading request parameters: path ids, whole numbers, paging, dates, UUIDs.

Strict on purpose. A number is ASCII digits only: ``str.isdigit`` also says
yes to '²' (which ``int`` refuses with an exception, a 500) and to full-width
'１' (which ``int`` reads as 1). No sign, space, prefix or underscore; never
more digits than the bound has (``int`` of a 5,000-digit string costs time and
then raises). A date is ``YYYY-MM-DD`` in ASCII between ``DATE_MIN`` and
``DATE_MAX`` (``date.fromisoformat`` also reads ``20240101`` and week dates).

Before any handler runs, ``screen_request`` refuses (400 naming it) a path
or query parameter over ``PARAM_CHARS_MAX`` characters or holding a
character ``domain.text.unsafe_character`` refuses (NUL, controls, line
breaks, zero-width and bidirectional-override characters; a non-UTF-8
``%xx`` reads as U+FFFD, which is allowed and simply matches nothing), and a
header the service reads (``Authorization``, ``Idempotency-Key``, the
webhook's) that is not printable ASCII: a non-UTF-8 byte in a header
arrives as a lone surrogate, which cannot be hashed or stored.

A bad value raises ``ValidationError`` naming the parameter, which the error
middleware answers with 400 ``{"error": {"code", "message", "field"}}``. An
empty query value counts as absent (a form sends ``cursor=`` for "none").
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final
from uuid import UUID

from aiohttp import web

from bank_adapters.wire import (
    WEBHOOK_NONCE_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
)
from domain.business_time import DATE_MAX, DATE_MIN
from domain.formats import RECEIPT_SERIES_RE
from domain.text import unsafe_character
from ledger.core.errors import ValidationError
from reconciler.api.problems import ApiError

ID_MAX: Final = 10**18 - 1
PAGE_SIZE_DEFAULT: Final = 50
_DATE_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_UUID_LENGTH_MAX: Final = len("urn:uuid:") + 36
# Longer than any id, date, decision number or token a route takes.
PARAM_CHARS_MAX: Final = 500
_ASCII_HEADERS: Final = (
    "Idempotency-Key",
    WEBHOOK_NONCE_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
)


def screen_request(request: web.Request) -> None:
    """Refuse what no route accepts (see the module's docstring)."""
    authorization = request.headers.get("Authorization")
    if authorization is not None and not _printable_ascii(authorization):
        raise ApiError(401, "unauthorized", "the Authorization header must be printable ASCII")
    for name in _ASCII_HEADERS:
        value = request.headers.get(name)
        if value is not None and not _printable_ascii(value):
            raise ValidationError(name, "header must be printable ASCII")
    for source in (request.match_info, request.query):
        for name, value in source.items():
            _screen_param(name, value)


def _printable_ascii(value: str) -> bool:
    return value.isascii() and value.isprintable()


def _screen_param(name: str, value: str) -> None:
    if len(name) > PARAM_CHARS_MAX or unsafe_character(name) is not None:
        raise ValidationError("query", "has a parameter name that is too long or unprintable")
    if len(value) > PARAM_CHARS_MAX:
        raise ValidationError(name, f"is longer than {PARAM_CHARS_MAX} characters")
    bad = unsafe_character(value)
    if bad is not None:
        raise ValidationError(name, f"holds the character {bad}, which it may not hold")


def strict_query(request: web.Request, known: frozenset[str]) -> None:
    """Refuse (400 naming it) a query parameter the route does not take, or
    one given twice: a typo or a smuggled second value is not ignored."""
    for name in request.query:
        if name not in known:
            raise ValidationError(name, f"is not a parameter here ({', '.join(sorted(known))})")
        if len(request.query.getall(name)) > 1:
            raise ValidationError(name, "is given more than once")


def whole_number(raw: str, name: str, low: int, high: int) -> int:
    """``raw`` as an int in ``low..high`` (both ≥ 0), or a 400 naming ``name``."""
    assert 0 <= low <= high, (low, high)
    if not (raw.isascii() and raw.isdigit() and len(raw) <= len(str(high))):
        raise ValidationError(name, f"must be a whole number in {low}..{high}")
    value = int(raw)
    if not low <= value <= high:
        raise ValidationError(name, f"must be a whole number in {low}..{high}")
    return value


def path_id(request: web.Request, name: str) -> int:
    """A database id from the path (0 is read, and simply found nowhere)."""
    return whole_number(request.match_info[name], name, 0, ID_MAX)


def path_number(request: web.Request, name: str, low: int, high: int) -> int:
    return whole_number(request.match_info[name], name, low, high)


def path_series(request: web.Request, name: str = "series") -> str:
    """A receipt series from the path: ``[A-Z0-9-]{1,40}``."""
    series = request.match_info[name]
    if not RECEIPT_SERIES_RE.fullmatch(series):
        raise ValidationError(name, "must be 1-40 capital letters, digits or '-'")
    return series


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    return default if not raw else whole_number(raw, name, low, high)


def query_optional_int(request: web.Request, name: str, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    return None if not raw else whole_number(raw, name, low, high)


def page_limit(request: web.Request, maximum: int, default: int = PAGE_SIZE_DEFAULT) -> int:
    """The ``limit`` of a page: 1..``maximum``."""
    return query_int(request, "limit", default, 1, maximum)


def cursor_before(request: web.Request) -> int | None:
    """``cursor`` of a newest-first listing: the id to list below."""
    return query_optional_int(request, "cursor", 1, 10**18)


def cursor_after(request: web.Request) -> int:
    """``cursor`` of an oldest-first listing: the id to list above (0: from the start)."""
    return query_int(request, "cursor", 0, 0, 10**18)


def query_after_id(request: web.Request) -> int:
    return query_int(request, "after_id", 0, 0, 10**18)


def parse_date(value: object, name: str) -> date:
    """A ``YYYY-MM-DD`` date within ``DATE_MIN``..``DATE_MAX``."""
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        raise ValidationError(name, "must be a date YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValidationError(name, "must be a date YYYY-MM-DD") from None
    if not DATE_MIN <= day <= DATE_MAX:
        raise ValidationError(name, f"must be between {DATE_MIN} and {DATE_MAX}")
    return day


def path_uuid(request: web.Request, name: str, what: str) -> UUID:
    """A UUID from the path, in any of the ASCII spellings ``UUID`` reads."""
    raw = request.match_info[name]
    if not raw.isascii() or len(raw) > _UUID_LENGTH_MAX:
        raise ValidationError(name, f"is not {what} (UUID)")
    try:
        return UUID(raw)
    except ValueError:
        raise ValidationError(name, f"is not {what} (UUID)") from None
