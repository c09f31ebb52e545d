"""HTTP to one bank: the one call path both adapters use. It owns the split
timeouts, the circuit breaker, the response size bound, the metrics, and the
classification of a failed call.

How a failed HTTP call is classified (``BankHttp.request``):

* connection refused, DNS failure, connect timeout, circuit open: the request
  bytes were never written, so ``NotSentError`` (→ ``LinkDown``);
* anything after the connection was made (read timeout, connection dropped,
  truncated body, overall deadline): the bank may have acted, so
  ``NoAnswerError`` (→ ``OutcomeUnknown``).

``BankHttp.call`` turns those two into results for a money or status call;
``BankHttp.measured`` records the outcome of a call that raises instead
(statements, history pages); ``statement`` and ``health`` are the same for
every bank but for the path and the parser. What a bank's answer *means*
stays in each adapter (its own exhaustive ``match``).

The ``ClientSession`` is injected; this module never creates one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, TypeVar

import aiohttp

from bank_adapters.breaker import CircuitBreaker
from bank_adapters.types import (
    BankResult,
    BankUnavailableError,
    Declined,
    HealthStatus,
    LinkDown,
    NotFound,
    OutcomeUnknown,
    ParsedStatement,
    Pending,
    Statement,
    StatementNotAvailableError,
    StatusResult,
    Succeeded,
)
from bank_adapters.wire import HEALTH_PATH
from domain.formats import BANK_ID_RE
from observability import metrics

RESPONSE_BYTES_MAX_DEFAULT: Final = 256 * 1024
# Statuses by which a bank refuses a money request before doing anything.
REFUSED_STATUSES: Final = frozenset({400, 401, 403, 413, 415})
CIRCUIT_OPEN_DETAIL: Final = "circuit breaker open: not sent"

R = TypeVar("R", bound=StatusResult)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Split on purpose: a connect timeout means nothing was sent, a read
    timeout means the bank may have acted. ``total_seconds`` bounds a bank
    that trickles its answer byte by byte."""

    connect_seconds: float = 3.0
    read_seconds: float = 10.0
    total_seconds: float = 30.0

    def __post_init__(self) -> None:
        assert 0 < self.connect_seconds <= self.total_seconds, self
        assert 0 < self.read_seconds <= self.total_seconds, self

    def client_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=self.total_seconds,
            connect=self.connect_seconds,
            sock_connect=self.connect_seconds,
            sock_read=self.read_seconds,
        )


