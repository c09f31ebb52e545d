"""Closed sets the code names as ``StrEnum``s are spelled out in SQL too: in
the migrations' CHECK constraints and partial indexes, and in the tuned
statements that keep their literals so the planner can use those indexes.
Read back from PostgreSQL (``pg_constraint``, ``pg_indexes``) after the
migrations ran, each must equal its enum; a status added on one side only
fails here."""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

import pytest
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledger import disputes as ds
from ledger import payments as pay
from ledger.access import SERVICE_ROLES, STAFF_ROLES, Role, TokenKind
from ledger.core.approvals import OPEN_STATUSES, ApprovalKind, ApprovalStatus
from ledger.core.postings import AccountKind, SystemAccount
from ledger.fines import FINE_STATUS_SQL, FineStatus
from ledger.payments.views import IN_DOUBT_SUMMARY_SQL, NEXT_LIVE_SQL
from ledger.reconciliation.discrepancies import DISCREPANCY_KINDS
from ledger.reconciliation.matching import LINE_CLASSES

_LITERAL = re.compile(r"'((?:[^']|'')*)'")
# ``column = ANY (ARRAY['a'::text, ...])``: how PostgreSQL prints ``column IN (...)``.
_ANY_ARRAY = r"\(?{column} = ANY \(ARRAY\[([^\]]*)\]\)"
_IN_LIST = r"\b{column} IN \(([^)]*)\)"


def _literals(listed: str) -> set[str]:
    return {value.replace("''", "'") for value in _LITERAL.findall(listed)}


def _lists(definition: str, column: str, pattern: str = _ANY_ARRAY) -> list[set[str]]:
    return [_literals(m) for m in re.findall(pattern.format(column=re.escape(column)), definition)]


def _values(members: Iterable[StrEnum]) -> set[str]:
    return {member.value for member in members}


async def _column_check(conn: AsyncConnection, table: str, column: str) -> set[str]:
    """The values a one-column CHECK constraint allows ``table.column``."""
    definitions = (
        await conn.execute(
            text(
                "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c "
                "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
                "WHERE c.contype = 'c' AND c.conrelid = CAST(:table AS regclass) "
                "AND cardinality(c.conkey) = 1 AND a.attname = :column"
            ),
            {"table": table, "column": column},
        )
    ).scalars()
    lists = [found for d in definitions for found in _lists(d, column)]
    assert len(lists) == 1, f"{table}.{column}: {len(lists)} CHECK lists"
    return lists[0]


async def _index_lists(
    conn: AsyncConnection, index: str, column: str, pattern: str = _ANY_ARRAY
) -> list[set[str]]:
    """The value lists a partial index's predicate names for ``column``."""
    query = text("SELECT indexdef FROM pg_indexes WHERE indexname = :index")
    definition = (await conn.execute(query, {"index": index})).scalar_one()
    return _lists(definition, column, pattern)


@pytest.mark.parametrize(
    ("table", "column", "members"),
    [
        ("payments", "status", pay.PaymentStatus),
        ("payments", "channel", pay.PaymentChannel),
        ("accounts", "kind", AccountKind),
        ("approvals", "kind", ApprovalKind),
        ("approvals", "status", ApprovalStatus),
        ("disputes", "status", ds.DisputeStatus),
        ("disputes", "resolution", ds.DisputeAction),
        ("api_tokens", "kind", TokenKind),
    ],
)
async def test_check_constraints_allow_exactly_the_enum(
    engine: AsyncEngine, table: str, column: str, members: type[StrEnum]
) -> None:
    async with engine.connect() as conn:
        assert await _column_check(conn, table, column) == _values(members)


async def test_staff_are_every_role_but_the_portal(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert await _column_check(conn, "users", "role") == _values(Role) - {Role.PORTAL}
        assert await _column_check(conn, "users", "role") == set(STAFF_ROLES)


async def test_services_never_approve_nor_administer(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        allowed = await _column_check(conn, "service_accounts", "role")
    assert allowed == set(SERVICE_ROLES)
    assert not allowed & {Role.APPROVER, Role.ADMIN}


async def test_partial_indexes_name_the_live_statuses_and_driven_channels(
    engine: AsyncEngine,
) -> None:
    live = _values(pay.LIVE_STATUSES)
    async with engine.connect() as conn:
        assert await _index_lists(conn, "payments_one_live_per_fine", "status") == [live]
        assert await _index_lists(conn, "payments_one_live_per_fine", "channel") == [
            _values(pay.DRIVEN_CHANNELS)
        ]
        assert await _index_lists(conn, "payments_in_doubt", "status") == [live]


async def test_partial_indexes_name_the_open_approvals_and_final_disputes(
    engine: AsyncEngine,
) -> None:
    # ``status NOT IN (...)`` is printed ``status <> ALL (ARRAY[...])``.
    not_in = r"\(?{column} <> ALL \(ARRAY\[([^\]]*)\]\)"
    async with engine.connect() as conn:
        assert await _index_lists(conn, "approvals_one_open", "status") == [_values(OPEN_STATUSES)]
        assert await _index_lists(conn, "disputes_one_open_per_debit", "status", not_in) == [
            _values(ds.FINAL_STATUSES)
        ]


@pytest.mark.parametrize(
    ("statement", "column", "members"),
    [
        (IN_DOUBT_SUMMARY_SQL, "status", pay.LIVE_STATUSES),
        (NEXT_LIVE_SQL, "status", pay.LIVE_STATUSES),
        (NEXT_LIVE_SQL, "channel", pay.DRIVEN_CHANNELS),
    ],
)
def test_tuned_statements_spell_the_same_sets(
    statement: TextClause, column: str, members: Iterable[StrEnum]
) -> None:
    assert _lists(statement.text, column, _IN_LIST) == [_values(members)]


def test_fine_status_sql_names_the_fine_statuses_and_live_payments() -> None:
    sql = FINE_STATUS_SQL.text
    assert _lists(sql, "status", _IN_LIST) == [_values(pay.LIVE_STATUSES)]
    assert set(re.findall(r"(?:THEN|ELSE) '(\w+)'", sql)) == _values(FineStatus)


async def test_the_migrations_create_the_system_accounts(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        codes = (await conn.execute(text("SELECT code FROM accounts"))).scalars().all()
    assert set(codes) == _values(SystemAccount)


async def test_discrepancy_kinds_and_line_classes_are_the_codes(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert await _column_check(conn, "discrepancies", "kind") == set(DISCREPANCY_KINDS)
        assert await _column_check(conn, "statement_lines", "class") == set(LINE_CLASSES)
