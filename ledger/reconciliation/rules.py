"""Match rules: which identification rules run for a bank, in which order,
with which amount tolerance (``recon_match_rules``: a bank's own rows over
the ``*`` rows). Rules are data; ``matching`` turns the ones in force into
SQL. Plain CRUD, read by the API and the CLI as well as by the load."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core import tables as t
from ledger.core.errors import NotFoundError, ValidationError
from ledger.core.rows import field_names, row_mapper

RULES: Final = ("bank_ref", "end_to_end", "payment_reference", "decision_number", "refund_ref")


@dataclass(frozen=True)
class MatchRule:
    rule: str
    bank: str  # "*" or the bank whose row overrides it
    priority: int
    enabled: bool
    amount_tolerance_vnd: int
    truncated_chars_min: int
    description: str


_rules: Final = t.recon_match_rules
_RULE: Final = tuple(_rules.c[name] for name in field_names(MatchRule))
_rule: Final[Callable[[Any], MatchRule]] = row_mapper(MatchRule)
ALL_BANKS: Final = "*"


async def load_rules(conn: AsyncConnection, bank: str) -> dict[str, MatchRule]:
    """The rules in force for ``bank``: its own rows over the ``*`` rows."""
    # By rule, the bank's own row first (``bank = '*'`` is false for it).
    query = (
        select(*_RULE)
        .where(_rules.c.bank.in_((ALL_BANKS, bank)))
        .order_by(_rules.c.rule, _rules.c.bank == ALL_BANKS)
    )
    rules: dict[str, MatchRule] = {}
    for row in await conn.execute(query):
        rules.setdefault(row.rule, _rule(row))
    assert set(rules) <= set(RULES), rules
    return rules


async def set_rule(
    conn: AsyncConnection,
    bank: str,
    rule: str,
    *,
    priority: int | None = None,
    enabled: bool | None = None,
    amount_tolerance_vnd: int | None = None,
    truncated_chars_min: int | None = None,
) -> MatchRule:
    """Create or change a bank's override of a rule (unset fields copy the
    ``*`` row)."""
    if rule not in RULES:
        raise ValidationError("rule", f"must be one of {', '.join(RULES)}")
    base = (await load_rules(conn, bank)).get(rule)
    if base is None:
        raise NotFoundError(f"no rule {rule!r}")
    changed = {
        "priority": base.priority if priority is None else priority,
        "enabled": base.enabled if enabled is None else enabled,
        "amount_tolerance_vnd": _or(amount_tolerance_vnd, base.amount_tolerance_vnd),
        "truncated_chars_min": _or(truncated_chars_min, base.truncated_chars_min),
    }
    upsert = insert(_rules).values(bank=bank, rule=rule, description=base.description, **changed)
    await conn.execute(
        upsert.on_conflict_do_update(
            index_elements=[_rules.c.bank, _rules.c.rule],
            set_={**{name: upsert.excluded[name] for name in changed}, "updated_at": func.now()},
        )
    )
    return (await load_rules(conn, bank))[rule]


def _or(value: int | None, default: int) -> int:
    return default if value is None else value
