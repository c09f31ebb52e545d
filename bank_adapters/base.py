"""The ``BankAdapter`` protocol and what every adapter shares: timeouts, the
per-bank circuit breaker, and one HTTP call path that tells "never sent" from
"maybe done" and records the metrics.

How a failed HTTP call is classified (``BankHttp.request``):

* connection refused, DNS failure, connect timeout, circuit open: the request
  bytes were never written, so ``NotSentError`` (→ ``LinkDown``);
* anything after the connection was made (read timeout, connection dropped,
  truncated body, overall deadline): the bank may have acted, so
  ``NoAnswerError`` (→ ``OutcomeUnknown``).

The ``ClientSession`` is injected; this module never creates one.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Final, Protocol

import aiohttp

from bank_adapters.statements.common import DEFAULT_LIMITS, StatementLimits
from bank_adapters.types import (
    BankResult,
    DebitRequest,
    Declined,
    HealthStatus,
    LinkDown,
    NotFound,
    OutcomeUnknown,
    Pending,
    RefundRequest,
    Statement,
    StatementFormat,
    StatusResult,
    Succeeded,
)
from domain.formats import BANK_ID_RE
from observability import metrics

RESPONSE_BYTES_MAX_DEFAULT: Final = 256 * 1024
STATEMENT_BYTES_MAX_DEFAULT: Final = 64 * 1024 * 1024


class BankAdapter(Protocol):
    """One bank. Money operations return a result and never raise for bank or
    link trouble; ``fetch_statement`` raises ``BankAdapterError`` subclasses."""

    @property
    def bank_id(self) -> str: ...

    @property
    def protocol(self) -> str: ...

    async def initiate_debit(self, request: DebitRequest) -> BankResult: ...

    async def get_status(self, idempotency_key: str) -> StatusResult: ...

    async def refund(self, request: RefundRequest) -> BankResult: ...

    async def get_refund_status(self, idempotency_key: str) -> StatusResult: ...

    async def fetch_statement(self, statement_date: date) -> Statement: ...

    async def health(self) -> HealthStatus: ...


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


# --- circuit breaker ---------------------------------------------------------


class CircuitState(StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    failures_to_open: int = 5
    open_seconds: float = 10.0

    def __post_init__(self) -> None:
        assert self.failures_to_open >= 1, self
        assert self.open_seconds > 0, self


class CircuitBreaker:
    """Per-bank breaker. Closed: calls go through; ``failures_to_open``
    consecutive link failures open it. Open: calls are refused without
    sending (the caller gets ``LinkDown``) for ``open_seconds``, then one
    trial call is let through (half-open); its success closes the breaker,
    its failure opens it again. A good health probe while open moves it to
    half-open at once, so recovery does not wait out the timer.

    Only link-level failures count (no connection, no answer, 5xx); a
    decline is a healthy bank saying no.

    ``acquire`` is ``try_acquire`` for callers that may wait: while a
    half-open trial is in flight they wait (bounded) for its verdict instead
    of being refused, so the calls queued behind a successful trial (a burst
    of status checks when a link comes back) go out at once; after a failed
    trial they are refused as before. Still one trial at a time.
    """

    def __init__(
        self,
        bank_id: str,
        config: BreakerConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bank_id = bank_id
        self._config = config or BreakerConfig()
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        # Set when a trial reports (replaced by a fresh event for the next).
        self._trial_over = asyncio.Event()
        self._export()

    @property
    def state(self) -> CircuitState:
        if (
            self._state is CircuitState.OPEN
            and self._clock() - self._opened_at >= self._config.open_seconds
        ):
            self._set(CircuitState.HALF_OPEN)
        return self._state

    def try_acquire(self) -> bool:
        """Whether a call may be sent now. A True in half-open state is the
        single trial: the caller must report it with ``record_*``."""
        match self.state:
            case CircuitState.CLOSED:
                return True
            case CircuitState.OPEN:
                return False
            case CircuitState.HALF_OPEN:
                if self._trial_in_flight:
                    return False
                self._trial_in_flight = True
                return True

    async def acquire(self, wait_seconds_max: float) -> bool:
        """Like ``try_acquire``, but behind a half-open trial in flight wait
        up to ``wait_seconds_max`` for its verdict."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds_max
        while not self.try_acquire():
            remaining = deadline - loop.time()
            if self._state is not CircuitState.HALF_OPEN or remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._trial_over.wait(), remaining)
            except TimeoutError:
                return False
        return True

    def _end_trial(self) -> None:
        if self._trial_in_flight:
            self._trial_in_flight = False
            self._trial_over.set()
            self._trial_over = asyncio.Event()

    def record_success(self) -> None:
        self._end_trial()
        self._failures = 0
        if self._state is not CircuitState.CLOSED:
            self._set(CircuitState.CLOSED)

    def record_failure(self) -> None:
        self._end_trial()
        self._failures += 1
        if self._state is CircuitState.HALF_OPEN or (
            self._state is CircuitState.CLOSED and self._failures >= self._config.failures_to_open
        ):
            self._opened_at = self._clock()
            self._set(CircuitState.OPEN)

    def record_abandoned(self) -> None:
        """The call was cancelled before it told us anything."""
        self._end_trial()

    def record_probe_success(self) -> None:
        if self._state is CircuitState.OPEN:
            self._set(CircuitState.HALF_OPEN)

    def _set(self, state: CircuitState) -> None:
        self._state = state
        self._export()

    def _export(self) -> None:
        metrics.circuit_breaker_state.labels(bank=self._bank_id).set(
            metrics.CIRCUIT_STATES[self._state.value]
        )


@dataclass(frozen=True, slots=True)
class AdapterOptions:
    """Tunables of an adapter; the defaults suit production. The VietQR
    fields are ignored by the REST adapter."""

    timeouts: Timeouts = Timeouts()
    breaker: BreakerConfig = BreakerConfig()
    response_bytes_max: int = RESPONSE_BYTES_MAX_DEFAULT
    statement_limits: StatementLimits = DEFAULT_LIMITS
    statement_format: StatementFormat = StatementFormat.MT940
    history_lookback_days: int = 7
    history_page_size: int = 200
    history_pages_max: int = 50
    qr_content_length_max: int = 50

    def __post_init__(self) -> None:
        assert self.response_bytes_max > 0
        assert 1 <= self.history_lookback_days <= 62
        assert 1 <= self.history_page_size <= 500
        assert 1 <= self.history_pages_max <= 1000
        assert 20 <= self.qr_content_length_max <= 99


# --- HTTP --------------------------------------------------------------------


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


CIRCUIT_OPEN_DETAIL: Final = "circuit breaker open: not sent"


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


def error_code(body: bytes) -> str:
    """``error.code`` of a ``{"error": {"code", "message"}}`` body, or ""."""
    value = json_object(body)
    error = value.get("error") if value is not None else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else ""


def optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
