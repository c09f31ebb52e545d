"""The payment saga as a Hypothesis state machine over the real stack.

Rules start payments on both banks (funded, or from an account too poor to
pay), pay a fine again, inject the simulators' faults (lost response,
timeout after the debit, HTTP 500 after the debit, link down, duplicate
debit) and recover (clear faults, the link-recovered wake-up). After each
run the system is quiesced (faults cleared, banks woken, every payment final
and every duplicate refunded, no workflow running) and the invariants (docs/invariants.md)
1-4 are checked against the simulators' own record of every debit and
refund (GET /debits), the ground truth:

1. every succeeded bank debit ends as exactly one receipt or exactly one
   refund: never both, never neither, never two; the bank clearing accounts
   equal what the banks moved;
2. a payment whose outcome was unknown is never recorded as declined: no
   declined payment has a debit at its bank, a payment declined after it was
   'verifying' was declined by the bank itself, and one declined as 'bank
   unavailable' never reached the bank;
3. every journal entry sums to zero and cached balances equal the postings;
4. receipt numbers are gapless and unique per series.

All examples of a run share ONE stack (API, worker, both simulators,
database), so state accumulates across examples and the checks cover it all.
Hypothesis drives rules synchronously; the stack lives on its own event loop
in a thread, and each rule runs a coroutine there.

VietQR duplicates are not injected: that bank sends no webhooks and a status
check finds the first booking only, so a second booking there can only be
found by statement reconciliation (not part of the saga).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.ext.asyncio import create_async_engine

from bank_adapters.base import AdapterOptions, BreakerConfig, Timeouts
from bank_adapters.factory import build_adapter
from ledger.core.postings import balances, bank_clearing_account, posting_sums
from reconciler.devstack.temporal import TemporalInfo
from reconciler.wiring import load_signer
from tests.support import db
from tests.support.stack import BANKS, PAYER, SagaStack, saga_stack
from workflows.payment.activities import PaymentActivities, PaymentDeps

T = TypeVar("T")

POOR_PAYER = "900800700"
AMOUNT_VND = 800_000
STEP_SECONDS_MAX = 60.0
QUIESCE_SECONDS_MAX = 60.0
LINK_DOWN_REASON = "bank unavailable, nothing debited"
# Shorter than production so that an answer held by the bank becomes an
# unknown outcome in 2 s, and an open breaker lets a trial through in 2 s.
ADAPTER_OPTIONS = AdapterOptions(
    timeouts=Timeouts(connect_seconds=1.0, read_seconds=2.0, total_seconds=5.0),
    breaker=BreakerConfig(failures_to_open=5, open_seconds=2.0),
)
# (bank, mode, parameters): what each simulator is made to do wrong.
Fault = tuple[str, str, dict[str, Any]]
FAULTS: list[Fault] = [
    *(
        (bank, mode, params)
        for bank in BANKS
        for mode, params in (
            ("lost_response", {}),
            ("timeout_after_debit", {"hang_seconds": 4.0}),
            ("http_500", {"after_debit": True}),
            ("link_down", {}),
        )
    ),
    ("sgbank", "duplicate_debit", {}),
]


class LoopThread:
    """An event loop running in its own thread for the whole test, so the
    stack keeps working between Hypothesis's (synchronous) steps."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Awaitable[T], timeout_seconds: float = STEP_SECONDS_MAX) -> T:
        async def wrapped() -> T:
            return await coro

        future = asyncio.run_coroutine_threadsafe(wrapped(), self.loop)
        try:
            return future.result(timeout_seconds)
        except TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        self.run(cancel_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class Harness:
    """One stack for the whole machine run."""

    def __init__(self, loop: LoopThread, stack: SagaStack) -> None:
        self.loop = loop
        self.stack = stack
        self.failures: list[str] = []

    def run(self, coro: Awaitable[T], timeout_seconds: float = STEP_SECONDS_MAX) -> T:
        return self.loop.run(coro, timeout_seconds)


async def _open_stack(
    exits: contextlib.AsyncExitStack,
    tmp_path: Path,
    db_url: str,
    temporal_address: str,
    task_queue: str,
) -> SagaStack:
    engine = create_async_engine(db_url, pool_size=5, max_overflow=10)
    exits.push_async_callback(engine.dispose)
    stack = await exits.enter_async_context(
        saga_stack(tmp_path, engine, db_url, temporal_address, task_queue, start_worker=False)
    )
    adapters = {
        bank: build_adapter(
            bank,
            b.protocol,
            b.url,
            stack.session,
            account_number=b.account_number,
            bank_bin=b.bank_bin,
            options=ADAPTER_OPTIONS,
        )
        for bank, b in stack.settings.banks.items()
    }
    stack.activities = PaymentActivities(
        PaymentDeps(
            engine=engine,
            adapters=adapters,
            signer=load_signer(stack.settings),
            public_base_url=stack.api_url,
        )
    )
    await stack.start_worker()
    for bank in BANKS:
        await stack.admins[bank].set_account(POOR_PAYER, balance_vnd=1_000)
    return stack


@pytest.fixture
def harness(
    tmp_path: Path, db_url: str, temporal_server: TemporalInfo, task_queue: str
) -> Iterator[Harness]:
    loop = LoopThread()
    exits = contextlib.AsyncExitStack()
    try:
        stack = loop.run(_open_stack(exits, tmp_path, db_url, temporal_server.address, task_queue))
        yield Harness(loop, stack)
    finally:
        try:
            loop.run(exits.aclose())
        finally:
            loop.close()


# --- reading the ground truth and the books -----------------------------------------


async def _movements(stack: SagaStack) -> dict[str, list[dict[str, Any]]]:
    return {bank: await stack.bank_movements(bank) for bank in BANKS}


async def declined_after_debit(stack: SagaStack) -> list[str]:
    """Invariant 2, cheap enough for every step: a declined payment never has
    a debit at its bank (the bank took the money, we said 'failed')."""
    moved = await _movements(stack)
    debited = {
        (bank, m["idempotency_key"])
        for bank, rows in moved.items()
        for m in rows
        if m["kind"] == "debit" and m["status"] in ("succeeded", "pending")
    }
    declined = await db.rows(
        stack.engine, "SELECT id, bank, debit_key FROM payments WHERE status = 'declined'"
    )
    return [
        f"payment {p.id} is declined but {p.bank} debited {p.debit_key}"
        for p in declined
        if (p.bank, p.debit_key) in debited
    ]


async def violations(stack: SagaStack) -> list[str]:
    """Every invariant 1-4 violation, described (empty: all hold)."""
    problems = await declined_after_debit(stack)
    problems += await _debits_end_once(stack)
    problems += await _unknown_never_declined(stack)
    problems += await _books_balance(stack)
    problems += await _receipts_gapless(stack)
    return problems


async def _debits_end_once(stack: SagaStack) -> list[str]:
    """Invariant 1 against the banks' record."""
    problems: list[str] = []
    moved = await _movements(stack)
    payments = await db.rows(
        stack.engine,
        "SELECT id, bank, status, settles_fine, bank_ref, fine_id, debit_key FROM payments"
        " WHERE bank_ref IS NOT NULL",
    )
    by_key: defaultdict[str, list[str]] = defaultdict(list)
    for p in await db.rows(stack.engine, "SELECT id, status, bank_ref, debit_key FROM payments"):
        by_key[p.debit_key].append(f"{p.id} {p.status} ref {p.bank_ref}")
    by_ref: defaultdict[tuple[str, str], list[Any]] = defaultdict(list)
    for p in payments:
        by_ref[(p.bank, p.bank_ref)].append(p)
    receipts = Counter(
        str(r.payment_id) for r in await db.rows(stack.engine, "SELECT payment_id FROM receipts")
    )
    for bank, rows in moved.items():
        refunds = Counter(
            m["idempotency_key"]
            for m in rows
            if m["kind"] == "refund" and m["status"] == "succeeded"
        )
        problems += [
            f"{bank} refund {m['bank_ref']} is {m['status']}: {m['reason']}"
            for m in rows
            if m["kind"] == "refund" and m["status"] != "succeeded"
        ]
        problems += [
            f"{bank} debit {m['bank_ref']} still pending" for m in rows if m["status"] == "pending"
        ]
        debits = [m for m in rows if m["kind"] == "debit" and m["status"] == "succeeded"]
        for m in debits:
            booked = by_ref.get((bank, m["bank_ref"]), [])
            if len(booked) != 1:
                problems.append(
                    f"{bank} debit {m['bank_ref']} is booked {len(booked)} times (request "
                    f"{m['idempotency_key']}: payments {by_key.get(m['idempotency_key'], [])})"
                )
            else:
                problems += _ended_once(bank, m, booked[0], receipts, refunds)
        refs = {m["bank_ref"] for m in debits}
        problems += [
            f"payment {p.id} is booked with {bank} ref {p.bank_ref} the bank never debited"
            for p in payments
            if p.bank == bank and p.bank_ref not in refs
        ]
        ours = {f"rf-{p.id.hex}" for p in payments if p.bank == bank}
        problems += [
            f"{bank} refunded {key}, which is no refund of ours" for key in set(refunds) - ours
        ]
        problems += [f"{bank} refunded {key} {n} times" for key, n in refunds.items() if n > 1]
        async with stack.engine.connect() as conn:
            clearing = (await balances(conn, [bank_clearing_account(bank)])).get(
                bank_clearing_account(bank), 0
            )
        moved_vnd = sum(m["amount_vnd"] for m in debits) - sum(
            m["amount_vnd"] for m in rows if m["kind"] == "refund" and m["status"] == "succeeded"
        )
        if clearing != moved_vnd:
            problems.append(f"{bank} clearing account is {clearing} but the bank moved {moved_vnd}")
    settling = Counter(p.fine_id for p in payments if p.settles_fine)
    problems += [f"fine {f} is settled {n} times" for f, n in settling.items() if n > 1]
    return problems


def _ended_once(
    bank: str, debit: dict[str, Any], p: Any, receipts: Counter[str], refunds: Counter[str]
) -> list[str]:
    """A debit booked once ends with its receipt or with its refund, and the
    payment's status says which."""
    receipted = receipts[str(p.id)]
    refunded = refunds[f"rf-{p.id.hex}"]
    if (receipted, refunded) not in ((1, 0), (0, 1)):
        return [
            f"{bank} debit {debit['bank_ref']} (payment {p.id}, {p.status}): "
            f"{receipted} receipts and {refunded} refunds"
        ]
    if receipted and not (p.status == "succeeded" and p.settles_fine):
        return [f"payment {p.id} has a receipt but is {p.status}"]
    if refunded and p.status != "refunded":
        return [f"payment {p.id} was refunded by {bank} but is {p.status}"]
    return []


async def _unknown_never_declined(stack: SagaStack) -> list[str]:
    """Invariant 2 on the payments' history rows."""
    problems: list[str] = []
    moved = await _movements(stack)
    keys_seen = {(bank, m["idempotency_key"]): m for bank, rows in moved.items() for m in rows}
    declined_by_bank = {
        (bank, m["idempotency_key"])
        for bank, rows in moved.items()
        for m in rows
        if m["kind"] == "debit" and m["status"] == "declined"
    }
    payments = {
        p.id: p
        for p in await db.rows(
            stack.engine, "SELECT id, bank, debit_key, status, decline_reason FROM payments"
        )
    }
    history: defaultdict[Any, list[Any]] = defaultdict(list)
    for e in await db.rows(
        stack.engine,
        "SELECT payment_id, from_status, to_status, cause FROM payment_events ORDER BY id",
    ):
        history[e.payment_id].append(e)
    for payment_id, events in history.items():
        p = payments[payment_id]
        statuses = [e.to_status for e in events]
        if "declined" not in statuses:
            continue
        after = statuses[statuses.index("declined") :]
        if set(after) != {"declined"}:
            problems.append(f"payment {payment_id} left 'declined': {statuses}")
        if "verifying" in statuses and (p.bank, p.debit_key) not in declined_by_bank:
            problems.append(
                f"payment {payment_id} was verifying, then declined without the bank "
                f"declining it: {[e.cause for e in events]}"
            )
        if p.decline_reason == LINK_DOWN_REASON and (
            "verifying" in statuses or (p.bank, p.debit_key) in keys_seen
        ):
            problems.append(
                f"payment {payment_id} declined as '{LINK_DOWN_REASON}' but it reached the "
                f"bank or was in doubt: {statuses}"
            )
    return problems


async def _books_balance(stack: SagaStack) -> list[str]:
    """Invariant 3."""
    problems = [
        f"journal entry {r.entry_id} sums to {r.total}"
        for r in await db.rows(
            stack.engine,
            "SELECT entry_id, sum(amount_vnd) AS total FROM postings GROUP BY entry_id"
            " HAVING sum(amount_vnd) <> 0",
        )
    ]
    async with stack.engine.connect() as conn:
        cached, summed = await balances(conn), await posting_sums(conn)
    if cached != summed:
        problems.append(f"cached balances {cached} differ from posting sums {summed}")
    if sum(cached.values()) != 0:
        problems.append(f"the books do not balance: {cached}")
    return problems


async def _receipts_gapless(stack: SagaStack) -> list[str]:
    """Invariant 4."""
    problems: list[str] = []
    numbers: defaultdict[str, list[int]] = defaultdict(list)
    for r in await db.rows(stack.engine, "SELECT series, number FROM receipts"):
        numbers[r.series].append(int(r.number))
    counters = {
        r.series: int(r.last_number)
        for r in await db.rows(stack.engine, "SELECT series, last_number FROM receipt_series")
    }
    for series, got in numbers.items():
        if sorted(got) != list(range(1, len(got) + 1)):
            problems.append(f"series {series} numbers are not 1..{len(got)}: {sorted(got)}")
        if counters.get(series) != len(got):
            problems.append(f"series {series} counter {counters.get(series)} for {len(got)}")
    return problems


async def quiesce(stack: SagaStack) -> None:
    """Faults off, banks woken, then wait (bounded) until nothing moves: no
    payment in doubt, no duplicate awaiting its refund, every webhook
    delivered and no workflow running on our task queue."""
    for bank in BANKS:
        await stack.admins[bank].clear_faults()
    query = f"TaskQueue = '{stack.settings.task_queue}' AND ExecutionStatus = 'Running'"
    deadline = time.monotonic() + QUIESCE_SECONDS_MAX
    quiet_in_a_row = 0
    busy: list[str] = []
    next_wake = 0.0
    while time.monotonic() < deadline:
        if time.monotonic() >= next_wake:
            for bank in BANKS:
                status, body = await stack.call("POST", f"/api/v1/banks/{bank}/link-recovered")
                # 202: the recovery outlasted the API's wait (a slow bank); it goes on.
                assert status in (200, 202), body
            next_wake = time.monotonic() + 2.0
        busy = [
            f"payment {r.id} {r.status}"
            for r in await db.rows(
                stack.engine,
                "SELECT id, status FROM payments WHERE status IN ('initiated', 'verifying')"
                " OR (status = 'succeeded' AND NOT settles_fine)",
            )
        ]
        busy += [
            f"webhook {h['id']} undelivered"
            for h in await stack.admins["sgbank"].webhooks()
            if h["delivered_at"] is None and not h["failed"]
        ]
        busy += [f"workflow {w.id} running" async for w in stack.client.list_workflows(query)]
        quiet_in_a_row = 0 if busy else quiet_in_a_row + 1
        if quiet_in_a_row >= 2:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"not quiet after {QUIESCE_SECONDS_MAX:.0f} s: {busy[:20]}")


