"""bench/recon.py refuses bad options before it starts anything."""

from __future__ import annotations

import pytest

from bench import recon as bench


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--history-days", "31"], "--history-days must be 0 to 30, not 31"),
        (["--history-days", "-1"], "--history-days must be 0 to 30, not -1"),
        (["--repeats", "0"], "--repeats must be 1 to 9, not 0"),
    ],
)
def test_a_bad_option_is_refused(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as refused:
        bench.parse_options(argv)
    assert refused.value.code == 2
    assert message in capsys.readouterr().err


def test_print_only_runs_write_nothing() -> None:
    assert bench.parse_options([]).write
    assert not bench.parse_options(["--no-write"]).write
    assert not bench.parse_options(["--history-days", "2"]).write
    one = bench.parse_options(["--one-connection"])
    assert not one.write
    assert one.tuning.parallel_lines_min > bench.LINES_PER_STATEMENT_MAX
