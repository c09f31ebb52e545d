"""A load's counts with an upload's claimed lines moved to ``unconfirmed``
(pure: ``ledger.reconciliation.claims.reclassify``)."""

from __future__ import annotations

from ledger.reconciliation.claims import Claims, reclassify


def test_claimed_lines_are_counted_unconfirmed_and_nothing_else_moves() -> None:
    classes = {"matched": 5, "healed": 1, "duplicate": 2, "unknown": 1}
    amounts = {
        "matched:credit": 500,
        "healed:credit": 100,
        "duplicate:credit": 200,
        "unknown:debit": 7,
    }
    claims = Claims({("healed", "credit"): (1, 100), ("duplicate", "credit"): (1, 100)}, opened=1)
    moved, moved_amounts = reclassify(classes, amounts, claims)
    assert moved == {"matched": 5, "duplicate": 1, "unknown": 1, "unconfirmed": 2}
    assert moved_amounts == {
        "matched:credit": 500,
        "duplicate:credit": 100,
        "unknown:debit": 7,
        "unconfirmed:credit": 200,
    }
    assert sum(moved.values()) == sum(classes.values())
    assert claims.lines == 2
    # The inputs are left as they were.
    assert classes["healed"] == 1


def test_no_claims_change_nothing() -> None:
    classes, amounts = {"matched": 3}, {"matched:credit": 30}
    assert reclassify(classes, amounts, Claims()) == (classes, amounts)
