"""``reconciler audit``: the hash-chained audit log and its anchors."""

from __future__ import annotations

import asyncio

import click

from reconciler.cli.context import load_settings


@click.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@click.option("--page-size", type=click.IntRange(1, 10_000), default=1_000, show_default=True)
@click.option(
    "--anchor",
    "expected",
    default=None,
    metavar="ROW:MAC",
    help="An anchor recorded outside the database (the worker logs each one): "
    "it must still match the log.",
)
@click.option(
    "--unanchored-max-seconds",
    type=click.FloatRange(1, 30 * 86400),
    default=3600.0,
    show_default=True,
    help="Rows no anchor seals may be this old at most (the worker anchors every minute).",
)
def audit_verify(page_size: int, expected: str | None, unanchored_max_seconds: float) -> None:
    """Recompute the audit chain and check its anchors (RECONCILER_AUDIT_KEY);
    exit 1 listing every changed, deleted or reordered row and every anchor
    that no longer holds."""
    from reconciler.cli.audit import audit_verify as run
    from reconciler.wiring import audit_key

    settings = load_settings()
    key = audit_key(settings)
    if key is None and settings.env == "production":
        raise click.ClickException(
            "RECONCILER_AUDIT_KEY is not set: without it the anchors cannot be checked, "
            "and a rewritten, rehashed log would pass"
        )
    ok, lines = asyncio.run(
        run(
            settings,
            page_size,
            key=key,
            expected=_parse_anchor(expected) if expected else None,
            unanchored_seconds_max=unanchored_max_seconds,
        )
    )
    if not ok:
        raise click.ClickException("\n".join(lines))
    click.echo("\n".join(lines))


def _parse_anchor(text: str) -> tuple[int, str]:
    row, _, mac = text.partition(":")
    if not row.isascii() or not row.isdigit() or not 1 <= len(row) <= 18 or len(mac) != 64:
        raise click.BadParameter(
            "expected ROW:MAC, e.g. 1234:<64 hex digits>", param_hint="--anchor"
        )
    return int(row), mac


@audit.command("anchor")
def audit_anchor() -> None:
    """Check the rows since the last anchor and seal the head with the audit
    key now (the worker does it every RECONCILER_AUDIT_ANCHOR_INTERVAL_SECONDS)."""
    from ledger.core.audit_anchor import AnchorError
    from reconciler.cli.audit import audit_anchor as run
    from reconciler.wiring import audit_key

    settings = load_settings()
    key = audit_key(settings, create=True)
    if key is None:
        raise click.ClickException("RECONCILER_AUDIT_KEY is not set")
    try:
        click.echo(asyncio.run(run(settings, key)))
    except AnchorError as err:
        raise click.ClickException(str(err)) from err
