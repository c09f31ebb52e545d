"""docker-compose itself refuses to start the stack while a secret is unset
or empty, and names it (it used to start with published defaults: anyone
knowing the default webhook secret could sign a "succeeded" callback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.compose import REQUIRED_VARIABLES, compose_config


@pytest.mark.parametrize("missing", sorted(REQUIRED_VARIABLES))
@pytest.mark.parametrize("how", ["unset", "empty"])
def test_compose_refuses_to_start_without(tmp_path: Path, missing: str, how: str) -> None:
    variables = {k: v for k, v in REQUIRED_VARIABLES.items() if k != missing}
    if how == "empty":
        variables[missing] = ""
    result = compose_config(tmp_path, variables)
    assert result.returncode != 0
    # The last line says which variable, and how to make it.
    reason = result.stderr.strip().splitlines()[-1]
    assert f"set {missing}" in reason, result.stderr


def test_compose_starts_with_every_secret_set(tmp_path: Path) -> None:
    result = compose_config(tmp_path, REQUIRED_VARIABLES)
    assert result.returncode == 0, result.stderr
