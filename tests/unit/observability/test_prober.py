"""The link prober's hysteresis and outage bookkeeping, with a fake clock,
scripted health checks and an in-memory store. No I/O, no real time."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from observability.outages import InMemoryOutageStore, Outage
from observability.prober import HealthResult, LinkProber, ProberConfig, ProbeResult

T0 = datetime(2025, 3, 3, 1, 30, tzinfo=UTC)
STEP_SECONDS = 5.0


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = STEP_SECONDS) -> None:
        self.now += timedelta(seconds=seconds)


class Hang:
    """A health check result that never arrives."""


@dataclass
class FakeHealth:
    """A bank's health check; ``result`` is what the next probe sees."""

    result: HealthResult | BaseException | Hang = True
    calls: int = 0

    async def __call__(self) -> HealthResult:
        self.calls += 1
        result = self.result
        if isinstance(result, BaseException):
            raise result
        if isinstance(result, Hang):
            await asyncio.Event().wait()
        assert not isinstance(result, Hang | BaseException)
        return result


@dataclass
class Recoveries:
    banks: list[str] = field(default_factory=list)
    failures_left: int = 0

    async def __call__(self, bank: str) -> None:
        self.banks.append(bank)
        if self.failures_left > 0:
            self.failures_left -= 1
            raise RuntimeError("temporal unavailable")


