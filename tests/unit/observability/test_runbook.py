"""The runbook read as data (issue 17: "a runbook section for each alert and
each failure, each with the command to run; nothing in it that does not
exist"): a section per alert of ``observability/prometheus/`` and no section
for an alert that is gone; each alert's section gives a command (or links to
the section that does); every ``reconciler`` command it names exists with
the options it names, every API route it names is a route of the app, and
every docker-compose service it names is in ``docker-compose.yml``."""

from __future__ import annotations

import re
from typing import Final

import click
import yaml

from reconciler.cli.main import main
from tests.integration.identity.test_role_matrix import ROUTES
from tests.unit.observability.promql import REPO

RUNBOOK: Final = REPO / "docs" / "runbook.md"
PROCEDURES_HEADING: Final = "# Failures and procedures"
# The failures and procedures the issue names, each a section of its own.
PROCEDURES: Final = (
    "PostgreSQL down",
    "Backup and restore",
    "Point-in-time restore",
    "A unit's payments, receipts, doubts or disputes",
    "Signing-key rotation",
    "Webhook secret rotation",
    "A receipt-number gap",
    "An audit chain break",
    "Token revocation",
    "Deploy, migrate, roll back",
    "Monthly uptime report per bank",
)
# A code span that is something to run: a CLI, a compose command, SQL, or a
# call of the API.
COMMAND: Final = re.compile(
    r"^(?:reconciler|docker-compose|curl|psql|amtool|promtool|SELECT|UPDATE)\b"
    r"|^(?:GET|POST|DELETE) /"
)
CODE_SPAN: Final = re.compile(r"```[a-z]*\n(.*?)```|`([^`]+)`", re.S)
LINK: Final = re.compile(r"\]\(#([a-z0-9-]+)\)")
COMPOSE_VERBS: Final = ("ps", "logs", "restart", "stop", "start", "up")


def _alert_names() -> set[str]:
    names = set()
    for path in (REPO / "observability" / "prometheus").glob("*.yml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for group in doc.get("groups", []) if isinstance(doc, dict) else []:
            names |= {rule["alert"] for rule in group["rules"] if "alert" in rule}
    return names


def _text() -> str:
    return RUNBOOK.read_text(encoding="utf-8")


def _sections(markdown: str) -> dict[str, str]:
    """Each ``## `` section's heading and body."""
    parts = re.split(r"^## (.+)$", markdown, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def _anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _spans(markdown: str) -> list[str]:
    """Every code span and code-block line, whitespace collapsed (an inline
    span may wrap across lines)."""
    found: list[str] = []
    for block, inline in CODE_SPAN.findall(markdown):
        lines = block.splitlines() if block else [inline]
        found += [" ".join(line.split()) for line in lines if line.strip()]
    return found


def _commands(markdown: str) -> list[str]:
    return [span for span in _spans(markdown) if COMMAND.match(span)]


def test_every_alert_has_a_section_and_every_alert_section_an_alert() -> None:
    alerts_part = _text().split("\n" + PROCEDURES_HEADING + "\n")[0]
    sections = set(_sections(alerts_part))
    alerts = _alert_names()
    assert len(alerts) >= 30
    assert alerts - sections == set(), "alerts without a runbook section"
    assert sections - alerts == set(), "runbook sections of alerts that do not exist"


def test_every_failure_the_issue_names_has_a_procedure() -> None:
    text = _text()
    assert PROCEDURES_HEADING in text
    procedures = _sections(text.split("\n" + PROCEDURES_HEADING + "\n")[1])
    missing = [name for name in PROCEDURES if name not in procedures]
    assert not missing, f"procedures missing from the runbook: {missing}"
    for name in PROCEDURES:
        assert _commands(procedures[name]), f"{name}: no command to run"


def test_every_alert_section_gives_a_command_or_links_to_one() -> None:
    sections = _sections(_text())
    by_anchor = {_anchor(name): body for name, body in sections.items()}
    without = []
    for name in _alert_names():
        body = sections[name]
        linked = [by_anchor.get(anchor, "") for anchor in LINK.findall(body)]
        if not _commands(body) and not any(_commands(other) for other in linked):
            without.append(name)
    assert not without, f"alert sections with no command to run: {sorted(without)}"


def _cli() -> dict[str, click.Command]:
    """Every command by its words (``recon run``), groups included."""
    found: dict[str, click.Command] = {}

    def walk(command: click.Command, words: tuple[str, ...]) -> None:
        found[" ".join(words)] = command
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, (*words, name))

    walk(main, ())
    return found


def _cli_problems(span: str, cli: dict[str, click.Command]) -> list[str]:
    problems = []
    for part in re.split(r"&&|\|\||[|;]", span):
        words = part.split()
        if "reconciler" not in words:
            continue
        words = words[words.index("reconciler") + 1 :]
        path: tuple[str, ...] = ()
        while words and " ".join((*path, words[0])) in cli:
            path, words = (*path, words[0]), words[1:]
        command = cli[" ".join(path)]
        if isinstance(command, click.Group) and words not in ([], ["--help"]):
            problems.append(f"`{part.strip()}`: no such command")
            continue
        options = {o for p in command.params for o in p.opts if o.startswith("-")}
        options.add("--help")
        for word in words:
            if word.startswith("-") and word.split("=")[0] not in options:
                problems.append(f"`{part.strip()}`: {' '.join(path)} has no option {word}")
    return problems


def test_every_reconciler_command_named_exists_with_its_options() -> None:
    cli = _cli()
    spans = [span for span in _spans(_text()) if "reconciler " in span]
    assert len(spans) >= 20
    problems = [problem for span in spans for problem in _cli_problems(span, cli)]
    assert not problems, "\n".join(problems)


def _route_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^ ]+" if p.startswith("{") else re.escape(p) for p in parts))


def test_every_api_route_named_is_a_route() -> None:
    routes = [(method, _route_pattern(template)) for method, template in ROUTES]
    # The service's own paths (a simulator's admin API has others).
    named = re.findall(
        r"`(GET|POST|DELETE) (/(?:api|ops|webhooks|verify|receipts)/[^`\s?]+)", _text()
    )
    assert len(named) >= 5
    unknown = [
        f"{method} {route}"
        for method, route in named
        if not any(m == method and p.fullmatch(route) for m, p in routes)
    ]
    assert not unknown, f"routes the app does not have: {unknown}"


def test_every_compose_service_named_exists() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    services = set(compose["services"])
    unknown = []
    for span in _spans(_text()):
        for part in re.split(r"&&|\|\||[|;]", span):
            words = part.split()
            if len(words) < 2 or words[0] != "docker-compose" or words[1] not in COMPOSE_VERBS:
                continue
            names = [w for w in words[2:] if not w.startswith(("-", "<")) and "=" not in w]
            unknown += [f"`{part.strip()}`: {n}" for n in names if n not in services]
    assert not unknown, f"services docker-compose.yml does not have: {unknown}"
