"""The match keys PostgreSQL computes (generated columns) equal the Python
ones the rest of the service uses."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bank_adapters.text import decision_number_key, payment_reference
from ledger.core.errors import ValidationError
from ledger.fines import normalise_decision_number
from tests.support.ledger import make_fine
from tests.support.recon import new_payment

SHARED = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@SHARED
@given(st.text(min_size=1, max_size=120).filter(lambda s: "\x00" not in s))
async def test_the_payment_reference_function_is_bank_adapters(
    engine: AsyncEngine, key: str
) -> None:
    async with engine.connect() as conn:
        got = (
            await conn.execute(text("SELECT recon_payment_reference(:k)"), {"k": key})
        ).scalar_one()
    assert got == payment_reference(key)


@SHARED
@given(
    st.text(alphabet="0123456789/QĐđqd-XPHCxphcVỨƯ .", min_size=1, max_size=40).filter(
        lambda s: any(c.isalnum() for c in s)
    )
)
async def test_the_decision_key_column_is_bank_adapters_decision_number_key(
    engine: AsyncEngine, number: str
) -> None:
    try:
        normalise_decision_number(number)
    except ValidationError:
        return
    fine = await make_fine(engine, number)
    async with engine.connect() as conn:
        got = (
            await conn.execute(
                text("SELECT decision_alnum FROM fines WHERE id = :id"), {"id": fine.id}
            )
        ).scalar_one()
    assert got == decision_number_key(number)


async def test_a_payment_and_a_fine_carry_their_keys(engine: AsyncEngine) -> None:
    fine = await make_fine(engine, "01234/QĐ-XPVPHC")
    payment = await new_payment(engine, fine)
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT p.payment_ref, f.decision_alnum FROM payments p"
                    " JOIN fines f ON f.id = p.fine_id WHERE p.id = :id"
                ),
                {"id": payment.id},
            )
        ).one()
    assert row.payment_ref == payment_reference(payment.debit_key)
    assert row.decision_alnum == "01234QDXPVPHC"


async def test_the_table_descriptions_match_the_schema(engine: AsyncEngine) -> None:
    from ledger.core import tables as t

    described = [
        t.statement_imports,
        t.reconciliations,
        t.statement_lines,
        t.recon_match_rules,
        t.discrepancies,
    ]
    async with engine.connect() as conn:
        for table in described:
            columns = (
                (
                    await conn.execute(
                        text(
                            "SELECT column_name FROM information_schema.columns"
                            " WHERE table_name = :t ORDER BY ordinal_position"
                        ),
                        {"t": table.name},
                    )
                )
                .scalars()
                .all()
            )
            assert list(columns) == [c.name for c in table.c], table.name
