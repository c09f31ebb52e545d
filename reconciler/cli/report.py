"""``reconciler report uptime``: each bank link's availability in a month,
from the outage records the link prober wrote (``bank_outages``), against an
availability target, with the error budget left: the monthly figure the
banks' SLA talks need.

The month is Vietnam's calendar month. A month not over yet is measured up
to now (its budget is still the whole month's). Read-only: it runs as the
app's own database role.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.business_time import DATE_MAX, DATE_MIN, business_day_start
from domain.formats import BANK_ID_RE
from observability.outages import RECENT_LIMIT_MAX, Outage
from observability.uptime import DEFAULT_TARGET_PERCENT, Uptime, uptime
from reconciler.cli.context import load_settings

if TYPE_CHECKING:
    from ledger.outages import HeldPayment

_MONTH: Final = re.compile(r"(\d{4})-(0[1-9]|1[0-2])", re.ASCII)
COLUMNS: Final = (
    "bank",
    "month",
    "period_start",
    "period_end",
    "measured_until",
    "outages",
    "minutes_down",
    "availability_percent",
    "target_percent",
    "budget_minutes",
    "budget_left_minutes",
)


OUTAGE_COLUMNS: Final = (
    "bank",
    "outage_id",
    "started_at",
    "ended_at",
    "minutes",
    "payments_in_doubt",
    "receipted",
    "still_in_doubt",
    "slowest_receipt_after_recovery_seconds",
)
# More payments than this held in doubt in one month is not a report to cut.
HELD_MAX: Final = 10_000


def month_period(month: str) -> tuple[datetime, datetime]:
    """The UTC start and end of a ``YYYY-MM`` business month."""
    found = _MONTH.fullmatch(month)
    if found is None:
        raise click.BadParameter(f"{month!r} is not a month written YYYY-MM", param_hint="--month")
    first = date(int(found.group(1)), int(found.group(2)), 1)
    if not DATE_MIN <= first <= DATE_MAX:
        raise click.BadParameter(
            f"must be between {DATE_MIN:%Y-%m} and {DATE_MAX:%Y-%m}", param_hint="--month"
        )
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return business_day_start(first), business_day_start(following)


def _row(month: str, report: Uptime) -> list[str]:
    return [
        report.bank,
        month,
        report.period_start.isoformat(),
        report.period_end.isoformat(),
        report.measured_until.isoformat(),
        str(report.outages),
        f"{report.seconds_down / 60:.2f}",
        f"{report.availability_percent:.3f}",
        f"{report.target_percent:g}",
        f"{report.budget_seconds / 60:.2f}",
        f"{report.budget_left_seconds / 60:.2f}",
    ]


def render(month: str, reports: list[Uptime], fmt: str) -> str:
    rows = [_row(month, report) for report in reports]
    if fmt == "csv":
        return _csv(COLUMNS, rows)
    lines = [f"bank link availability in {month} (Vietnam time)"]
    for report in reports:
        left = report.budget_left_seconds / 60
        verdict = "within target" if left >= 0 else "TARGET MISSED"
        lines.append(
            f"{report.bank}: {report.outages} outage(s), {report.seconds_down / 60:.2f} min down, "
            f"{report.availability_percent:.3f}% up (target {report.target_percent:g}%); "
            f"budget {report.budget_seconds / 60:.2f} min, {left:.2f} min left: {verdict}"
        )
    return "\n".join(lines)


async def _reports(
    engine: AsyncEngine, banks: list[str], start: datetime, end: datetime, target: float
) -> list[Uptime]:
    from ledger.outages import PostgresOutageStore

    outages = await PostgresOutageStore(engine).overlapping(start, end, limit=RECENT_LIMIT_MAX)
    if len(outages) >= RECENT_LIMIT_MAX:
        raise click.ClickException(
            f"{RECENT_LIMIT_MAX} or more outages in the month: more than this report reads"
        )
    now = datetime.now(UTC)
    names = banks or sorted({o.bank for o in outages})
    return [uptime(bank, outages, start, end, now, target) for bank in names]


def outage_rows(outages: list[Outage], held: list[HeldPayment], now: datetime) -> list[list[str]]:
    """One row per outage: its length, the payments it held in doubt, how
    many have their receipt, and the slowest receipt after the recovery."""
    rows = []
    for outage in outages:
        mine = [h for h in held if h.outage_id == outage.id]
        receipted = [h.receipted_at for h in mine if h.receipted_at is not None]
        ended = outage.ended_at
        slowest = (
            f"{max(max((r - ended).total_seconds(), 0.0) for r in receipted):.1f}"
            if receipted and ended is not None
            else ""
        )
        rows.append(
            [
                outage.bank,
                str(outage.id),
                outage.started_at.isoformat(),
                ended.isoformat() if ended else "",
                f"{((ended or now) - outage.started_at).total_seconds() / 60:.2f}",
                str(len(mine)),
                str(len(receipted)),
                str(len(mine) - len(receipted)),
                slowest,
            ]
        )
    return rows


async def _outage_rows(
    engine: AsyncEngine, banks: list[str], start: datetime, end: datetime
) -> list[list[str]]:
    from ledger.outages import PostgresOutageStore, held_payments

    rows: list[list[str]] = []
    for bank in banks:
        outages = await PostgresOutageStore(engine).overlapping(
            start, end, bank=bank, limit=RECENT_LIMIT_MAX
        )
        held = await held_payments(engine, bank, start, end, HELD_MAX)
        if len(outages) >= RECENT_LIMIT_MAX or len(held) >= HELD_MAX:
            raise click.ClickException(f"{bank}: more outages or held payments than this reads")
        rows += outage_rows(outages, held, datetime.now(UTC))
    return rows


def _csv(header: tuple[str, ...], rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([list(header), *rows])
    return out.getvalue().rstrip("\n")


@click.group()
def report() -> None:
    """Reports for operators and the banks' SLA talks."""


