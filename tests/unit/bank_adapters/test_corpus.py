"""Real statement files and VietQR codes from public repositories (see
``corpus/SOURCES.md``), transcribed into VND, each through its parser: the
line count and sum in đồng, or the refusal, that ``corpus/manifest.json``
records for it. The expected values were read from the files themselves
(the :61: and Ntry amounts, cross-checked against each file's own opening
and closing balances), not taken from the parser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bank_adapters.statements import parse_camt053, parse_mt940
from bank_adapters.types import Direction, ParsedStatement
from bank_adapters.vietqr_payload import VietQRPayloadError, read_vietqr_payload
from tests.unit.bank_adapters.strategies import (
    FUZZ,
    assert_refused,
    damaged,
    only_clean_refusals,
)

CORPUS = Path(__file__).parent / "corpus"
MANIFEST: list[dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text("utf-8"))
PARSERS = {"mt940": parse_mt940, "camt053": parse_camt053}
LICENCES = {"MIT", "BSD-3-Clause", "Apache-2.0"}


def _entries(fmt: str) -> list[dict[str, Any]]:
    return [entry for entry in MANIFEST if entry["format"] == fmt]


def _signed_sum(parsed: ParsedStatement) -> int:
    return sum(
        line.amount_vnd if line.direction is Direction.CREDIT else -line.amount_vnd
        for line in parsed.lines
    )


def test_the_corpus_is_large_and_varied_enough_and_every_file_is_listed() -> None:
    listed = {entry["file"] for entry in MANIFEST}
    on_disk = {
        path.relative_to(CORPUS).as_posix()
        for path in CORPUS.rglob("*")
        if path.is_file() and path.parent != CORPUS
    }
    assert listed == on_disk
    assert len(MANIFEST) >= 40
    assert len({entry["repository"] for entry in MANIFEST}) >= 8
    assert {entry["format"] for entry in MANIFEST} == {"mt940", "camt053", "vietqr"}
    for entry in MANIFEST:
        assert entry["licence"] in LICENCES, entry["file"]
        assert entry["repository"].startswith("https://github.com/"), entry["file"]
        assert entry["path"]
        assert len(entry["commit"]) == 40


@pytest.mark.parametrize(
    "entry", _entries("mt940") + _entries("camt053"), ids=lambda entry: entry["file"]
)
def test_each_statement_is_read_or_refused_as_recorded(entry: dict[str, Any]) -> None:
    data = (CORPUS / entry["file"]).read_bytes()
    expect = entry["expect"]
    parse = PARSERS[entry["format"]]
    if "refused" in expect:
        assert_refused(parse, data, expect["refused"]["where"], expect["refused"]["reason"])
        return
    parsed = parse(data)
    assert (len(parsed.lines), _signed_sum(parsed)) == (expect["lines"], expect["sum_vnd"])
    if parsed.opening_balance_vnd is not None and parsed.closing_balance_vnd is not None:
        assert parsed.opening_balance_vnd + _signed_sum(parsed) == parsed.closing_balance_vnd
    assert len({line.bank_ref for line in parsed.lines}) == len(parsed.lines)


@pytest.mark.parametrize("entry", _entries("vietqr"), ids=lambda entry: entry["file"])
def test_each_vietqr_code_is_read_or_refused_as_recorded(entry: dict[str, Any]) -> None:
    payload = (CORPUS / entry["file"]).read_text("ascii").strip()
    expect = entry["expect"]
    if "refused" in expect:
        with pytest.raises(VietQRPayloadError) as caught:
            read_vietqr_payload(payload)
        assert caught.value.field == expect["refused"]["where"]
        assert expect["refused"]["reason"] in caught.value.reason
        return
    code = read_vietqr_payload(payload)
    assert {name: getattr(code, name) for name in expect["read"]} == expect["read"]


_STATEMENTS = [
    (PARSERS[entry["format"]], (CORPUS / entry["file"]).read_bytes())
    for entry in _entries("mt940") + _entries("camt053")
]


@FUZZ
@given(data=st.data(), index=st.integers(0, len(_STATEMENTS) - 1))
def test_damaged_real_files_only_raise_the_parse_error(data: st.DataObject, index: int) -> None:
    parse, original = _STATEMENTS[index]
    only_clean_refusals(parse, data.draw(damaged(st.just(original))))
