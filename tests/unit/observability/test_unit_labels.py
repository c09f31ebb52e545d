"""The ``unit`` label's values stay bounded: the busiest units by code, the
rest folded into ``other``; nothing a unit's name says becomes a label of
its own unless it is a plain unit code."""

from __future__ import annotations

from observability.metrics import UNIT_LABELS_MAX, UNIT_OTHER, fold_units
from reconciler.unit_gauges import unit_values

UNIT_A = "Đội CSGT số 1 - Công an quận Hoàn Kiếm"
UNIT_B = "Phòng CSGT Hà Nội"


def test_the_busiest_units_keep_their_code_the_rest_are_other() -> None:
    activity = {f"U{i:03d}": i for i in range(UNIT_LABELS_MAX + 25)}
    labels = fold_units(activity)
    assert len(set(labels.values())) == UNIT_LABELS_MAX + 1
    assert labels["U074"] == "U074"
    assert labels["U025"] == "U025"
    assert labels["U024"] == UNIT_OTHER
    assert labels["U000"] == UNIT_OTHER


def test_ties_are_broken_the_same_way_every_time() -> None:
    activity = {code: 1 for code in ["C", "A", "B"]}
    assert fold_units(activity, cap=2) == {"A": "A", "B": "B", "C": UNIT_OTHER}
    assert fold_units(dict(reversed(activity.items())), cap=2) == fold_units(activity, cap=2)


def test_what_is_not_a_unit_code_is_never_a_label() -> None:
    activity = {'X"}\n': 100, "a lower": 90, UNIT_OTHER: 80, "x" * 41: 70, "OK": 1}
    assert fold_units(activity) == {
        'X"}\n': UNIT_OTHER,
        "a lower": UNIT_OTHER,
        UNIT_OTHER: UNIT_OTHER,
        "x" * 41: UNIT_OTHER,
        "OK": "OK",
    }


def test_rows_become_gauge_values_by_unit_code() -> None:
    rows = [
        (UNIT_A, "payments", "succeeded", 3),
        (UNIT_A, "payments", "declined", 1),
        (UNIT_A, "payments", "verifying", 9),  # not a finished outcome: dropped
        (UNIT_A, "receipts", "", 120),
        (UNIT_B, "in_doubt", "", 2),
        (UNIT_B, "disputes", "", 1),
        (UNIT_B, "nonsense", "", 5),
    ]
    assert unit_values(rows) == {
        ("payments", ("DCSGTS1CAQHK", "succeeded")): 3,
        ("payments", ("DCSGTS1CAQHK", "declined")): 1,
        ("receipts", ("DCSGTS1CAQHK",)): 120,
        ("in_doubt", ("PCSGTHN",)): 2,
        ("disputes", ("PCSGTHN",)): 1,
    }


def test_many_units_fold_into_other_and_their_values_add_up() -> None:
    rows = [(f"Đội {i}", "in_doubt", "", 1) for i in range(UNIT_LABELS_MAX + 10)]
    values = unit_values(rows)
    assert len(values) == UNIT_LABELS_MAX + 1
    assert sum(values.values()) == UNIT_LABELS_MAX + 10
    assert values[("in_doubt", (UNIT_OTHER,))] == 10
