"""Receipts in a test database without the saga: a fine, its succeeded
settling payment (rows written directly), and the receipt issued for it."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledger.receipts.issue import Receipt, issue_receipt
from ledger.receipts.signing import ReceiptSigner

UNIT = "Đội CSGT số 1 - Công an quận Hoàn Kiếm"
SERIES = "DCSGTS1CAQHK-2025"
NOW = datetime(2025, 3, 1, 2, 3, 4, 567_890, tzinfo=UTC)
_seq = itertools.count(1)


async def add_fine(
    conn: AsyncConnection, *, unit: str = UNIT, amount_vnd: int = 1_500_000
) -> tuple[int, str]:
    n = next(_seq)
    decision = f"{n:04d}/QĐ-XPHC"
    fine_id = (
        await conn.execute(
            text(
                "INSERT INTO fines (decision_number, decision_key, amount_vnd, violator_name,"
                " plate, issuing_unit, violation) VALUES (:d, :k, :a, :v, :p, :u, :viol)"
                " RETURNING id"
            ),
            {
                "d": decision,
                "k": f"{n:04d}/QD-XPHC",
                "a": amount_vnd,
                "v": "Nguyễn Văn Đức",
                "p": f"29A-{n:03d}.45",
                "u": unit,
                "viol": "Vượt đèn đỏ",
            },
        )
    ).scalar_one()
    return fine_id, decision


async def add_payment(
    conn: AsyncConnection,
    fine_id: int,
    *,
    status: str = "succeeded",
    settles: bool = True,
    amount_vnd: int = 1_500_000,
) -> UUID:
    payment_id = uuid.uuid4()
    await conn.execute(
        text(
            "INSERT INTO payments (id, fine_id, bank, payer_account, amount_vnd, status,"
            " debit_key, settles_fine, bank_ref) VALUES (:id, :f, 'vcb', '0011001234567', :a,"
            " :s, :dk, :settles, :ref)"
        ),
        {
            "id": payment_id,
            "f": fine_id,
            "a": amount_vnd,
            "s": status,
            "dk": f"debit-{payment_id}",
            "settles": settles,
            "ref": None if status in {"initiated", "verifying"} else f"FT{payment_id.hex[:12]}",
        },
    )
    return payment_id


async def paid_fine(engine: AsyncEngine, *, unit: str = UNIT, amount_vnd: int = 1_500_000) -> UUID:
    """A fine and its succeeded, settling payment, committed."""
    async with engine.begin() as conn:
        fine_id, _ = await add_fine(conn, unit=unit, amount_vnd=amount_vnd)
        return await add_payment(conn, fine_id, amount_vnd=amount_vnd)


async def issue(
    engine: AsyncEngine, payment_id: UUID, signer: ReceiptSigner, now: datetime = NOW
) -> Receipt:
    async with engine.begin() as conn:
        return await issue_receipt(conn, payment_id, signer, now)
