"""VietQR status checks that run at the same time share history scans, and a
check never takes the answer of a scan that began before it asked."""

from __future__ import annotations

import asyncio

import pytest

from bank_adapters.http import NoAnswerError
from bank_adapters.types import NotFound, StatusResult, Succeeded
from bank_adapters.vietqr_bank import HistorySearches


class FakeHistory:
    """A scan per call, held open until the test releases it."""

    def __init__(self) -> None:
        self.scans: list[frozenset[str]] = []
        self.release = asyncio.Event()
        self.booked: set[str] = set()
        self.error: Exception | None = None

    async def scan(self, references: frozenset[str]) -> dict[str, StatusResult]:
        self.scans.append(references)
        booked_at_start = set(self.booked)
        await self.release.wait()
        self.release.clear()
        if self.error is not None:
            raise self.error
        return {
            r: Succeeded(f"QR-{r}") if r in booked_at_start else NotFound("not in the history")
            for r in references
        }


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_checks_asked_during_a_scan_share_the_next_one() -> None:
    history = FakeHistory()
    searches = HistorySearches(history.scan)
    first = asyncio.create_task(searches.find("A"))
    await _settle()
    later = [asyncio.create_task(searches.find(r)) for r in ("B", "C", "A")]
    await _settle()
    assert history.scans == [frozenset({"A"})]
    history.release.set()
    assert isinstance(await first, NotFound)
    await _settle()
    assert history.scans == [frozenset({"A"}), frozenset({"A", "B", "C"})]
    history.release.set()
    assert all(isinstance(r, NotFound) for r in await asyncio.gather(*later))


async def test_a_check_never_takes_an_older_scans_answer() -> None:
    """Booked after the first scan began: only a scan that starts after the
    question can see it, and that is the one the question gets."""
    history = FakeHistory()
    searches = HistorySearches(history.scan)
    first = asyncio.create_task(searches.find("A"))
    await _settle()
    history.booked.add("A")
    second = asyncio.create_task(searches.find("A"))
    await _settle()
    history.release.set()
    assert isinstance(await first, NotFound)
    await _settle()
    history.release.set()
    assert await second == Succeeded("QR-A")


async def test_a_failed_scan_fails_its_checks_and_the_next_check_scans_again() -> None:
    history = FakeHistory()
    history.error = NoAnswerError("connection reset")
    searches = HistorySearches(history.scan)
    checks = [asyncio.create_task(searches.find(r)) for r in ("A", "B")]
    await _settle()
    history.release.set()
    for check in checks:
        with pytest.raises(NoAnswerError):
            await check
    history.error = None
    history.booked.add("B")
    again = asyncio.create_task(searches.find("B"))
    await _settle()
    history.release.set()
    assert await again == Succeeded("QR-B")
    assert len(history.scans) == 2


async def test_a_cancelled_check_does_not_stop_the_others() -> None:
    history = FakeHistory()
    searches = HistorySearches(history.scan)
    gone = asyncio.create_task(searches.find("A"))
    stays = asyncio.create_task(searches.find("A"))
    await _settle()
    gone.cancel()
    await _settle()
    history.release.set()
    assert isinstance(await stays, NotFound)
    assert gone.cancelled()
