"""The chaos harness's pure parts: the seeded kill schedule and the
invariants over ground-truth and ledger rows (each invariant broken once)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from bench.chaos_checks import (
    ChaosOptionError,
    Ledger,
    check_invariants,
    kill_schedule,
    parse_kills,
    pids_for,
)


def _debit(id_: int, key: str, **kw: Any) -> dict[str, Any]:
    row = {
        "id": id_,
        "bank_ref": f"REF{id_}",
        "kind": "debit",
        "idempotency_key": key,
        "amount_vnd": 750_000,
        "status": "succeeded",
        "duplicate_of": None,
        "original_id": None,
    }
    return {**row, **kw}


def _refund(id_: int, original: int) -> dict[str, Any]:
    return _debit(id_, f"refund-{original}", kind="refund", original_id=original)


def _payment(key: str, status: str = "succeeded", bank: str = "sgbank") -> dict[str, Any]:
    return {"debit_key": key, "status": status, "amount_vnd": 750_000, "bank": bank}


def _clean() -> tuple[dict[str, list[dict[str, Any]]], Ledger]:
    bank = {"sgbank": [_debit(1, "a"), _debit(2, "b"), _refund(3, 2)]}
    ledger = Ledger(
        payments=[_payment("a"), _payment("b", "refunded"), _payment("c", "declined")],
        receipts=[{"debit_key": "a", "series": "S1", "number": 1}],
        postings_sum=0,
    )
    return bank, ledger


def test_a_clean_run_has_no_violation() -> None:
    assert check_invariants(*_clean()) == []


def test_a_debit_with_neither_receipt_nor_refund_is_a_violation() -> None:
    bank, ledger = _clean()
    bank["sgbank"].append(_debit(4, "d"))
    ledger = Ledger([*ledger.payments, _payment("d", "refunded")], ledger.receipts, 0)
    (violation,) = check_invariants(bank, ledger)
    assert violation == "sgbank debit REF4 (key d) ends as 0 receipt(s) and 0 refund(s)"


def test_a_debit_both_receipted_and_refunded_is_a_violation() -> None:
    bank, ledger = _clean()
    bank["sgbank"].append(_refund(4, 1))
    assert check_invariants(bank, ledger) == [
        "sgbank debit REF1 (key a) ends as 1 receipt(s) and 1 refund(s)"
    ]


def test_a_duplicate_debit_must_be_refunded() -> None:
    bank, ledger = _clean()
    bank["sgbank"].append(_debit(4, "a", duplicate_of=1))
    assert check_invariants(bank, ledger) == [
        "sgbank debit REF4 (key a) ends as 0 receipt(s) and 0 refund(s)"
    ]
    bank["sgbank"].append(_refund(5, 4))
    assert check_invariants(bank, ledger) == []


def test_settled_without_a_debit_is_a_violation() -> None:
    bank, ledger = _clean()
    ledger = Ledger([*ledger.payments, _payment("z")], ledger.receipts, 0)
    assert "payment z settled on sgbank without a debit" in check_invariants(bank, ledger)


def test_in_doubt_unbalanced_and_numbering_violations() -> None:
    bank, ledger = _clean()
    bank["sgbank"].append(_debit(4, "d"))
    receipts = [
        *ledger.receipts,
        {"debit_key": "d", "series": "S1", "number": 3},
        {"debit_key": "d", "series": "S1", "number": 3},
    ]
    broken = Ledger([*ledger.payments, _payment("d", "verifying")], receipts, 5)
    assert check_invariants(bank, broken) == [
        "the ledger does not balance: postings sum to 5 đồng",
        "series S1: a receipt number is used twice",
        "series S1: numbers missing [2]",
        "sgbank debit REF4 (key d) ends as 2 receipt(s) and 0 refund(s)",
        "payment d still in doubt (verifying)",
        "payment d has 2 receipts",
        "payment d has a receipt but is verifying",
    ]


def test_an_amount_that_differs_from_the_bank_is_a_violation() -> None:
    bank, ledger = _clean()
    bank["sgbank"][0]["amount_vnd"] = 1
    assert check_invariants(bank, ledger) == ["sgbank debit REF1: 1 đồng, ledger says 750000"]


def test_a_debit_booked_twice_is_a_violation_even_with_one_receipt() -> None:
    # A replayed callback or a repeated click that moved money twice: one
    # receipt, the payment succeeded, but the bank's debit entered the ledger
    # twice.
    bank, ledger = _clean()
    booked = {("sgbank", "REF1"): 1, ("sgbank", "REF2"): 1}
    assert check_invariants(bank, Ledger(ledger.payments, ledger.receipts, 0, booked)) == []
    twice = {**booked, ("sgbank", "REF1"): 2}
    assert check_invariants(bank, Ledger(ledger.payments, ledger.receipts, 0, twice)) == [
        "sgbank debit REF1 booked 2 times in the ledger"
    ]


def test_booking_a_debit_the_bank_did_not_make_is_a_violation() -> None:
    bank, ledger = _clean()
    for key in (("sgbank", "REF9"), ("hnbank", "REF1")):
        booked = {("sgbank", "REF1"): 1, key: 1}
        assert check_invariants(bank, Ledger(ledger.payments, ledger.receipts, 0, booked)) == [
            f"{key[0]} {key[1]} booked in the ledger but the bank debited no such thing"
        ]


def test_the_kill_schedule_is_seeded_and_inside_the_traffic() -> None:
    kinds = ("worker", "api", "postgres")
    first = kill_schedule(7, kinds, 1000)
    assert first == kill_schedule(7, kinds, 1000)
    assert first != kill_schedule(8, kinds, 1000)
    assert sorted(k.kind for k in first) == sorted(kinds)
    assert all(100 <= k.after_payments <= 900 for k in first)
    assert [k.after_payments for k in first] == sorted(k.after_payments for k in first)


def test_kill_kinds_are_checked() -> None:
    assert parse_kills("worker, api") == ("worker", "api")
    with pytest.raises(ChaosOptionError, match="unknown kind 'workers'"):
        parse_kills("workers")
    with pytest.raises(ChaosOptionError, match="named twice"):
        parse_kills("api,api")


def test_pids_for_each_kind() -> None:
    pids: dict[str, int | None] = {
        "worker": 1,
        "worker-2": 2,
        "api": 3,
        "prober": 4,
        "sim-sgbank": 5,
        "sim-hnbank": 6,
        "temporal": None,
    }
    rng = random.Random(1)
    assert pids_for("worker", pids, rng) == [1, 2]
    assert pids_for("api", pids, rng) == [3]
    assert pids_for("temporal", pids, rng) == []
    assert pids_for("simulator", pids, rng)[0] in (5, 6)


def test_a_payment_settled_on_the_second_booking_with_the_first_refunded_is_sound() -> None:
    # The 10,000-payment run's case: the bank booked key "a" twice (REF1,
    # and REF4 a duplicate of it); the payment settled on REF4 (its callback
    # came first) and REF1 was refunded. Matched by our key alone, REF1
    # looks receipted and refunded and REF4 looks unaccounted for.
    bank, ledger = _clean()
    bank["sgbank"] += [_debit(4, "a", duplicate_of=1), _refund(5, 1)]
    by_key = Ledger(ledger.payments, ledger.receipts, 0)
    assert check_invariants(bank, by_key) == [
        "sgbank debit REF1 (key a) ends as 1 receipt(s) and 1 refund(s)",
        "sgbank debit REF4 (key a) ends as 0 receipt(s) and 0 refund(s)",
    ]
    receipts = [{**ledger.receipts[0], "bank": "sgbank", "bank_ref": "REF4"}]
    assert check_invariants(bank, Ledger(ledger.payments, receipts, 0)) == []
    # ... and by reference a debit that is both receipted and refunded is still one.
    receipts = [{**ledger.receipts[0], "bank": "sgbank", "bank_ref": "REF1"}]
    assert check_invariants(bank, Ledger(ledger.payments, receipts, 0)) == [
        "sgbank debit REF1 (key a) ends as 1 receipt(s) and 1 refund(s)",
        "sgbank debit REF4 (key a) ends as 0 receipt(s) and 0 refund(s)",
    ]
