"""The per-unit gauges from a real ledger: payments of the last hour by
outcome, receipts, in doubt, open disputes, by unit code; a label set that
is gone (nothing in doubt any more) stops being exported."""

from __future__ import annotations

from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.receipts.signing import ReceiptSigner
from reconciler.unit_gauges import UnitGauges
from tests.support.receipts import add_fine, add_payment, issue, paid_fine

UNIT_B = "Phòng CSGT Hà Nội"


def _value(metric: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(metric, labels)


async def test_unit_gauges_follow_the_ledger(engine: AsyncEngine) -> None:
    gauges = UnitGauges()
    for _ in range(2):
        await issue(engine, await paid_fine(engine), ReceiptSigner.generate())
    async with engine.begin() as conn:
        fine_id, _ = await add_fine(conn, unit=UNIT_B)
        doubtful = await add_payment(conn, fine_id, status="verifying", settles=False)
    await gauges.refresh(engine)
    unit_a = "DCSGTS1CAQHK"
    assert _value("unit_payments_last_hour", unit=unit_a, outcome="succeeded") == 2
    assert _value("unit_receipts_issued", unit=unit_a) == 2
    assert _value("unit_payments_in_doubt", unit="PCSGTHN") == 1
    assert _value("unit_payments_in_doubt", unit=unit_a) is None

    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE payments SET status = 'declined' WHERE id = :id"), {"id": doubtful}
        )
    await gauges.refresh(engine)
    assert _value("unit_payments_in_doubt", unit="PCSGTHN") is None
    assert _value("unit_payments_last_hour", unit="PCSGTHN", outcome="declined") == 1
