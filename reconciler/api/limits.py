"""Per-client rate limits for the public routes (and any route that asks).

A ``RateLimiter`` is a token bucket per client in a table of at most
``clients_max`` entries: when full, the client seen longest ago is
forgotten (it starts again with a full bucket), so memory stays bounded
whatever the number of addresses. A handler calls ``throttle(request,
name)``; over the limit it answers 429 with ``Retry-After``.

The client is the connection's peer address (an IPv6 address by its /64,
the block one subscriber gets), never ``X-Forwarded-For``, which anyone can
write. Behind a reverse proxy every client shares the proxy's address: rate
limit there too, or these limits apply to all clients together.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from reconciler.api.problems import ApiError

CLIENTS_MAX_DEFAULT: Final = 10_000


@dataclass(frozen=True)
class Rate:
    per_minute: int
    burst: int


class RateLimiter:
    def __init__(
        self,
        rate: Rate,
        clients_max: int = CLIENTS_MAX_DEFAULT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert rate.per_minute > 0, rate
        assert rate.burst > 0, rate
        assert clients_max > 0, clients_max
        self.rate = rate
        self.clients_max = clients_max
        self._per_second = rate.per_minute / 60.0
        self._clock = clock
        # client -> (tokens, at); least recently seen first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, client: str) -> float:
        """Spend one token of ``client``: 0.0 if allowed, else the seconds
        until the next token."""
        now = self._clock()
        tokens, at = self._buckets.pop(client, (float(self.rate.burst), now))
        tokens = min(float(self.rate.burst), tokens + (now - at) * self._per_second)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self.clients_max:
            self._buckets.popitem(last=False)
        return 0.0 if allowed else (1.0 - tokens) / self._per_second


class RateLimits:
    """The named limiters of one app; a name without a rate of its own
    uses ``default``."""

    def __init__(
        self,
        default: Rate,
        rates: Mapping[str, Rate] | None = None,
        clients_max: int = CLIENTS_MAX_DEFAULT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._default = default
        self._rates = dict(rates or {})
        self._clients_max = clients_max
        self._clock = clock
        self._limiters: dict[str, RateLimiter] = {}

    def limiter(self, name: str) -> RateLimiter:
        limiter = self._limiters.get(name)
        if limiter is None:
            rate = self._rates.get(name, self._default)
            limiter = RateLimiter(rate, self._clients_max, self._clock)
            self._limiters[name] = limiter
        return limiter


RATE_LIMITS: Final = web.AppKey("rate_limits", RateLimits)


def client_address(request: web.Request) -> str:
    """Who the limits count: the peer address, an IPv6 one by its /64."""
    remote = request.remote or "unknown"
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return remote
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def throttle(request: web.Request, name: str) -> None:
    """429 with ``Retry-After`` when this client is over the ``name`` limit."""
    wait = request.app[RATE_LIMITS].limiter(name).take(client_address(request))
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise ApiError(
            429,
            "too_many_requests",
            f"too many requests; try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )
