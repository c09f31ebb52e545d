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

from bank_adapters.breaker import BreakerConfig
from bank_adapters.http import CIRCUIT_OPEN_DETAIL, RESPONSE_BYTES_MAX_DEFAULT, Timeouts
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
