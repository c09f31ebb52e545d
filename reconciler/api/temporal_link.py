"""A lazily connected Temporal client for the API.

The API must answer lookups while Temporal is down, so it never needs
Temporal to start: it connects on first use, and a failed connection is
retried on a later request (not more often than every few seconds).
"""

from __future__ import annotations

import asyncio
import time

import structlog
from temporalio.client import Client
from temporalio.service import RPCError, TLSConfig

log = structlog.get_logger(__name__)

RETRY_AFTER_SECONDS = 3.0
CONNECT_TIMEOUT_SECONDS = 3.0


class TemporalLink:
    def __init__(
        self,
        address: str,
        namespace: str,
        connect_timeout_seconds: float = CONNECT_TIMEOUT_SECONDS,
        tls: TLSConfig | bool = False,
    ) -> None:
        self._connect_timeout_seconds = connect_timeout_seconds
        self._tls = tls
        self._address = address
        self._namespace = namespace
        self._client: Client | None = None
        self._failed_at = 0.0
        self._lock = asyncio.Lock()

    async def client(self) -> Client | None:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is not None:
                return self._client
            if time.monotonic() - self._failed_at < RETRY_AFTER_SECONDS:
                return None
            try:
                self._client = await asyncio.wait_for(
                    Client.connect(self._address, namespace=self._namespace, tls=self._tls),
                    self._connect_timeout_seconds,
                )
            except (RPCError, OSError, TimeoutError, RuntimeError) as err:
                self._failed_at = time.monotonic()
                log.warning("temporal.unavailable", address=self._address, error=str(err))
                return None
            return self._client