# --- the machine ---------------------------------------------------------------------


class SagaMachine(RuleBasedStateMachine):
    """Failures are collected in the harness, not raised: Hypothesis would
    re-run a failing example to report it, and a real distributed system
    does not fail the same way twice (the report would be a 'flaky' error
    hiding the violation). After the first failure every step is skipped."""

    harness: ClassVar[Harness | None] = None
    fines = Bundle("fines")

    def __init__(self) -> None:
        super().__init__()
        assert self.harness is not None, "set SagaMachine.harness first"
        self.h = self.harness
        self.steps: list[str] = []
        self.payment_ids: set[str] = set()

    @property
    def stack(self) -> SagaStack:
        return self.h.stack

    def _step(self, what: str, step: Callable[[], T]) -> T | None:
        if self.h.failures:
            return None
        self.steps.append(what)
        try:
            return step()
        except Exception:
            self.h.failures.append(f"after steps {self.steps}:\n{traceback.format_exc(limit=8)}")
            return None

    # -- rules -------------------------------------------------------------------

    @initialize(target=fines, fault=st.sampled_from(FAULTS), funded=st.booleans())
    def start_under_a_fault(self, fault: Fault, funded: bool) -> str:
        """Every example starts with a payment meeting a fault at its bank."""
        for bank in BANKS:
            self.h.run(self.stack.admins[bank].clear_faults())
        what = f"start_under_a_fault({fault}, funded={funded})"
        return self._step(what, lambda: self._start(fault[0], funded, fault, 5.0)) or ""

    @rule(
        target=fines,
        bank=st.sampled_from(list(BANKS)),
        funded=st.booleans(),
        fault=st.none() | st.sampled_from(FAULTS),
        seconds=st.sampled_from([2.0, 5.0]),
    )
    def start_payment(self, bank: str, funded: bool, fault: Fault | None, seconds: float) -> str:
        """A new fine paid, on the faulty bank when a fault is drawn."""
        what = f"start_payment({bank}, funded={funded}, fault={fault}, seconds={seconds})"
        return self._step(what, lambda: self._start(bank, funded, fault, seconds)) or ""

    @rule(number=fines, bank=st.sampled_from(list(BANKS)), funded=st.booleans())
    def pay_again(self, number: str, bank: str, funded: bool) -> None:
        """A new request for a fine: joins its live payment, starts a new one
        after a decline, or is refused once the fine is paid."""
        if number:
            self._step(
                f"pay_again({number}, {bank}, funded={funded})",
                lambda: self._pay(number, bank, funded),
            )

    @rule(
        fault=st.sampled_from(FAULTS),
        probability=st.sampled_from([1.0, 0.5]),
        seconds=st.sampled_from([2.0, 5.0]),
    )
    def inject_fault(self, fault: Fault, probability: float, seconds: float) -> None:
        bank, mode, params = fault
        self._step(
            f"inject_fault({fault}, p={probability}, seconds={seconds})",
            lambda: self.h.run(
                self.stack.admins[bank].add_fault(
                    mode, probability=probability, seconds=seconds, **params
                )
            ),
        )

    @rule(bank=st.sampled_from(list(BANKS)), wake=st.booleans())
    def recover(self, bank: str, wake: bool) -> None:
        """The bank is well again: its faults are cleared and, as the prober
        would on seeing the link back, its in-doubt payments are woken."""
        self._step(f"recover({bank}, wake={wake})", lambda: self.h.run(self._recover(bank, wake)))

    @rule(seconds=st.sampled_from([0.3, 1.0]))
    def let_time_pass(self, seconds: float) -> None:
        self._step(f"let_time_pass({seconds})", lambda: self.h.run(asyncio.sleep(seconds)))

    @invariant()
    def nothing_debited_is_declined(self) -> None:
        def check() -> None:
            problems = self.h.run(declined_after_debit(self.stack))
            assert not problems, problems

        self._step("check: nothing debited is declined", check)

    def teardown(self) -> None:
        self._step("quiesce, then check invariants 1-4", self._quiesce_and_check)

    # -- helpers -----------------------------------------------------------------

    def _start(self, bank: str, funded: bool, fault: Fault | None, seconds: float) -> str:
        if fault is not None:
            bank, mode, params = fault
            self.h.run(self.stack.admins[bank].add_fault(mode, seconds=seconds, **params))
        number = self.h.run(self.stack.new_fine(AMOUNT_VND))
        self._pay(number, bank, funded)
        return number

    def _pay(self, number: str, bank: str, funded: bool) -> None:
        status, body = self.h.run(
            self.stack.pay(number, bank, payer=PAYER if funded else POOR_PAYER)
        )
        if status == 409:
            assert body["error"]["code"] == "fine_already_paid", body
            return
        assert status == 202, body
        assert body["status"] in ("initiated", "verifying", "succeeded", "declined"), body
        self.payment_ids.add(body["payment_id"])

    async def _recover(self, bank: str, wake: bool) -> None:
        await self.stack.admins[bank].clear_faults()
        if wake:
            status, body = await self.stack.call("POST", f"/api/v1/banks/{bank}/link-recovered")
            assert status in (200, 202), body

    def _quiesce_and_check(self) -> None:
        self.h.run(quiesce(self.stack), QUIESCE_SECONDS_MAX + 30)
        problems = self.h.run(violations(self.stack))
        assert not problems, "\n".join(problems)
        statuses = {
            self.h.run(self.stack.payment(pid))["status"] for pid in sorted(self.payment_ids)
        }
        assert statuses <= {"succeeded", "declined"}, statuses


def test_saga_keeps_its_invariants_under_faults(harness: Harness) -> None:
    SagaMachine.harness = harness
    try:
        run_state_machine_as_test(
            SagaMachine,
            settings=settings(
                max_examples=10,
                stateful_step_count=10,
                deadline=None,
                # The stack is shared and real: a failing example cannot be
                # replayed or shrunk faithfully, so do neither (the failure
                # names the steps that led to it).
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        SagaMachine.harness = None
    assert not harness.failures, "\n\n".join(harness.failures)
