"""The link recovery's status burst (``PaymentActivities.check_statuses``)
against a fake bank: a check that fails for the bank's or the link's sake
is logged and left for the payment's workflow; any other error is a bug and
fails the whole pass, the checks still in flight cancelled."""

from __future__ import annotations

import asyncio
from datetime import date
from uuid import uuid4

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from bank_adapters import types as bt
from ledger.payments import debit_key_for
from ledger.receipts.signing import ReceiptSigner
from tests.support.logs import all_logs
from workflows.payment.activities import PaymentActivities, PaymentDeps
from workflows.payment.types import OutcomeKind

BANK = "sgbank"
HANG_GUARD_SECONDS = 30


class _Bank:
    """Answers each status check as told by the payment's key: an error to
    raise, "hang" (never answers), or else a confirmed debit."""

    bank_id = BANK
    protocol = "fake"

    def __init__(self, told: dict[str, BaseException | str]) -> None:
        self.told = told
        self.cancelled: list[str] = []

    async def get_status(self, idempotency_key: str) -> bt.StatusResult:
        what = self.told.get(idempotency_key)
        if isinstance(what, BaseException):
            raise what
        if what == "hang":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.append(idempotency_key)
                raise
        return bt.Succeeded(f"REF-{idempotency_key[-6:]}")

    async def health(self) -> bt.HealthStatus:
        return bt.HealthStatus(True, "ok", 0.0)

    async def initiate_debit(self, request: bt.DebitRequest) -> bt.BankResult:
        raise NotImplementedError

    async def refund(self, request: bt.RefundRequest) -> bt.BankResult:
        raise NotImplementedError

    async def get_refund_status(self, idempotency_key: str) -> bt.StatusResult:
        raise NotImplementedError

    async def fetch_statement(self, statement_date: date) -> bt.Statement:
        raise NotImplementedError


def _activities(bank: _Bank) -> PaymentActivities:
    # Never connected: the status burst reads nothing from the ledger.
    engine = create_async_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    return PaymentActivities(PaymentDeps(engine, {BANK: bank}, ReceiptSigner.generate(), ""))


BANK_TROUBLE = [
    bt.BankUnavailableError(BANK, "connection reset", link_down=False),
    bt.BankProtocolError(BANK, "an answer outside the protocol"),
    aiohttp.ServerDisconnectedError(),
    ConnectionResetError("reset by peer"),
    TimeoutError(),
]


@pytest.mark.parametrize("error", BANK_TROUBLE, ids=lambda e: type(e).__name__)
async def test_a_check_failing_for_the_bank_is_logged_and_left(error: Exception) -> None:
    failing, fine = uuid4(), uuid4()
    activities = _activities(_Bank({debit_key_for(failing): error}))
    with all_logs() as logs:
        answers = await activities.check_statuses(BANK, [failing, fine], concurrency=4)
    assert answers[failing] is None
    confirmed = answers[fine]
    assert confirmed is not None
    assert (confirmed.kind, confirmed.bank_ref) == (OutcomeKind.SUCCEEDED, f"REF-{fine.hex[-6:]}")
    [logged] = [e for e in logs if e["event"] == "payment.status_check_failed"]
    assert (logged["payment_id"], logged["bank"]) == (str(failing), BANK)
    assert logged["error"].startswith(type(error).__name__)


@pytest.mark.parametrize(
    "bug",
    [KeyError("bank_ref"), AttributeError("'NoneType' has no attribute 'kind'"), TypeError("x")],
    ids=lambda e: type(e).__name__,
)
async def test_any_other_error_fails_the_pass_and_stops_the_other_checks(
    bug: Exception,
) -> None:
    broken, hanging = uuid4(), uuid4()
    bank = _Bank({debit_key_for(broken): bug, debit_key_for(hanging): "hang"})
    burst = _activities(bank).check_statuses(BANK, [hanging, broken], concurrency=4)
    with all_logs() as logs, pytest.raises(type(bug)) as raised:
        # The guard only turns a burst that waits forever (the hanging
        # check never cancelled) into a failure, not a hang.
        await asyncio.wait_for(burst, HANG_GUARD_SECONDS)
    assert raised.value is bug
    assert [e for e in logs if e["event"] == "payment.status_check_failed"] == []
    await asyncio.sleep(0)  # the cancelled check runs its last step
    assert bank.cancelled == [debit_key_for(hanging)]
