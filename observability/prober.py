"""The bank link prober: probes every bank on an interval, decides with
hysteresis whether its link is up or down, records outages and wakes the
payments that wait on a bank when its link comes back.

Pure asyncio. Everything it touches comes in through the constructor: one
health check per bank (the composition root wraps each adapter's
``health()``), an ``OutageStore``, an ``on_recovery`` callback and a clock.

Hysteresis: a link goes down after ``failures_to_down`` consecutive failed
probes and comes back after ``successes_to_up`` consecutive good ones, so a
link that flaps faster than that never opens (or closes) an outage per flap.
An outage starts at the first failed probe of the run that took the link
down, and ends at the first good probe of the run that brought it back.

The store is the memory across restarts: on start-up an outage still open
in the store is resumed (the link starts down) instead of opening a second
one. Store writes that fail (database down) are queued in order and retried
on every round, so a database outage never stops probing, the metrics or
the recovery callback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from observability import metrics
from observability.outages import Outage, OutageStore, check_bank

__all__ = [
    "Clock",
    "HealthCheck",
    "HealthResult",
    "LinkProber",
    "LinkStatus",
    "ProbeCallback",
    "ProbeResult",
    "ProberConfig",
    "RecoveryCallback",
]

HealthResult = bool | tuple[bool, str]
HealthCheck = Callable[[], Awaitable[HealthResult]]
RecoveryCallback = Callable[[str], Awaitable[None]]
# (bank, when the probe was sent, its result, how long it took in seconds):
# the console's link board shows the last one (``ledger.link_health``).
ProbeCallback = Callable[[str, datetime, "ProbeResult", float], Awaitable[None]]
Clock = Callable[[], datetime]

CAUSE_LENGTH_PROBE_MAX: Final = 500
_DEFAULT_DOWN_CAUSE: Final = "health check reported the link down"

_log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ProberConfig:
    interval_seconds: float = 5.0
    # While a link is down or a probe of it failed (it may be going down or
    # coming back), rounds come this often instead: the link's return is
    # seen, and its in-doubt payments receipted, seconds sooner. None: always
    # ``interval_seconds``.
    suspect_interval_seconds: float | None = None
    probe_timeout_seconds: float = 3.0
    failures_to_down: int = 3
    successes_to_up: int = 2
    store_timeout_seconds: float = 5.0
    recovery_timeout_seconds: float = 30.0
    recovery_attempts_max: int = 5
    # Outage writes kept while the store is unreachable. When full, the
    # oldest gap between two outages is dropped: they merge into one longer
    # outage rather than an outage being lost.
    pending_writes_max: int = 64

    def __post_init__(self) -> None:
        for name in (
            "interval_seconds",
            "probe_timeout_seconds",
            "store_timeout_seconds",
            "recovery_timeout_seconds",
        ):
            if not 0 < getattr(self, name) <= 3600:
                raise ValueError(f"{name} must be in (0, 3600]")
        suspect = self.suspect_interval_seconds
        if suspect is not None and not 0 < suspect <= self.interval_seconds:
            raise ValueError("suspect_interval_seconds must be in (0, interval_seconds]")
        for name in ("failures_to_down", "successes_to_up", "recovery_attempts_max"):
            if not 1 <= getattr(self, name) <= 1000:
                raise ValueError(f"{name} must be in [1, 1000]")
        if not 4 <= self.pending_writes_max <= 100_000:
            raise ValueError("pending_writes_max must be in [4, 100000]")


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    cause: str = ""


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """What the prober currently believes about one bank link."""

    bank: str
    up: bool
    # When the current state began; None if it has not changed since start-up.
    since: datetime | None
    consecutive_failures: int
    consecutive_successes: int
    last_probe_at: datetime | None
    last_cause: str
    # The open outage as stored; None when up, or when not yet written.
    outage: Outage | None
    store_writes_pending: int


@dataclass(frozen=True, slots=True)
class _OpenWrite:
    at: datetime
    cause: str


@dataclass(frozen=True, slots=True)
class _CloseWrite:
    at: datetime


@dataclass(slots=True)
class _Link:
    bank: str
    up: bool = True
    since: datetime | None = None
    failures: int = 0
    successes: int = 0
    streak_started_at: datetime | None = None
    streak_cause: str = ""
    last_probe_at: datetime | None = None
    last_cause: str = ""
    outage_started_at: datetime | None = None
    outage: Outage | None = None
    recovery_pending: bool = False
    recovery_attempts: int = 0
    pending: deque[_OpenWrite | _CloseWrite] = field(default_factory=deque)


class LinkProber:
    """Probe every bank each ``config.interval_seconds``.

    Run it with ``await prober.run()`` (typically as a task); ``stop()`` makes
    ``run()`` return after the round in progress, and cancelling the task
    works too. ``probe_once()`` runs a single round (tests, one-shot tools).
    """

    def __init__(
        self,
        checks: Mapping[str, HealthCheck],
        store: OutageStore,
        *,
        on_recovery: RecoveryCallback | None = None,
        on_probe: ProbeCallback | None = None,
        config: ProberConfig | None = None,
        clock: Clock = utc_now,
        heartbeat_component: str | None = "prober",
    ) -> None:
        if not checks:
            raise ValueError("the prober needs at least one bank")
        for bank in checks:
            check_bank(bank)
        self._checks = dict(checks)
        self._store = store
        self._on_recovery = on_recovery
        self._on_probe = on_probe
        self._config = config or ProberConfig()
        self._clock = clock
        self._heartbeat_component = heartbeat_component
        self._links = {bank: _Link(bank) for bank in self._checks}
        self._started = False
        self._stop = asyncio.Event()
        self._round_lock = asyncio.Lock()

    @property
    def config(self) -> ProberConfig:
        return self._config

    @property
    def banks(self) -> tuple[str, ...]:
        return tuple(self._links)

    def status(self) -> dict[str, LinkStatus]:
        return {
            bank: LinkStatus(
                bank=bank,
                up=link.up,
                since=link.since,
                consecutive_failures=link.failures,
                consecutive_successes=link.successes,
                last_probe_at=link.last_probe_at,
                last_cause=link.last_cause,
                outage=link.outage,
                store_writes_pending=len(link.pending),
            )
            for bank, link in self._links.items()
        }

    async def start(self) -> None:
        """Load the outages still open in the store and resume them.

        Raises whatever the store raises; ``run()`` retries it.
        """
        async with self._round_lock:
            await self._start_locked()

    async def _start_locked(self) -> None:
        if self._started:
            return
        open_outages = await asyncio.wait_for(
            self._store.open_outages(), self._config.store_timeout_seconds
        )
        for outage in open_outages:
            link = self._links.get(outage.bank)
            if link is None:
                _log.warning(
                    "open outage %s of unconfigured bank %s left as is", outage.id, outage.bank
                )
                continue
            link.up = False
            link.since = outage.started_at
            link.outage = outage
            link.outage_started_at = outage.started_at
            link.last_cause = outage.cause
            _log.info("resuming open outage %s of bank %s", outage.id, outage.bank)
        for bank, link in self._links.items():
            # Create every labelled series up front, so the first outage is
            # an increase from 0 rather than a series appearing at 1.
            metrics.bank_outages_total.labels(bank)
            metrics.bank_probe_total.labels(bank, "ok")
            metrics.bank_probe_total.labels(bank, "fail")
            metrics.bank_link_up.labels(bank).set(1 if link.up else 0)
        self._started = True

    async def run(self) -> None:
        """Probe until ``stop()`` is called (or the task is cancelled).

        A stopped prober stays stopped: ``stop()`` before ``run()`` makes it
        return at once, so a shutdown racing the start-up is not lost.
        """
        if self._stop.is_set():
            return
        while not self._started:
            try:
                await self.start()
            except Exception:
                _log.exception("cannot read open outages from the store; retrying")
                if await self._wait_for_stop(self._config.interval_seconds):
                    return
        while True:
            await self.probe_once()
            if await self._wait_for_stop(self.next_interval_seconds()):
                return

    def next_interval_seconds(self) -> float:
        """The wait before the next round: shorter while any link is down
        or has just failed a probe (``suspect_interval_seconds``)."""
        suspect = self._config.suspect_interval_seconds
        if suspect is not None and any(
            not link.up or link.failures > 0 for link in self._links.values()
        ):
            return suspect
        return self._config.interval_seconds

    def stop(self) -> None:
        self._stop.set()

    async def probe_once(self) -> None:
        """One round: probe every bank concurrently, apply the results,
        call recovery callbacks and flush outage writes."""
        async with self._round_lock:
            await self._start_locked()
            async with asyncio.TaskGroup() as tasks:
                for bank in self._links:
                    tasks.create_task(self._probe_bank(bank))
        if self._heartbeat_component is not None:
            metrics.process_heartbeat_timestamp_seconds.labels(self._heartbeat_component).set(
                self._clock().timestamp()
            )

    async def _wait_for_stop(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _probe_bank(self, bank: str) -> None:
        link = self._links[bank]
        at = self._clock()
        started = time.monotonic()
        result = await self._check(bank)
        took = time.monotonic() - started
        metrics.bank_probe_total.labels(bank, "ok" if result.ok else "fail").inc()
        self._apply(link, result, at)
        if link.recovery_pending:
            await self._call_recovery(link)
        await self._flush(link)
        await self._report_probe(bank, at, result, took)

    async def _report_probe(
        self, bank: str, at: datetime, result: ProbeResult, took: float
    ) -> None:
        """Hand the probe to ``on_probe``, bounded by the store timeout; a
        failure is logged and forgotten (the next probe reports again), so
        it never stops probing."""
        if self._on_probe is None:
            return
        try:
            await asyncio.wait_for(
                self._on_probe(bank, at, result, took), self._config.store_timeout_seconds
            )
        except Exception:
            _log.warning("could not record the probe of bank %s", bank, exc_info=True)

    async def _check(self, bank: str) -> ProbeResult:
        timeout_seconds = self._config.probe_timeout_seconds
        deadline = asyncio.timeout(timeout_seconds)
        try:
            async with deadline:
                raw = await self._checks[bank]()
        except Exception as exc:
            # Any error raised by a health check is, by definition, a failed probe.
            if deadline.expired():
                return ProbeResult(False, f"no answer within {timeout_seconds:g} s")
            return ProbeResult(False, _describe(exc))
        return _normalise(raw)

    def _apply(self, link: _Link, result: ProbeResult, at: datetime) -> None:
        """Advance the hysteresis state machine of one link."""
        link.last_probe_at = at
        if result.ok:
            if link.successes == 0:
                link.streak_started_at = at
            link.successes += 1
            link.failures = 0
            if not link.up and link.successes >= self._config.successes_to_up:
                self._link_came_up(link)
            return
        link.last_cause = result.cause
        if link.failures == 0:
            link.streak_started_at = at
            link.streak_cause = result.cause
        link.failures += 1
        link.successes = 0
        if link.up and link.failures >= self._config.failures_to_down:
            self._link_went_down(link)

    def _link_went_down(self, link: _Link) -> None:
        assert link.streak_started_at is not None
        started_at = link.streak_started_at
        link.up = False
        link.since = started_at
        link.outage_started_at = started_at
        link.recovery_pending = False
        self._enqueue(link, _OpenWrite(started_at, link.streak_cause))
        metrics.bank_link_up.labels(link.bank).set(0)
        metrics.bank_outages_total.labels(link.bank).inc()
        _log.warning("bank %s link down since %s: %s", link.bank, started_at, link.streak_cause)

    def _link_came_up(self, link: _Link) -> None:
        assert link.streak_started_at is not None
        assert link.outage_started_at is not None
        ended_at = max(link.streak_started_at, link.outage_started_at)
        duration_seconds = (ended_at - link.outage_started_at).total_seconds()
        link.up = True
        link.since = ended_at
        link.recovery_pending = self._on_recovery is not None
        link.recovery_attempts = 0
        self._enqueue(link, _CloseWrite(ended_at))
        metrics.bank_link_up.labels(link.bank).set(1)
        metrics.bank_outage_duration_seconds.labels(link.bank).observe(duration_seconds)
        _log.warning("bank %s link back at %s after %.0f s", link.bank, ended_at, duration_seconds)

    def _enqueue(self, link: _Link, write: _OpenWrite | _CloseWrite) -> None:
        link.pending.append(write)
        if len(link.pending) <= self._config.pending_writes_max:
            return
        # Drop the oldest (close, open) pair: two outages merge into one.
        for i in range(len(link.pending) - 1):
            if isinstance(link.pending[i], _CloseWrite) and isinstance(
                link.pending[i + 1], _OpenWrite
            ):
                del link.pending[i + 1]
                del link.pending[i]
                _log.error("outage store unreachable: merged two outages of bank %s", link.bank)
                return
        raise AssertionError("pending outage writes must alternate open/close")

    async def _call_recovery(self, link: _Link) -> None:
        assert self._on_recovery is not None
        link.recovery_attempts += 1
        try:
            await asyncio.wait_for(
                self._on_recovery(link.bank), self._config.recovery_timeout_seconds
            )
        except Exception:
            # Waking the in-doubt payments is a shortcut (they also poll on
            # their own); retry on the next rounds, a bounded number of times.
            gave_up = link.recovery_attempts >= self._config.recovery_attempts_max
            if gave_up:
                link.recovery_pending = False
            _log.exception(
                "recovery callback for bank %s failed (attempt %d%s)",
                link.bank,
                link.recovery_attempts,
                ", giving up" if gave_up else "",
            )
            return
        link.recovery_pending = False

    async def _flush(self, link: _Link) -> None:
        """Write the queued outage changes in order; stop at the first failure."""
        timeout_seconds = self._config.store_timeout_seconds
        while link.pending:
            write = link.pending[0]
            try:
                if isinstance(write, _OpenWrite):
                    outage = await asyncio.wait_for(
                        self._store.open_outage(link.bank, write.at, write.cause), timeout_seconds
                    )
                    if not link.up and len(link.pending) == 1:
                        link.outage = outage
                        link.outage_started_at = outage.started_at
                else:
                    await asyncio.wait_for(
                        self._store.close_outage(link.bank, write.at), timeout_seconds
                    )
                    link.outage = None
            except Exception:
                _log.exception(
                    "cannot write outage of bank %s (%d writes pending); retrying next round",
                    link.bank,
                    len(link.pending),
                )
                return
            link.pending.popleft()


def _normalise(raw: HealthResult) -> ProbeResult:
    if isinstance(raw, tuple):
        ok, message = raw
    else:
        ok, message = raw, ""
    if ok:
        return ProbeResult(True)
    return ProbeResult(False, _clip(message or _DEFAULT_DOWN_CAUSE))


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return _clip(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def _clip(text: str) -> str:
    if len(text) <= CAUSE_LENGTH_PROBE_MAX:
        return text
    return text[: CAUSE_LENGTH_PROBE_MAX - 1] + "…"
