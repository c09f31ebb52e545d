"""Every app command in docker-compose.yml parses against the real CLI, so the
production stack cannot drift from the `reconciler` command's options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from reconciler.cli.main import main

COMPOSE = Path(__file__).resolve().parents[3] / "docker-compose.yml"


def _app_commands() -> list[tuple[str, list[str]]]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    found = []
    for name, service in services.items():
        command = service.get("command")
        if isinstance(command, list) and command and command[0] == "reconciler":
            found.append((name, [str(part) for part in command[1:]]))
    return found


def test_compose_runs_every_service_process() -> None:
    commands = {args[0] for _, args in _app_commands()}
    assert commands >= {"api", "worker", "prober", "sim", "migrate"}


@pytest.mark.parametrize(("service", "args"), _app_commands())
def test_compose_command_parses(service: str, args: list[str]) -> None:
    group_ctx = main.make_context("reconciler", list(args), resilient_parsing=True)
    with group_ctx:
        name, command, rest = main.resolve_command(group_ctx, list(args))
        assert command is not None, f"{service}: unknown command {args[0]}"
        # Parses and validates every option without running the command.
        with command.make_context(name or args[0], rest, parent=group_ctx):
            pass


def test_a_wrong_option_would_be_caught() -> None:
    group_ctx = main.make_context("reconciler", ["sim"], resilient_parsing=True)
    with group_ctx, pytest.raises(click.UsageError):
        name, command, rest = main.resolve_command(group_ctx, ["sim", "--bogus", "x"])
        assert command is not None
        command.make_context(name or "sim", rest, parent=group_ctx)
