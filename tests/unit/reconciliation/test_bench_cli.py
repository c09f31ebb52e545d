"""bench/recon.py refuses bad options before it starts anything."""

from __future__ import annotations

from typing import Any

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
def test_a_bad_option_is_refused_and_nothing_runs(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    started: list[Any] = []

    async def run(*args: Any) -> None:
        started.append(args)

    monkeypatch.setattr(bench, "main_async", run)
    monkeypatch.setattr("sys.argv", ["bench/recon.py", *argv])
    with pytest.raises(SystemExit) as refused:
        bench.main()
    assert refused.value.code == 2
    assert message in capsys.readouterr().err
    assert started == []
