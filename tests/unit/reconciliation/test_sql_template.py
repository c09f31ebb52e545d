"""SQL templates are filled only when the placeholders and the values given
are the same names, and every value is SQL of ours: anything else is a
programmer's error, refused before a statement is built."""

from __future__ import annotations

import pytest

from ledger.reconciliation.sql_template import EMPTY, Sql, fill, identifier, literal
from ledger.reconciliation.tuning import SETTING_VALUE

TEMPLATE = "DELETE FROM {table} s WHERE s.bank = :bank{near}"


def test_every_placeholder_is_filled_once_and_the_text_is_not_read_again() -> None:
    near = Sql(" AND s.day = '{table}'")  # a value's own text is not a placeholder
    assert fill(TEMPLATE, table=identifier("recon_keys"), near=near) == (
        "DELETE FROM recon_keys s WHERE s.bank = :bank AND s.day = '{table}'"
    )
    assert fill("{a} = {a}", a=Sql("x")) == "x = x"


@pytest.mark.parametrize(
    "values",
    [
        {"table": identifier("recon_keys")},  # {near} missing
        {"table": identifier("recon_keys"), "near": EMPTY, "extra": EMPTY},  # one too many
        {"table": identifier("recon_keys"), "nearby": EMPTY},  # a misspelt name
    ],
    ids=["missing", "extra", "misspelt"],
)
def test_a_missing_or_extra_placeholder_is_refused(values: dict[str, Sql]) -> None:
    with pytest.raises(AssertionError, match="placeholders"):
        fill(TEMPLATE, **values)


def test_a_value_that_is_not_sql_of_ours_is_refused() -> None:
    with pytest.raises(AssertionError, match="not SQL of ours"):
        fill(TEMPLATE, table=identifier("t"), near="; DROP TABLE x")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["recon keys", "t; DROP", "Recon", "", "1t"])
def test_an_identifier_is_a_plain_lower_case_name(name: str) -> None:
    with pytest.raises(AssertionError, match="not an identifier"):
        identifier(name)


@pytest.mark.parametrize("value", ["it's", "a\\b"])
def test_a_literal_has_nothing_to_escape(value: str) -> None:
    with pytest.raises(AssertionError, match="not a plain constant"):
        literal(value)
    assert literal("^[A-Za-z0-9]{1,34}$").text == "'^[A-Za-z0-9]{1,34}$'"


@pytest.mark.parametrize("value", ["256MB", "5min", "200ms", "30s"])
def test_session_settings_take_a_size_or_a_duration(value: str) -> None:
    assert SETTING_VALUE.fullmatch(value)


@pytest.mark.parametrize("value", ["0", "5 min", "1'; RESET ALL; --", "256"])
def test_anything_else_is_not_a_setting_value(value: str) -> None:
    assert SETTING_VALUE.fullmatch(value) is None
