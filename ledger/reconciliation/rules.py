"""Match rules: which identification rules run for a bank, in which order,
with which amount tolerance (``recon_match_rules``: a bank's own rows over
the ``*`` rows). Rules are data; ``matching`` turns the ones in force into
SQL. Plain CRUD, read by the API and the CLI as well as by the load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core.errors import NotFoundError, ValidationError

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


async def load_rules(conn: AsyncConnection, bank: str) -> dict[str, MatchRule]:
    """The rules in force for ``bank``: its own rows over the ``*`` rows."""
    rows = (
        await conn.execute(
            text(
                "SELECT DISTINCT ON (rule) * FROM recon_match_rules WHERE bank IN ('*', :bank)"
                " ORDER BY rule, bank = '*'"
            ),
            {"bank": bank},
        )
    ).all()
    rules = {
        r.rule: MatchRule(
            rule=r.rule,
            bank=r.bank,
            priority=int(r.priority),
            enabled=bool(r.enabled),
            amount_tolerance_vnd=int(r.amount_tolerance_vnd),
            truncated_chars_min=int(r.truncated_chars_min),
            description=r.description,
        )
        for r in rows
    }
    assert set(rules) <= set(RULES), rules
    return rules


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


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
    await conn.execute(
        text(
            "INSERT INTO recon_match_rules AS r (bank, rule, priority, enabled,"
            " amount_tolerance_vnd, truncated_chars_min, description)"
            " VALUES (:bank, :rule, :priority, :enabled, :tol, :trunc, :description)"
            " ON CONFLICT (bank, rule) DO UPDATE SET priority = EXCLUDED.priority,"
            " enabled = EXCLUDED.enabled, amount_tolerance_vnd = EXCLUDED.amount_tolerance_vnd,"
            " truncated_chars_min = EXCLUDED.truncated_chars_min, updated_at = now()"
        ),
        {
            "bank": bank,
            "rule": rule,
            "priority": base.priority if priority is None else priority,
            "enabled": base.enabled if enabled is None else enabled,
            "tol": _or(amount_tolerance_vnd, base.amount_tolerance_vnd),
            "trunc": _or(truncated_chars_min, base.truncated_chars_min),
            "description": base.description,
        },
    )
    return (await load_rules(conn, bank))[rule]
