"""Demo users (one per role), an API token, demo fines of two issuing units
and an outage of ``hnbank`` yesterday, for the dev stack. What needs the
running service (payments in every state, a reconciliation, a dispute) is
``seed_story``, played once the stack is up.

The users log in with ``POST /api/v1/auth/login`` (their passwords are in
``dev.json``). ``dev.json``'s ``api_token`` is a long-lived API token of the
``demo-admin`` user: whatever it does is recorded as done by ``demo-admin``,
so demo-admin cannot also approve what it requested (log in as
``demo-approver`` for that).

Idempotent: a second run on the same data leaves everything as it is (a
token that expired or was revoked is replaced).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from ledger.access import (
    PasswordChecker,
    TokenKind,
    api_token_lifetime,
    create_user,
    issue_token,
    lookup_token,
    user_owner,
)
from ledger.core import tables as t
from ledger.fines import FineInput, register_fine
from ledger.outages import PostgresOutageStore

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
SECOND_UNIT = "Đội CSGT số 1 - Công an TP. Hồ Chí Minh"
# The fines the seed story pays (``seed_story``), of both units.
STORY_FINES = (
    ("02001/QĐ-XPHC", 900_000, "Vũ Văn Giang", "29C-456.78", "Vượt đèn đỏ", DEMO_UNIT),
    ("02002/QĐ-XPHC", 350_000, "Đặng Thị Hoa", "29D-222.33", "Không đội mũ bảo hiểm", DEMO_UNIT),
    ("02003/QĐ-XPHC", 2_000_000, "Bùi Văn Khánh", "29A-888.99", "Chạy quá tốc độ", DEMO_UNIT),
    ("03001/QĐ-XPHC", 1_200_000, "Ngô Thị Lan", "51G-123.45", "Đi sai làn đường", SECOND_UNIT),
    ("03002/QĐ-XPHC", 800_000, "Đỗ Văn Minh", "51H-678.90", "Dừng xe sai quy định", SECOND_UNIT),
    ("03003/QĐ-XPHC", 4_500_000, "Lý Thị Ngọc", "59A-246.80", "Chạy quá tốc độ", SECOND_UNIT),
)
PAST_OUTAGE_BANK = "hnbank"
DEMO_TOKEN_NAME = "dev-api"  # noqa: S105 -- a token name, not a token
DEMO_TOKEN_OWNER = "demo-admin"  # noqa: S105 -- a username, not a password
SEED_ACTOR = "system:devstack"


async def _seed(database_url: str, state: StackState, story: bool) -> None:
    engine = create_async_engine(database_url)
    checker = PasswordChecker(1)
    now = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            for role, password in state.passwords.items():
                username = f"demo-{role}"
                exists = (
                    await conn.execute(select(t.users.c.id).where(t.users.c.username == username))
                ).first()
                if exists is None:
                    await create_user(
                        conn,
                        username=username,
                        password_hash=await checker.hash(password),
                        role=role,
                        actor=SEED_ACTOR,
                        now=now,
                        full_name=f"Demo {role}",
                    )
            token_ok = (
                bool(state.api_token)
                and (await lookup_token(conn, state.api_token, now)) is not None
            )
            if not token_ok:
                state.api_token, _ = await issue_token(
                    conn,
                    await user_owner(conn, DEMO_TOKEN_OWNER),
                    kind=TokenKind.API,
                    name=DEMO_TOKEN_NAME,
                    lifetime=api_token_lifetime(None),
                    created_by=SEED_ACTOR,
                    now=now,
                )
            fines = [(*fine, DEMO_UNIT) for fine in DEMO_FINES]
            for number, amount, name, plate, violation, unit in (
                *fines,
                *(STORY_FINES if story else ()),
            ):
                await register_fine(
                    conn,
                    FineInput(
                        decision_number=number,
                        amount_vnd=amount,
                        violator_name=name,
                        plate=plate,
                        issuing_unit=unit,
                        violation=violation,
                    ),
                )
        if story:
            await _past_outage(PostgresOutageStore(engine), now)
    finally:
        await engine.dispose()


async def _past_outage(store: PostgresOutageStore, now: datetime) -> None:
    """``hnbank``'s link down for 42 minutes yesterday (once: not again on a restart)."""
    if await store.recent(1, bank=PAST_OUTAGE_BANK):
        return
    started = now - timedelta(days=1, hours=2)
    await store.open_outage(PAST_OUTAGE_BANK, started, "seed: connection refused")
    await store.close_outage(PAST_OUTAGE_BANK, started + timedelta(minutes=42))


def seed_demo_data(database_url: str, state: StackState, *, story: bool = True) -> None:
    """Users and token always; with ``story``, the story's fines and the past outage."""
    asyncio.run(_seed(database_url, state, story))