class NotSentError(Exception):
    """The request provably never left: no connection was made."""

    def __init__(self, detail: str, *, circuit_open: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.circuit_open = circuit_open


class NoAnswerError(Exception):
    """The request may have reached the bank but no usable answer came back."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    body: bytes
    content_type: str


def record_call(bank_id: str, operation: str, outcome: str, started: float) -> None:
    assert operation in metrics.BANK_OPERATIONS, operation
    assert outcome in metrics.BANK_OUTCOMES, outcome
    metrics.bank_request_duration_seconds.labels(
        bank=bank_id, operation=operation, outcome=outcome
    ).observe(time.perf_counter() - started)


def outcome_label(result: StatusResult) -> str:
    """The ``outcome`` metric label of a result."""
    match result:
        case Succeeded():
            return "succeeded"
        case Declined():
            return "declined"
        case Pending():
            return "pending"
        case OutcomeUnknown():
            return "outcome_unknown"
        case LinkDown(detail=detail):
            return "circuit_open" if detail == CIRCUIT_OPEN_DETAIL else "link_down"
        case NotFound():
            return "not_found"


@dataclass(slots=True)
class Measure:
    """The ``outcome`` label a measured operation will be recorded with."""

    outcome: str = "error"


class BankHttp:
    """HTTP to one bank through an injected session, with the breaker, split
    timeouts and bounded bodies."""

    def __init__(
        self,
        bank_id: str,
        base_url: str,
        session: aiohttp.ClientSession,
        *,
        timeouts: Timeouts,
        breaker: CircuitBreaker,
        response_bytes_max: int = RESPONSE_BYTES_MAX_DEFAULT,
    ) -> None:
        if not BANK_ID_RE.fullmatch(bank_id):
            raise ValueError(f"bank id must match {BANK_ID_RE.pattern}, got {bank_id!r}")
        self.bank_id = bank_id
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.timeouts = timeouts
        self.breaker = breaker
        self.response_bytes_max = response_bytes_max

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        response_bytes_max: int | None = None,
        use_breaker: bool = True,
    ) -> HttpReply:
        """Send one request. Raises ``NotSentError`` or ``NoAnswerError``;
        any HTTP status, 5xx included, is returned to the caller."""
        # Behind a half-open trial, wait for it as long as a connection may
        # take: a link that answers within that is back for everyone.
        if use_breaker and not await self.breaker.acquire(self.timeouts.connect_seconds):
            raise NotSentError(CIRCUIT_OPEN_DETAIL, circuit_open=True)
        limit = response_bytes_max or self.response_bytes_max
        try:
            reply = await self._send(method, path, headers, json_body, params, limit)
        except (NotSentError, NoAnswerError):
            if use_breaker:
                self.breaker.record_failure()
            raise
        except BaseException:
            if use_breaker:
                self.breaker.record_abandoned()
            raise
        if use_breaker:
            if reply.status >= 500:
                self.breaker.record_failure()
            else:
                self.breaker.record_success()
        return reply

    async def call(
        self, operation: str, attempt: Callable[[], Awaitable[R]]
    ) -> R | LinkDown | OutcomeUnknown:
        """Run ``attempt`` (requests and the reading of their answers) as one
        measured operation that never raises for link trouble: never sent is
        ``LinkDown``, no usable answer ``OutcomeUnknown``."""
        started = time.perf_counter()
        result: R | LinkDown | OutcomeUnknown
        try:
            result = await attempt()
        except NotSentError as exc:
            result = LinkDown(exc.detail)
        except NoAnswerError as exc:
            result = OutcomeUnknown(exc.detail)
        record_call(self.bank_id, operation, outcome_label(result), started)
        return result

    async def exchange(
        self,
        operation: str,
        method: str,
        path: str,
        read: Callable[[HttpReply], R],
        *,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> R | LinkDown | OutcomeUnknown:
        """One request whose answer ``read`` maps to a result (see ``call``)."""

        async def attempt() -> R:
            return read(await self.request(method, path, headers=headers, json_body=json_body))

        return await self.call(operation, attempt)

    @contextlib.contextmanager
    def measured(self, operation: str) -> Iterator[Measure]:
        """Record the duration of an operation that raises: its outcome is
        what the caller set on the ``Measure`` ("error" until then), or the
        transport failure's label; the exceptions pass through."""
        measure = Measure()
        started = time.perf_counter()
        try:
            yield measure
        except NotSentError as exc:
            measure.outcome = "circuit_open" if exc.circuit_open else "link_down"
            raise
        except NoAnswerError:
            measure.outcome = "outcome_unknown"
            raise
        finally:
            record_call(self.bank_id, operation, measure.outcome, started)

    async def statement(
        self,
        statement_date: date,
        path: str,
        parse: Callable[[bytes], ParsedStatement],
        *,
        bytes_max: int,
        params: Mapping[str, str] | None = None,
    ) -> Statement:
        """GET and parse one day's statement; raises ``BankAdapterError``s."""
        try:
            with self.measured("fetch_statement") as measure:
                reply = await self.request("GET", path, params=params, response_bytes_max=bytes_max)
                if reply.status == 404:
                    measure.outcome = "not_found"
                    raise StatementNotAvailableError(self.bank_id, statement_date)
                if reply.status != 200:
                    measure.outcome = "outcome_unknown" if reply.status >= 500 else "error"
                    raise BankUnavailableError(
                        self.bank_id,
                        f"statement request answered HTTP {reply.status}",
                        link_down=False,
                    )
                parsed = parse(reply.body)
                measure.outcome = "ok"
                return Statement(self.bank_id, statement_date, parsed)
        except NotSentError as exc:
            raise BankUnavailableError(self.bank_id, exc.detail, link_down=True) from None
        except NoAnswerError as exc:
            raise BankUnavailableError(self.bank_id, exc.detail, link_down=False) from None

    async def health(self) -> HealthStatus:
        """GET the bank's health endpoint, bypassing the breaker (the prober
        must see the link come back while the breaker is open), and let a
        good answer move an open breaker to half-open."""
        started = time.perf_counter()
        try:
            with self.measured("health") as measure:
                reply = await self.request("GET", HEALTH_PATH, use_breaker=False)
                elapsed = time.perf_counter() - started
                if reply.status != 200:
                    return HealthStatus(False, f"health answered HTTP {reply.status}", elapsed)
                measure.outcome = "ok"
        except (NotSentError, NoAnswerError) as exc:
            return HealthStatus(False, exc.detail, time.perf_counter() - started)
        self.breaker.record_probe_success()
        return HealthStatus(True, "ok", elapsed)

    async def _send(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None,
        json_body: Any,
        params: Mapping[str, str] | None,
        limit: int,
    ) -> HttpReply:
        url = self.base_url + path
        try:
            async with self.session.request(
                method,
                url,
                headers=dict(headers or {}),
                json=json_body,
                params=dict(params or {}),
                timeout=self.timeouts.client_timeout(),
                allow_redirects=False,
            ) as response:
                if response.content_length is not None and response.content_length > limit:
                    raise NoAnswerError(f"response of {response.content_length} bytes over {limit}")
                body = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > limit:
                        raise NoAnswerError(f"response body over {limit} bytes")
                return HttpReply(response.status, bytes(body), response.content_type)
        # Order matters: connector errors are OSErrors too, and a connect
        # timeout is a timeout too; both are "never sent".
        except (
            aiohttp.ClientConnectorError,
            aiohttp.ConnectionTimeoutError,
            aiohttp.InvalidURL,
        ) as exc:
            raise NotSentError(f"{type(exc).__name__}: {exc}") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise NoAnswerError(f"{type(exc).__name__}: {exc}") from None
        except asyncio.IncompleteReadError as exc:
            raise NoAnswerError(f"incomplete response: {exc}") from None


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None if it is anything else (a
    malformed answer is data, not an exception, at this edge)."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def money_result(reply: HttpReply, answered: Callable[[HttpReply], BankResult]) -> BankResult:
    """A money call's reply: 200/201 is the bank's answer (read by ``answered``),
    a refusal status a decline; after any other status the outcome is unknown."""
    if reply.status in (200, 201):
        return answered(reply)
    if reply.status in REFUSED_STATUSES:
        code = error_code(reply.body) or f"http_{reply.status}"
        return Declined(
            f"the bank refused the request (HTTP {reply.status}, {code})", code, party="ours"
        )
    return OutcomeUnknown(f"HTTP {reply.status} ({error_code(reply.body) or 'no error code'})")


def error_code(body: bytes) -> str:
    """``error.code`` of a ``{"error": {"code", "message"}}`` body, or ""."""
    value = json_object(body)
    error = value.get("error") if value is not None else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else ""


def optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
