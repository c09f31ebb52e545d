"""The suite holds no assertion of a shape that cannot fail, and the check
finds each such shape (so it can fail too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.vacuous_asserts import findings, scan

TESTS = Path(__file__).resolve().parents[1]


def test_the_suite_has_no_assertion_that_cannot_fail() -> None:
    assert scan([TESTS]) == []


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("assert True", "asserts a constant"),
        ("assert 'always', x", "asserts a constant"),
        ("assert (x, 'message')", "asserts a constant"),
        ("assert x == 1 or True", "'or' with a constant"),
        ("assert len(rows) >= 0", "a length is always >= 0"),
        ("assert a.b == a.b", "compares a value with itself"),
        ("v = Money(5)\nassert isinstance(v, Money)", "checks what the line before just made"),
        ("a = Thing()\nassert a is not None", "checks what the line before just made"),
        ("with pytest.raises(Exception):\n    f()", "pytest.raises(Exception)"),
        ("try:\n    assert f()\nexcept AssertionError:\n    pass", "try/except AssertionError"),
        ("for x in []:\n    assert x", "an assertion in a loop over nothing"),
    ],
)
def test_each_shape_is_found(source: str, why: str) -> None:
    [found] = findings(source, "t.py")
    assert found.startswith("t.py:"), found
    assert why in found, found


@pytest.mark.parametrize(
    "source",
    [
        "assert False, 'unreachable'",
        "assert f() == f()",  # the same call twice: determinism, which can fail
        "assert len(rows) >= 1",
        "v = make()\nassert isinstance(v, Money)",
        "a = find()\nassert a is not None",
        "with pytest.raises(ValueError):\n    f()",
        "for x in rows:\n    assert x",
    ],
)
def test_what_can_fail_is_not_listed(source: str) -> None:
    assert findings(source, "t.py") == []
