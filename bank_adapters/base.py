"""The ``BankAdapter`` protocol and the options every adapter takes.

The HTTP call path the adapters share is ``bank_adapters.http``, the
per-bank circuit breaker ``bank_adapters.breaker``; the names callers set an
adapter up with (``Timeouts``, ``BreakerConfig``, ``CIRCUIT_OPEN_DETAIL``)
are exported here too, so a caller needs only this module and ``types``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

import aiohttp

from bank_adapters.breaker import BreakerConfig, CircuitBreaker
from bank_adapters.http import (
    CIRCUIT_OPEN_DETAIL,
    RESPONSE_BYTES_MAX_DEFAULT,
    BankHttp,
    Timeouts,
)
from bank_adapters.statements.common import DEFAULT_LIMITS, StatementLimits
from bank_adapters.types import (
    BankResult,
    DebitRequest,
    HealthStatus,
    RefundRequest,
    Statement,
    StatementFormat,
    StatusResult,
)

__all__ = [
    "CIRCUIT_OPEN_DETAIL",
    "AdapterOptions",
    "BankAdapter",
    "BreakerConfig",
    "HttpAdapter",
    "Timeouts",
]


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
class AdapterOptions:
    """Tunables of an adapter; the defaults suit production. The VietQR
    fields are ignored by the REST adapter."""

    timeouts: Timeouts = field(default_factory=Timeouts)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
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


class HttpAdapter:
    """What both HTTP adapters share: their options, the one call path to
    their bank (with its breaker), and the health probe. Each subclass adds
    its protocol: paths, bodies and the mapping of the bank's answers."""

    def __init__(
        self,
        bank_id: str,
        base_url: str,
        session: aiohttp.ClientSession,
        *,
        options: AdapterOptions | None,
        breaker: CircuitBreaker | None,
    ) -> None:
        self._options = options or AdapterOptions()
        self._http = BankHttp(
            bank_id,
            base_url,
            session,
            timeouts=self._options.timeouts,
            breaker=breaker or CircuitBreaker(bank_id, self._options.breaker),
            response_bytes_max=self._options.response_bytes_max,
        )

    @property
    def bank_id(self) -> str:
        return self._http.bank_id

    @property
    def breaker(self) -> CircuitBreaker:
        return self._http.breaker

    async def health(self) -> HealthStatus:
        return await self._http.health()