class FlakyStore(InMemoryOutageStore):
    """An in-memory store that fails every call while ``broken``."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = False
        self.failures = 0
        self.failed = asyncio.Event()

    def _check(self) -> None:
        if self.broken:
            self.failures += 1
            self.failed.set()
            raise ConnectionError("database unavailable")

    async def open_outage(self, bank: str, at: datetime, cause: str) -> Outage:
        self._check()
        return await super().open_outage(bank, at, cause)

    async def close_outage(self, bank: str, at: datetime) -> Outage | None:
        self._check()
        return await super().close_outage(bank, at)

    async def open_outages(self) -> list[Outage]:
        self._check()
        return await super().open_outages()


@pytest.fixture
def bank() -> str:
    # Metrics live in the process-wide registry: a fresh bank id per test
    # keeps every test's series its own.
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def make_prober(
    checks: dict[str, FakeHealth],
    store: InMemoryOutageStore,
    clock: FakeClock,
    *,
    on_recovery: Recoveries | None = None,
    **config: float,
) -> LinkProber:
    settings = {"failures_to_down": 3, "successes_to_up": 2, **config}
    return LinkProber(
        checks,
        store,
        on_recovery=on_recovery,
        config=ProberConfig(**settings),  # type: ignore[arg-type]
        clock=clock,
        heartbeat_component=None,
    )


def failing_recoveries(
    bank: str, clock: FakeClock, failures: int, **config: float
) -> tuple[FakeHealth, Recoveries, LinkProber]:
    """``bank``'s link failing, and a prober whose recovery callback fails
    ``failures`` times before it works."""
    health = FakeHealth(result=False)
    recoveries = Recoveries(failures_left=failures)
    store = InMemoryOutageStore()
    prober = make_prober({bank: health}, store, clock, on_recovery=recoveries, **config)
    return health, recoveries, prober


async def rounds(prober: LinkProber, clock: FakeClock, n: int = 1) -> None:
    for _ in range(n):
        await prober.probe_once()
        clock.advance()


async def test_link_goes_down_only_after_n_consecutive_failures(
    bank: str, clock: FakeClock
) -> None:
    health = FakeHealth()
    store = InMemoryOutageStore()
    prober = make_prober({bank: health}, store, clock)
    await rounds(prober, clock, 2)
    assert sample("bank_link_up", bank=bank) == 1

    first_failure_at = clock.now
    health.result = (False, "connection refused")
    await rounds(prober, clock, 2)
    assert prober.status()[bank].up
    assert await store.open_outages() == []

    await rounds(prober, clock)
    status = prober.status()[bank]
    assert not status.up
    assert status.consecutive_failures == 3
    [outage] = await store.open_outages()
    assert outage.bank == bank
    assert outage.started_at == first_failure_at
    assert outage.cause == "connection refused"
    assert status.outage == outage
    assert status.since == first_failure_at
    assert sample("bank_link_up", bank=bank) == 0
    assert sample("bank_outages_total", bank=bank) == 1


async def test_link_comes_back_after_m_successes_closes_outage_and_wakes_payments(
    bank: str, clock: FakeClock
) -> None:
    health = FakeHealth(result=False)
    store = InMemoryOutageStore()
    recoveries = Recoveries()
    prober = make_prober({bank: health}, store, clock, on_recovery=recoveries)
    outage_started_at = clock.now
    await rounds(prober, clock, 3)
    await rounds(prober, clock, 4)  # a longer outage
    assert recoveries.banks == []

    health.result = True
    back_at = clock.now
    await rounds(prober, clock)
    assert not prober.status()[bank].up
    assert recoveries.banks == []

    await rounds(prober, clock)
    status = prober.status()[bank]
    assert status.up
    assert status.since == back_at
    assert status.outage is None
    assert recoveries.banks == [bank]
    [outage] = await store.recent()
    assert outage.started_at == outage_started_at
    assert outage.ended_at == back_at
    assert outage.cause == "health check reported the link down"
    expected_seconds = (back_at - outage_started_at).total_seconds()
    assert outage.duration_seconds == expected_seconds
    assert sample("bank_link_up", bank=bank) == 1
    assert sample("bank_outage_duration_seconds_count", bank=bank) == 1
    assert sample("bank_outage_duration_seconds_sum", bank=bank) == expected_seconds

    await rounds(prober, clock, 5)
    assert recoveries.banks == [bank]


async def test_flapping_link_does_not_open_an_outage_per_flap(bank: str, clock: FakeClock) -> None:
    health = FakeHealth()
    store = InMemoryOutageStore()
    recoveries = Recoveries()
    prober = make_prober({bank: health}, store, clock, on_recovery=recoveries)

    # Up, flapping one probe in two: never three failures in a row.
    for ok in [True, False, True, False, False, True, False] * 4:
        health.result = ok
        await rounds(prober, clock)
    assert prober.status()[bank].up
    assert await store.recent() == []

    # Down, then flapping: never two good probes in a row, so one outage stays open.
    health.result = False
    await rounds(prober, clock, 3)
    for ok in [True, False, True, False, False] * 4:
        health.result = ok
        await rounds(prober, clock)
    assert not prober.status()[bank].up
    assert len(await store.recent()) == 1
    assert recoveries.banks == []
    assert sample("bank_outages_total", bank=bank) == 1


async def test_start_resumes_an_outage_left_open_in_the_store(bank: str, clock: FakeClock) -> None:
    store = InMemoryOutageStore()
    opened = await store.open_outage(bank, T0 - timedelta(minutes=10), "link_down before restart")
    health = FakeHealth(result=False)
    prober = make_prober({bank: health}, store, clock)

    await prober.start()
    assert sample("bank_link_up", bank=bank) == 0
    status = prober.status()[bank]
    assert not status.up
    assert status.outage == opened
    assert status.since == opened.started_at

    await rounds(prober, clock, 5)
    assert await store.open_outages() == [opened]
    assert sample("bank_outages_total", bank=bank) == 0

    health.result = True
    back_at = clock.now
    await rounds(prober, clock, 2)
    [closed] = await store.recent()
    assert closed.id == opened.id
    assert closed.ended_at == back_at
    assert sample("bank_outage_duration_seconds_sum", bank=bank) == pytest.approx(
        (back_at - opened.started_at).total_seconds()
    )


async def test_a_restarted_prober_keeps_one_outage_per_bank(bank: str, clock: FakeClock) -> None:
    store = InMemoryOutageStore()
    health = FakeHealth(result=False)
    first = make_prober({bank: health}, store, clock)
    await rounds(first, clock, 3)

    second = make_prober({bank: health}, store, clock)
    await rounds(second, clock, 10)
    health.result = True
    await rounds(second, clock, 2)
    assert [o.is_open for o in await store.recent()] == [False]


async def test_banks_are_probed_independently(clock: FakeClock) -> None:
    down, up = f"d{uuid.uuid4().hex[:8]}", f"u{uuid.uuid4().hex[:8]}"
    checks = {down: FakeHealth(result=False), up: FakeHealth(result=True)}
    store = InMemoryOutageStore()
    prober = make_prober(checks, store, clock)
    await rounds(prober, clock, 3)
    assert [o.bank for o in await store.open_outages()] == [down]
    assert prober.status()[up].up
    assert checks[down].calls == checks[up].calls == 3
    assert sample("bank_probe_total", bank=down, result="fail") == 3
    assert sample("bank_probe_total", bank=up, result="ok") == 3
    assert sample("bank_probe_total", bank=up, result="fail") == 0


@pytest.mark.parametrize(
    ("result", "cause"),
    [
        (
            ConnectionRefusedError("connect call failed"),
            "ConnectionRefusedError: connect call failed",
        ),
        (TimeoutError(), "TimeoutError"),
        (Hang(), "no answer within 0.01 s"),
        ((False, "HTTP 503 from /health"), "HTTP 503 from /health"),
        ((False, ""), "health check reported the link down"),
        (False, "health check reported the link down"),
        (RuntimeError("x" * 2000), "RuntimeError: " + "x" * 485 + "…"),
    ],
)
async def test_failed_probe_causes(
    bank: str, clock: FakeClock, result: HealthResult | BaseException | Hang, cause: str
) -> None:
    store = InMemoryOutageStore()
    prober = make_prober(
        {bank: FakeHealth(result=result)},
        store,
        clock,
        failures_to_down=1,
        probe_timeout_seconds=0.01,
    )
    await rounds(prober, clock)
    [outage] = await store.open_outages()
    assert outage.cause == cause
    assert prober.status()[bank].last_cause == cause


async def test_ok_with_a_message_is_a_success(bank: str, clock: FakeClock) -> None:
    store = InMemoryOutageStore()
    prober = make_prober({bank: FakeHealth(result=(True, "ok"))}, store, clock, failures_to_down=1)
    await rounds(prober, clock, 3)
    assert prober.status()[bank].up
    assert prober.status()[bank].consecutive_successes == 3


async def test_store_outage_delays_writes_but_not_state_metrics_or_recovery(
    bank: str, clock: FakeClock
) -> None:
    store = FlakyStore()
    health = FakeHealth()
    recoveries = Recoveries()
    prober = make_prober({bank: health}, store, clock, on_recovery=recoveries)
    await prober.start()
    store.broken = True

    health.result = False
    started_at = clock.now
    await rounds(prober, clock, 3)
    assert sample("bank_link_up", bank=bank) == 0
    assert prober.status()[bank].store_writes_pending == 1

    health.result = True
    ended_at = clock.now
    await rounds(prober, clock, 2)
    assert sample("bank_link_up", bank=bank) == 1
    assert recoveries.banks == [bank]
    assert prober.status()[bank].store_writes_pending == 2

    store.broken = False
    await rounds(prober, clock)
    assert prober.status()[bank].store_writes_pending == 0
    [outage] = await store.recent()
    assert (outage.started_at, outage.ended_at) == (started_at, ended_at)


async def test_queued_writes_are_bounded_by_merging_outages(bank: str, clock: FakeClock) -> None:
    store = FlakyStore()
    health = FakeHealth()
    prober = make_prober(
        {bank: health}, store, clock, failures_to_down=1, successes_to_up=1, pending_writes_max=4
    )
    await prober.start()
    store.broken = True
    times = []
    for ok in [False, True] * 3:  # three outages, six writes
        health.result = ok
        times.append(clock.now)
        await rounds(prober, clock)
    assert prober.status()[bank].store_writes_pending == 4

    store.broken = False
    await rounds(prober, clock)
    outages = sorted(await store.recent(), key=lambda o: o.started_at)
    # The first two outages merged (the gap between them was dropped).
    assert [(o.started_at, o.ended_at) for o in outages] == [
        (times[0], times[3]),
        (times[4], times[5]),
    ]


async def test_failing_recovery_callback_is_retried_then_given_up(
    bank: str, clock: FakeClock
) -> None:
    health, recoveries, prober = failing_recoveries(bank, clock, 10, recovery_attempts_max=3)
    await rounds(prober, clock, 3)
    health.result = True
    await rounds(prober, clock, 10)
    assert recoveries.banks == [bank] * 3
    assert prober.status()[bank].up


async def test_recovery_retry_stops_when_the_link_drops_again(bank: str, clock: FakeClock) -> None:
    health, recoveries, prober = failing_recoveries(
        bank, clock, 1, failures_to_down=1, successes_to_up=1
    )
    await rounds(prober, clock)
    health.result = True
    await rounds(prober, clock)  # up; the callback fails
    health.result = False
    await rounds(prober, clock, 3)  # down again before the retry
    assert recoveries.banks == [bank]
    health.result = True
    await rounds(prober, clock)
    assert recoveries.banks == [bank, bank]


async def test_open_outage_of_an_unconfigured_bank_is_left_alone(
    bank: str, clock: FakeClock
) -> None:
    store = InMemoryOutageStore()
    other = await store.open_outage("retired-bank", T0, "gone")
    prober = make_prober({bank: FakeHealth()}, store, clock)
    await rounds(prober, clock, 3)
    assert await store.open_outages() == [other]
    assert set(prober.status()) == {bank}


async def test_heartbeat_is_set_after_each_round(bank: str, clock: FakeClock) -> None:
    component = f"prober-{bank}"
    prober = LinkProber(
        {bank: FakeHealth()}, InMemoryOutageStore(), clock=clock, heartbeat_component=component
    )
    await prober.probe_once()
    value = sample("reconciler_process_heartbeat_timestamp_seconds", component=component)
    assert value == T0.timestamp()


async def test_run_probes_until_stopped(bank: str) -> None:
    prober: LinkProber

    class StopAfterThree(FakeHealth):
        async def __call__(self) -> HealthResult:
            result = await super().__call__()
            if self.calls == 3:
                prober.stop()
            return result

    health = StopAfterThree()
    prober = LinkProber(
        {bank: health},
        InMemoryOutageStore(),
        config=ProberConfig(interval_seconds=0.001),
        heartbeat_component=None,
    )
    await prober.run()
    assert health.calls == 3


async def test_run_retries_start_while_the_store_is_unreachable(bank: str) -> None:
    prober: LinkProber
    store = FlakyStore()
    store.broken = True

    class StoppingHealth(FakeHealth):
        async def __call__(self) -> HealthResult:
            prober.stop()
            return await super().__call__()

    async def repair_after_a_failed_start() -> None:
        await store.failed.wait()
        store.broken = False

    health = StoppingHealth()
    prober = LinkProber(
        {bank: health},
        store,
        config=ProberConfig(interval_seconds=0.001),
        heartbeat_component=None,
    )
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(repair_after_a_failed_start())
        tasks.create_task(prober.run())
    assert store.failures >= 1
    assert health.calls == 1


async def test_stop_before_run_returns_at_once(bank: str) -> None:
    health = FakeHealth()
    prober = LinkProber({bank: health}, InMemoryOutageStore(), heartbeat_component=None)
    prober.stop()
    await prober.run()
    assert health.calls == 0


async def test_rounds_come_faster_while_a_link_is_suspect(bank: str, clock: FakeClock) -> None:
    health = FakeHealth()
    prober = make_prober(
        {bank: health},
        InMemoryOutageStore(),
        clock,
        interval_seconds=3.0,
        suspect_interval_seconds=1.0,
    )
    await rounds(prober, clock)
    assert prober.next_interval_seconds() == 3.0
    health.result = False
    await rounds(prober, clock)  # one failure: maybe going down
    assert prober.next_interval_seconds() == 1.0
    await rounds(prober, clock, 3)  # down
    assert not prober.status()[bank].up
    assert prober.next_interval_seconds() == 1.0
    health.result = True
    await rounds(prober, clock)  # one success: not up yet, still watched closely
    assert prober.next_interval_seconds() == 1.0
    await rounds(prober, clock)
    assert prober.status()[bank].up
    assert prober.next_interval_seconds() == 3.0


def test_without_a_suspect_interval_rounds_keep_their_pace(bank: str, clock: FakeClock) -> None:
    prober = make_prober({bank: FakeHealth(False)}, InMemoryOutageStore(), clock)
    assert prober.next_interval_seconds() == ProberConfig().interval_seconds


@pytest.mark.parametrize(
    "bad",
    [
        {"suspect_interval_seconds": 10.0},
        {"suspect_interval_seconds": 0.0},
        {"failures_to_down": 0},
        {"successes_to_up": 0},
        {"interval_seconds": 0},
        {"probe_timeout_seconds": -1},
        {"pending_writes_max": 2},
    ],
)
def test_config_is_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be in"):
        ProberConfig(**bad)  # type: ignore[arg-type]


def test_bank_ids_are_validated() -> None:
    with pytest.raises(ValueError, match="invalid bank id"):
        LinkProber({"Bad Bank": FakeHealth()}, InMemoryOutageStore())
    with pytest.raises(ValueError, match="at least one bank"):
        LinkProber({}, InMemoryOutageStore())


async def test_each_probe_is_reported_and_a_failing_report_stops_nothing(
    bank: str, clock: FakeClock
) -> None:
    """``on_probe`` gets every probe (when, result, seconds); when it fails
    (database down) the prober goes on probing and deciding."""
    reported: list[tuple[str, datetime, bool, str, float]] = []
    broken = True

    async def on_probe(name: str, at: datetime, result: ProbeResult, seconds: float) -> None:
        if broken:
            raise ConnectionError("database unavailable")
        reported.append((name, at, result.ok, result.cause, seconds))

    health = FakeHealth(result=(False, "HTTP 503"))
    store = InMemoryOutageStore()
    prober = LinkProber(
        {bank: health},
        store,
        on_probe=on_probe,
        config=ProberConfig(failures_to_down=3, successes_to_up=2),
        clock=clock,
        heartbeat_component=None,
    )
    await rounds(prober, clock, 3)
    assert not prober.status()[bank].up  # the failing reports stopped nothing
    assert len(await store.open_outages()) == 1
    broken = False
    at = clock.now
    await rounds(prober, clock, 1)
    ((name, when, ok, cause, _seconds),) = reported
    # The seconds are the real monotonic clock's: nothing to check in them
    # without a timing threshold.
    assert (name, when, ok, cause) == (bank, at, False, "HTTP 503")
