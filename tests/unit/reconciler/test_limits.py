"""Per-client token buckets in a bounded table."""

from __future__ import annotations

from aiohttp.test_utils import make_mocked_request

from reconciler.api.limits import Rate, RateLimiter, RateLimits, client_address


class Clock(list[float]):
    """``clock()`` is the time; ``clock[0] += 10`` moves it."""

    def __call__(self) -> float:
        return self[0]


def test_a_client_gets_its_burst_then_waits_for_the_rate() -> None:
    clock = Clock([1000.0])
    limiter = RateLimiter(Rate(per_minute=6, burst=3), clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == 10.0  # one token every 10 s
    assert limiter.take("b") == 0.0  # another client has its own bucket
    clock[0] += 10
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0


def test_the_table_is_bounded_and_forgets_the_client_seen_longest_ago() -> None:
    clock = Clock([1000.0])
    limiter = RateLimiter(Rate(per_minute=1, burst=1), clients_max=100, clock=clock)
    assert limiter.take("old") == 0.0
    for i in range(1000):
        limiter.take(f"10.0.{i // 256}.{i % 256}")
        assert len(limiter) <= 100
    assert limiter.take("old") == 0.0  # forgotten: a full bucket again


def test_limits_by_name_share_the_default_rate() -> None:
    limits = RateLimits(Rate(1, 1), {"login": Rate(60, 5)})
    assert limits.limiter("login").rate == Rate(60, 5)
    assert limits.limiter("public").rate == Rate(1, 1)
    assert limits.limiter("public") is limits.limiter("public")


def test_a_client_is_its_address_and_an_ipv6_client_its_64() -> None:
    def remote(address: str) -> str:
        request = make_mocked_request("GET", "/", headers={"X-Forwarded-For": "1.2.3.4"})
        return client_address(request.clone(remote=address))

    assert remote("203.0.113.7") == "203.0.113.7"
    assert remote("2001:db8:1:2:aaaa::1") == remote("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert remote("::ffff:203.0.113.7") == "203.0.113.7"
