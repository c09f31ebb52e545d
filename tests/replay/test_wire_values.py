"""The outcome kinds are ``StrEnum``s: the data converter writes their plain
string into payloads (so histories read ``"succeeded"``, as before they were
enums) and reads it back as the member."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.converter import DataConverter

from domain.outcomes import SettleOutcome
from workflows.disputes import types as dt
from workflows.payment import types as wt
from workflows.reconciliation import types as rt

CASES: list[tuple[Any, bytes]] = [
    (
        wt.BankOutcome(wt.OutcomeKind.ALREADY_FINAL, "FT1", payment_status="succeeded"),
        b'"kind":"already_final"',
    ),
    (wt.BankUpdate("p-1", wt.OutcomeKind.DECLINED), b'"kind":"declined"'),
    (wt.SettledWithReceipt(SettleOutcome.DUPLICATE), b'"outcome":"duplicate"'),
    (rt.ActInput("hnbank", rt.ActPhase.HEAL, 200), b'"phase":"heal"'),
    (rt.DiscrepancyActionResult(1, 2, rt.ActionOutcome.MATCHED), b'"outcome":"matched"'),
    (dt.ConfirmPlan(dt.ConfirmMode.WAIT_LIVE, "p-2"), b'"mode":"wait_live"'),
]


@pytest.mark.parametrize(("value", "wire"), CASES, ids=lambda v: type(v).__name__)
async def test_kinds_cross_the_wire_as_plain_strings(value: Any, wire: bytes) -> None:
    [payload] = await DataConverter.default.encode([value])
    assert wire in payload.data
    [back] = await DataConverter.default.decode([payload], [type(value)])
    assert back == value
    for name in ("kind", "outcome", "phase", "mode"):
        if hasattr(value, name):
            assert type(getattr(back, name)) is type(getattr(value, name))
