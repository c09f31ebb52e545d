"""The contract every adapter + simulator pair must keep, over real HTTP.

Each test runs once per protocol (REST account-debit bank, VietQR bank) and
compares the adapter's answers with the simulator's ground truth
(``GET /debits``): the result types must never claim "no money moved" when
money moved, and retries with the same key must never move money twice.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime

import pytest
from prometheus_client import REGISTRY

from bank_adapters.base import CIRCUIT_OPEN_DETAIL, AdapterOptions, BreakerConfig, Timeouts
from bank_adapters.text import find_payment_references, payment_reference
from bank_adapters.types import (
    VIETNAM_TZ,
    BankUnavailableError,
    DebitRequest,
    Declined,
    Direction,
    LinkDown,
    NotFound,
    OutcomeUnknown,
    Pending,
    RefundRequest,
    StatementLine,
    StatementNotAvailableError,
    Succeeded,
)
from tests.integration.bank_adapters.conftest import PAYER, BankUnderTest, business_date, eventually

_keys = itertools.count()


def debit(amount_vnd: int = 500_000, *, payer: str = PAYER) -> DebitRequest:
    return DebitRequest(
        idempotency_key=f"pay-{next(_keys)}-{datetime.now().timestamp():.0f}",
        decision_number="1234/QĐ-XPVPHC",
        amount_vnd=amount_vnd,
        payer_account=payer,
        description="Nop phat",
    )


def refund_of(request: DebitRequest, key: str, amount_vnd: int) -> RefundRequest:
    return RefundRequest(
        idempotency_key=key,
        amount_vnd=amount_vnd,
        reason="nop trung",
        original_idempotency_key=request.idempotency_key,
        payee_account=request.payer_account,
    )


def names_payment(line: StatementLine, key: str) -> bool:
    """Whether a statement line is the payment made under our key, whatever
    the protocol carries (camt.053 EndToEndId, or our reference in the
    transfer content; a refund's content names it too, hence the direction)."""
    return line.direction is Direction.CREDIT and (
        line.end_to_end_ref == key
        or payment_reference(key) in find_payment_references(line.content)
    )


def _calls(bank_id: str, operation: str, outcome: str) -> float:
    labels = {"bank": bank_id, "operation": operation, "outcome": outcome}
    return REGISTRY.get_sample_value("bank_request_duration_seconds_count", labels) or 0.0


async def test_debit_succeeds(bank: BankUnderTest) -> None:
    request = debit()
    before = _calls(bank.adapter.bank_id, "initiate_debit", "succeeded")
    result = await bank.adapter.initiate_debit(request)
    assert isinstance(result, Succeeded)
    assert _calls(bank.adapter.bank_id, "initiate_debit", "succeeded") == before + 1
    [row] = await bank.moves(request.idempotency_key)
    assert (row["bank_ref"], row["amount_vnd"], row["status"]) == (
        result.bank_ref,
        request.amount_vnd,
        "succeeded",
    )
    assert await bank.adapter.get_status(request.idempotency_key) == result


async def test_declined_for_insufficient_funds_moves_nothing(bank: BankUnderTest) -> None:
    await bank.admin.set_account("555000111", 10_000)
    request = debit(50_000, payer="555000111")
    result = await bank.adapter.initiate_debit(request)
    assert isinstance(result, Declined)
    assert result.code in ("AM04", "51")
    assert await bank.moves(request.idempotency_key) == []
    assert (await bank.admin.account("555000111"))["balance_vnd"] == 10_000


async def test_retry_with_the_same_key_debits_once(bank: BankUnderTest) -> None:
    request = debit()
    results = [await bank.adapter.initiate_debit(request) for _ in range(3)]
    assert isinstance(results[0], Succeeded)
    assert results == [results[0]] * 3
    assert len(await bank.moves(request.idempotency_key)) == 1


async def test_timeout_after_debit_is_unknown_then_status_finds_it(bank: BankUnderTest) -> None:
    await bank.admin.add_fault("timeout_after_debit", hang_seconds=10)
    request = debit()
    result = await bank.adapter.initiate_debit(request)
    assert isinstance(result, OutcomeUnknown)
    await bank.admin.clear_faults()
    [row] = await bank.moves(request.idempotency_key)
    assert await bank.adapter.get_status(request.idempotency_key) == Succeeded(row["bank_ref"])
    assert await bank.adapter.initiate_debit(request) == Succeeded(row["bank_ref"])
    assert len(await bank.moves(request.idempotency_key)) == 1


async def test_link_down_is_link_down_and_nothing_moves(bank: BankUnderTest) -> None:
    await bank.admin.add_fault("link_down")
    request = debit()
    result = await bank.adapter.initiate_debit(request)
    assert isinstance(result, LinkDown)
    assert "Connect" in result.detail or "connect" in result.detail
    assert await bank.moves(request.idempotency_key) == []
    assert isinstance(await bank.adapter.get_status(request.idempotency_key), LinkDown)
    assert not (await bank.adapter.health()).up
    assert (await bank.admin.health())["link_up"] is False
    await bank.admin.clear_faults()
    assert (await bank.adapter.health()).up
    assert isinstance(await bank.adapter.initiate_debit(request), Succeeded)
    assert len(await bank.moves(request.idempotency_key)) == 1


async def test_link_down_for_seconds_comes_back_by_itself(bank: BankUnderTest) -> None:
    await bank.admin.add_fault("link_down", seconds=0.3)
    assert isinstance(await bank.adapter.initiate_debit(debit()), LinkDown)

    async def back() -> bool:
        return (await bank.adapter.health()).up

    await eventually(back)
    assert isinstance(await bank.adapter.initiate_debit(debit()), Succeeded)


async def test_lost_response_is_unknown_and_the_retry_does_not_debit_again(
    bank: BankUnderTest,
) -> None:
    await bank.admin.add_fault("lost_response")
    request = debit()
    assert isinstance(await bank.adapter.initiate_debit(request), OutcomeUnknown)
    await bank.admin.clear_faults()
    [row] = await bank.moves(request.idempotency_key)
    assert await bank.adapter.get_status(request.idempotency_key) == Succeeded(row["bank_ref"])
    assert await bank.adapter.initiate_debit(request) == Succeeded(row["bank_ref"])
    assert len(await bank.moves(request.idempotency_key)) == 1


@pytest.mark.parametrize("after_debit", [False, True])
async def test_http_500_is_unknown_never_declined(bank: BankUnderTest, after_debit: bool) -> None:
    await bank.admin.add_fault("http_500", after_debit=after_debit)
    request = debit()
    assert isinstance(await bank.adapter.initiate_debit(request), OutcomeUnknown)
    await bank.admin.clear_faults()
    status = await bank.adapter.get_status(request.idempotency_key)
    moved = await bank.moves(request.idempotency_key)
    if after_debit:
        assert status == Succeeded(moved[0]["bank_ref"])
    else:
        assert isinstance(status, NotFound)
        assert moved == []
    # Either way, sending again with the same key ends with exactly one debit.
    assert isinstance(await bank.adapter.initiate_debit(request), Succeeded)
    assert len(await bank.moves(request.idempotency_key)) == 1


async def test_malformed_answer_is_unknown(bank: BankUnderTest) -> None:
    await bank.admin.add_fault("malformed")
    request = debit()
    assert isinstance(await bank.adapter.initiate_debit(request), OutcomeUnknown)
    assert isinstance(await bank.adapter.get_status(request.idempotency_key), OutcomeUnknown)
    await bank.admin.clear_faults()
    [row] = await bank.moves(request.idempotency_key)
    assert await bank.adapter.get_status(request.idempotency_key) == Succeeded(row["bank_ref"])


async def test_latency_below_the_read_timeout_is_harmless(bank: BankUnderTest) -> None:
    await bank.admin.add_fault("latency", latency_ms=50)
    assert isinstance(await bank.adapter.initiate_debit(debit()), Succeeded)


async def test_unknown_key_is_not_found(bank: BankUnderTest) -> None:
    assert isinstance(await bank.adapter.get_status("never-sent-key"), NotFound)
    assert isinstance(await bank.adapter.get_refund_status("never-sent-key"), NotFound)


async def test_duplicate_debit_is_visible_in_the_statement(bank: BankUnderTest) -> None:
    await bank.admin.add_fault("duplicate_debit")
    request = debit(123_000)
    result = await bank.adapter.initiate_debit(request)
    assert isinstance(result, Succeeded)
    rows = await bank.moves(request.idempotency_key)
    assert len(rows) == 2
    assert sorted(row["duplicate_of"] is not None for row in rows) == [False, True]
    statement = await bank.adapter.fetch_statement(business_date(rows[0]))
    ours = [line for line in statement.lines if names_payment(line, request.idempotency_key)]
    assert sorted(line.bank_ref for line in ours) == sorted(row["bank_ref"] for row in rows)
    assert all(line.amount_vnd == 123_000 for line in ours)
    assert all(line.direction is Direction.CREDIT for line in ours)


async def test_refund_is_idempotent(bank: BankUnderTest) -> None:
    request = debit(300_000)
    assert isinstance(await bank.adapter.initiate_debit(request), Succeeded)
    refund = refund_of(request, f"rf-{request.idempotency_key}", 300_000)
    first = await bank.adapter.refund(refund)
    assert isinstance(first, Succeeded)
    assert await bank.adapter.refund(refund) == first
    assert await bank.adapter.get_refund_status(refund.idempotency_key) == first
    [row] = await bank.moves(refund.idempotency_key, kind="refund")
    assert (row["bank_ref"], row["amount_vnd"], row["direction"]) == (first.bank_ref, 300_000, "D")


async def test_refund_after_lost_response_is_not_paid_twice(bank: BankUnderTest) -> None:
    request = debit(200_000)
    assert isinstance(await bank.adapter.initiate_debit(request), Succeeded)
    refund = refund_of(request, f"rf-{request.idempotency_key}", 200_000)
    await bank.admin.add_fault("lost_response")
    assert isinstance(await bank.adapter.refund(refund), OutcomeUnknown)
    await bank.admin.clear_faults()
    assert isinstance(await bank.adapter.refund(refund), Succeeded)
    assert len(await bank.moves(refund.idempotency_key, kind="refund")) == 1


async def test_statement_matches_the_ground_truth(bank: BankUnderTest) -> None:
    await bank.admin.set_account("777000111", 100_000)
    requests = [debit(100_000 + n) for n in range(3)]
    for request in requests:
        assert isinstance(await bank.adapter.initiate_debit(request), Succeeded)
    assert isinstance(
        await bank.adapter.initiate_debit(debit(500_000, payer="777000111")), Declined
    )
    refund = refund_of(requests[0], "rf-statement", 40_000)
    assert isinstance(await bank.adapter.refund(refund), Succeeded)
    truth = [row for row in await bank.admin.debits() if row["status"] == "succeeded"]
    day = business_date(truth[0])
    statement = await bank.adapter.fetch_statement(day)
    expected = {
        (row["bank_ref"], row["amount_vnd"], "credit" if row["direction"] == "C" else "debit")
        for row in truth
        if business_date(row) == day
    }
    got = {(line.bank_ref, line.amount_vnd, line.direction.value) for line in statement.lines}
    assert got == expected
    parsed = statement.parsed
    assert parsed.account == bank.sim.account_number
    assert parsed.opening_balance_vnd is not None
    assert parsed.closing_balance_vnd == parsed.opening_balance_vnd + sum(
        line.amount_vnd if line.direction is Direction.CREDIT else -line.amount_vnd
        for line in statement.lines
    )
    for request in requests:
        [line] = [line for line in statement.lines if names_payment(line, request.idempotency_key)]
        assert line.counterparty == PAYER
        assert line.booked_at.tzinfo is not None


async def test_statement_for_a_future_date_is_not_available(bank: BankUnderTest) -> None:
    future = datetime.now(VIETNAM_TZ).date().replace(year=datetime.now().year + 1)
    with pytest.raises(StatementNotAvailableError):
        await bank.adapter.fetch_statement(future)


async def test_statement_while_the_link_is_down_raises(bank: BankUnderTest) -> None:
    await bank.admin.add_fault("link_down")
    with pytest.raises(BankUnavailableError) as caught:
        await bank.adapter.fetch_statement(datetime.now(VIETNAM_TZ).date())
    assert caught.value.link_down


async def test_simulator_restart_keeps_state(bank: BankUnderTest) -> None:
    request = debit()
    result = await bank.adapter.initiate_debit(request)
    assert isinstance(result, Succeeded)
    await bank.admin.add_fault("latency", latency_ms=1)
    await bank.sim.restart()
    assert await bank.adapter.get_status(request.idempotency_key) == result
    assert await bank.adapter.initiate_debit(request) == result
    assert len(await bank.moves(request.idempotency_key)) == 1
    assert [fault["mode"] for fault in await bank.admin.faults()] == ["latency"]


async def test_pending_debit_settles_later(bank: BankUnderTest) -> None:
    await bank.admin.set_account("888000111", 10_000_000, settle_delay_seconds=0.3)
    request = debit(payer="888000111")
    first = await bank.adapter.initiate_debit(request)
    assert isinstance(first, Pending)

    async def settled() -> bool:
        return isinstance(await bank.adapter.get_status(request.idempotency_key), Succeeded)

    await eventually(settled)
    [row] = await bank.moves(request.idempotency_key)
    assert await bank.adapter.get_status(request.idempotency_key) == Succeeded(row["bank_ref"])


async def test_flapping_link_never_moves_money_it_called_link_down(bank: BankUnderTest) -> None:
    await bank.admin.add_fault("flap", probability=0.5, seconds=5, period_seconds=0.1)
    seen: dict[type, list[DebitRequest]] = {}
    for _ in range(200):
        request = debit(10_000)
        result = await bank.adapter.initiate_debit(request)
        seen.setdefault(type(result), []).append(request)
        if LinkDown in seen and Succeeded in seen and len(seen[LinkDown]) >= 3:
            break
        await asyncio.sleep(0.03)
    assert LinkDown in seen
    assert Succeeded in seen
    for request in seen[LinkDown]:
        assert await bank.moves(request.idempotency_key) == []
    for request in seen[Succeeded]:
        assert len(await bank.moves(request.idempotency_key)) == 1
    for request in seen.get(OutcomeUnknown, []):
        assert len(await bank.moves(request.idempotency_key)) <= 1


async def test_circuit_breaker_opens_and_a_good_probe_half_opens_it(bank: BankUnderTest) -> None:
    adapter = bank.adapter_with(
        AdapterOptions(
            timeouts=Timeouts(connect_seconds=1.0, read_seconds=0.5, total_seconds=5.0),
            breaker=BreakerConfig(failures_to_open=2, open_seconds=600),
        ),
        f"breaker-{bank.protocol}",
    )
    await bank.admin.add_fault("link_down")
    for _ in range(2):
        result = await adapter.initiate_debit(debit())
        assert isinstance(result, LinkDown)
        assert result.detail != CIRCUIT_OPEN_DETAIL
    assert await adapter.initiate_debit(debit()) == LinkDown(CIRCUIT_OPEN_DETAIL)
    await bank.admin.clear_faults()
    # Still open (600 s), although the bank is back...
    request = debit()
    assert await adapter.initiate_debit(request) == LinkDown(CIRCUIT_OPEN_DETAIL)
    assert await bank.moves(request.idempotency_key) == []
    # ...until the prober's health check sees it up.
    assert (await adapter.health()).up
    assert isinstance(await adapter.initiate_debit(request), Succeeded)
    assert isinstance(await adapter.initiate_debit(debit()), Succeeded)
