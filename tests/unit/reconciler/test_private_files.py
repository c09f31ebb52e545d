"""``reconciler dev`` writes dev.json (passwords, the API token) and its
state file readable by their owner alone, from the first byte."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from reconciler.devstack.stack import StackState, write_private


def test_the_file_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_private(tmp_path / "dev.json", '{"api_token": "rk_x"}')
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "dev.json").stat().st_mode) == 0o600


def test_a_reader_of_a_leftover_temporary_file_never_sees_the_secrets(tmp_path: Path) -> None:
    """A world-readable ``dev.tmp`` left by a crash, held open by another
    user: writing into that file (and restricting it after) would hand
    them the secrets through the open descriptor."""
    leftover = tmp_path / "dev.tmp"
    leftover.write_text("old")
    leftover.chmod(0o644)
    with leftover.open() as spy:
        write_private(tmp_path / "dev.json", '{"api_token": "rk_secret"}')
        spy.seek(0)
        assert "rk_secret" not in spy.read()
    assert (tmp_path / "dev.json").read_text() == '{"api_token": "rk_secret"}'


def test_the_state_file_round_trips_owner_only(tmp_path: Path) -> None:
    state = StackState(api_token="rk_1", passwords={"admin": "p"}, citizen_link_secret="c" * 43)
    state.save(tmp_path / "stack.json")
    assert StackState.load(tmp_path / "stack.json") == state
    assert stat.S_IMODE((tmp_path / "stack.json").stat().st_mode) == 0o600
