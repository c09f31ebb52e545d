"""The API's cache of verified tokens: entries expire after the TTL (so a
revocation is seen within it) and the cache never holds more than its bound."""

from __future__ import annotations

from ledger.access import Principal
from reconciler.api.auth import TokenCache

ALICE = Principal("alice", "officer")
BOB = Principal("bob", "portal")


class FakeClock:
    def __init__(self) -> None:
        self.now_seconds = 1000.0

    def __call__(self) -> float:
        return self.now_seconds


def test_entry_is_trusted_until_the_ttl_then_forgotten() -> None:
    clock = FakeClock()
    cache = TokenCache(ttl_seconds=5.0, entries_max=10, clock=clock)
    assert cache.get("a") is None
    cache.put("a", ALICE)
    clock.now_seconds += 4.9
    assert cache.get("a") == ALICE
    clock.now_seconds += 0.1
    assert cache.get("a") is None
    assert len(cache) == 0


def test_use_does_not_extend_an_entry_only_a_new_verification_does() -> None:
    clock = FakeClock()
    cache = TokenCache(ttl_seconds=5.0, entries_max=10, clock=clock)
    cache.put("a", ALICE)
    for _ in range(4):
        clock.now_seconds += 1.0
        assert cache.get("a") == ALICE
    clock.now_seconds += 1.0
    assert cache.get("a") is None
    cache.put("a", ALICE)
    clock.now_seconds += 4.0
    assert cache.get("a") == ALICE


def test_bounded_the_oldest_verification_goes_first() -> None:
    clock = FakeClock()
    cache = TokenCache(ttl_seconds=60.0, entries_max=3, clock=clock)
    for digest in ("a", "b", "c"):
        cache.put(digest, ALICE)
        clock.now_seconds += 1.0
    cache.put("a", BOB)  # verified again: now the newest
    cache.put("d", BOB)
    assert len(cache) == 3
    assert cache.get("b") is None
    assert cache.get("a") == BOB
    assert cache.get("c") == ALICE
    assert cache.get("d") == BOB
    for i in range(100):
        cache.put(f"x{i}", ALICE)
    assert len(cache) == 3
