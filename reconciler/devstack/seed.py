"""Demo users (one per role), an API token and demo fines for the dev stack.

Idempotent: a second run on the same data leaves everything as it is.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from ledger.access import create_token, create_user, principal_for_token
from ledger.core import tables as t
from ledger.fines import FineInput, register_fine

if TYPE_CHECKING:
    from reconciler.devstack.stack import StackState

DEMO_FINES = (
    ("01234/QĐ-XPHC", 800_000, "Nguyễn Văn An", "29A-123.45", "Vượt đèn đỏ"),
    ("01235/QĐ-XPHC", 4_000_000, "Trần Thị Bình", "30E-678.90", "Chạy quá tốc độ 10-20 km/h"),
    ("01236/QĐ-XPHC", 600_000, "Lê Văn Cường", "29B1-234.56", "Không đội mũ bảo hiểm"),
    ("01237/QĐ-XPHC", 1_500_000, "Phạm Thị Dung", "51F-111.22", "Dừng xe sai quy định"),
    ("01238/QĐ-XPHC", 6_000_000, "Hoàng Văn Em", "30K-999.88", "Điều khiển xe có nồng độ cồn"),
)
DEMO_UNIT = "Phòng Cảnh sát giao thông Hà Nội"
DEMO_TOKEN_NAME = "dev-portal"  # noqa: S105 -- a token name, not a token


async def _seed(database_url: str, state: StackState) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            for role, password in state.passwords.items():
                exists = (
                    await conn.execute(
                        select(t.users.c.id).where(t.users.c.username == f"demo-{role}")
                    )
                ).first()
                if exists is None:
                    await create_user(
                        conn, f"demo-{role}", password, role, full_name=f"Demo {role}"
                    )
            token_ok = (
                bool(state.api_token)
                and (await principal_for_token(conn, state.api_token)) is not None
            )
            if not token_ok:
                name = DEMO_TOKEN_NAME
                taken = (
                    await conn.execute(select(t.api_tokens.c.id).where(t.api_tokens.c.name == name))
                ).first()
                if taken is not None:
                    name = f"{DEMO_TOKEN_NAME}-{taken.id}"
                state.api_token = await create_token(conn, name, "admin")
            for number, amount, name, plate, violation in DEMO_FINES:
                await register_fine(
                    conn,
                    FineInput(
                        decision_number=number,
                        amount_vnd=amount,
                        violator_name=name,
                        plate=plate,
                        issuing_unit=DEMO_UNIT,
                        violation=violation,
                    ),
                )
    finally:
        await engine.dispose()


def seed_demo_data(database_url: str, state: StackState) -> None:
    asyncio.run(_seed(database_url, state))
