"""Small builders for ledger tests."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.core.postings import bank_clearing_account, ensure_account
from ledger.fines import Fine, FineInput, register_fine


async def make_fine(
    engine: AsyncEngine,
    number: str = "01234/QĐ-XPHC",
    amount_vnd: int = 800_000,
    issuing_unit: str = "Phòng CSGT Hà Nội",
) -> Fine:
    async with engine.begin() as conn:
        fine, _ = await register_fine(
            conn,
            FineInput(
                decision_number=number,
                amount_vnd=amount_vnd,
                violator_name="Nguyễn Văn A",
                plate="29A-123.45",
                issuing_unit=issuing_unit,
                violation="Vượt đèn đỏ",
            ),
        )
    return fine


async def ensure_bank_accounts(engine: AsyncEngine, *banks: str) -> None:
    async with engine.begin() as conn:
        for bank in banks:
            await ensure_account(conn, bank_clearing_account(bank), f"{bank} clearing", "asset")