@report.command("uptime")
@click.option("--month", required=True, help="The month, YYYY-MM (Vietnam's calendar).")
@click.option(
    "--bank",
    "banks",
    multiple=True,
    help="A bank id (repeat for more). Default: every configured bank, and any with an outage.",
)
@click.option(
    "--target",
    type=click.FloatRange(0, 100, min_open=True, max_open=True),
    default=DEFAULT_TARGET_PERCENT,
    show_default=True,
    help="The availability target in percent.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "pdf"]), default="text")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The PDF file to write (with --format pdf; never overwritten).",
)
@click.option(
    "--outages",
    "per_outage",
    is_flag=True,
    help="CSV, one row per outage: the payments it held in doubt and their receipts.",
)
def uptime_command(
    month: str, banks: tuple[str, ...], target: float, fmt: str, out: Path | None, per_outage: bool
) -> None:
    """Each bank link's availability in a month, from the outage records."""
    if (fmt == "pdf") != (out is not None):
        raise click.BadParameter(
            "--out goes with --format pdf, and only with it", param_hint="--out"
        )
    if out is not None and out.exists():
        raise click.BadParameter(f"{out} exists: choose another file", param_hint="--out")
    if not math.isfinite(target):
        raise click.BadParameter("must be a number", param_hint="--target")
    start, end = month_period(month)
    for bank in banks:
        if not BANK_ID_RE.fullmatch(bank):
            raise click.BadParameter(f"{bank!r} is not a bank id", param_hint="--bank")
    settings = load_settings()

    async def run() -> list[Uptime]:
        from reconciler.db import create_engine

        engine = create_engine(settings)
        try:
            reports = await _reports(engine, list(banks), start, end, target)
        finally:
            await engine.dispose()
        if banks:
            return reports
        configured = set(settings.banks) - {r.bank for r in reports}
        now = datetime.now(UTC)
        extra = [uptime(b, [], start, end, now, target) for b in sorted(configured)]
        return sorted([*reports, *extra], key=lambda r: r.bank)

    reports = asyncio.run(run())
    if not per_outage and fmt != "pdf":
        click.echo(render(month, reports, fmt))
        return

    async def detail() -> list[list[str]]:
        from reconciler.db import create_engine

        engine = create_engine(settings)
        try:
            return await _outage_rows(engine, [r.bank for r in reports], start, end)
        finally:
            await engine.dispose()

    rows = asyncio.run(detail())
    if out is None:
        click.echo(_csv(OUTAGE_COLUMNS, rows))
        return
    from reconciler.cli.uptime_pdf import render_uptime_pdf

    data = render_uptime_pdf(month, reports, rows, datetime.now(UTC))
    with out.open("xb") as handle:  # never over another file
        handle.write(data)
    click.echo(f"wrote {out} ({len(data)} bytes)")
