"""The keys set-based SQL computes are the keys Python computes: one
definition (``domain.keys``), checked here against PostgreSQL itself for any
bank id and bank reference."""

from __future__ import annotations

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.formats import BANK_ID_RE, BANK_REF_RE
from domain.keys import (
    external_debit_key,
    external_debit_key_sql,
    suspense_key,
    suspense_key_sql,
)
from reconciler.devstack.postgres import PostgresInfo

BANKS = st.from_regex(BANK_ID_RE, fullmatch=True)
# Any bank reference we accept, and longer ones, which the key must cut.
REFS = st.from_regex(BANK_REF_RE, fullmatch=True) | st.text(
    alphabet="AZaz09._:-", min_size=150, max_size=300
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bank=BANKS, ref=REFS)
def test_sql_and_python_give_the_same_keys(pg_server: PostgresInfo, bank: str, ref: str) -> None:
    sql = f"SELECT {external_debit_key_sql(':bank', ':ref')}, {suspense_key_sql(':bank', ':ref')}"
    # SQLAlchemy's bind style in the code, psycopg's here.
    sql = sql.replace(":bank", "%(bank)s").replace(":ref", "%(ref)s")
    with psycopg.connect(pg_server.libpq_url("postgres")) as conn:
        row = conn.execute(sql, {"bank": bank, "ref": ref}).fetchone()
    assert row == (external_debit_key(bank, ref), suspense_key(bank, ref))
