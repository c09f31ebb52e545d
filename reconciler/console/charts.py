"""Server-side SVG charts for the console: pure functions, text in, an SVG
string out (no JavaScript, nothing loaded from elsewhere).

Accessible: every chart is an ``<svg role="img">`` naming its ``<title>``
and ``<desc>`` (``aria-labelledby``); each mark carries its own ``<title>``
(a tooltip, read by screen readers); meaning never rests on colour alone
(outages are also hatched, bars carry their number). The pages show the
same figures in a data table next to each chart. Every text is escaped
here, so the result can be inserted as is (``Markup``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from hashlib import sha256
from html import escape
from typing import Final

from markupsafe import Markup

WIDTH: Final = 720
ROW_HEIGHT: Final = 28
LABEL_WIDTH: Final = 110
BAR_CHART_HEIGHT: Final = 180
AXIS_TICKS: Final = 7


@dataclass(frozen=True)
class Span:
    """One outage on a bank's line: ``start`` to ``end`` (None: still open)."""

    start: datetime
    end: datetime | None
    label: str


@dataclass(frozen=True)
class Lane:
    name: str
    spans: tuple[Span, ...]


def _open(title: str, desc: str, height: int) -> tuple[str, list[str]]:
    # Ids from the text: the same chart gives the same SVG (pure), two
    # charts on a page differ by their titles.
    uid = "chart-" + sha256(f"{title}\n{desc}".encode()).hexdigest()[:10]
    head = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'aria-labelledby="{uid}-t {uid}-d">',
        f'<title id="{uid}-t">{escape(title)}</title>',
        f'<desc id="{uid}-d">{escape(desc)}</desc>',
    ]
    return uid, head


def _hatch(uid: str, *, ground: str, stripe: str, stripe_width: int) -> str:
    """The chart's hatch pattern (``url(#{uid}-h)``): meaning not by colour alone."""
    return (
        f'<defs><pattern id="{uid}-h" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{ground}"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="{stripe}" stroke-width="{stripe_width}"/>'
        "</pattern></defs>"
    )


def _x(at: datetime, since: datetime, until: datetime) -> float:
    share = (at - since).total_seconds() / (until - since).total_seconds()
    return LABEL_WIDTH + max(0.0, min(1.0, share)) * (WIDTH - LABEL_WIDTH - 10)


def timeline(
    lanes: Sequence[Lane],
    since: datetime,
    until: datetime,
    *,
    title: str,
    desc: str,
    tick_label: str = "%d/%m",
) -> Markup:
    """A lane per bank across ``[since, until)``; each outage a hatched red
    bar with its label as tooltip; day ticks below."""
    if until <= since:
        raise ValueError("until must be after since")
    height = ROW_HEIGHT * len(lanes) + 30
    uid, parts = _open(title, desc, height)
    parts.append(_hatch(uid, ground="#b3261e", stripe="#fff", stripe_width=2))
    right = WIDTH - 10
    for row, lane in enumerate(lanes):
        y = row * ROW_HEIGHT
        parts.append(
            f'<text x="0" y="{y + 18}" class="chart-label">{escape(lane.name)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 6}" width="{right - LABEL_WIDTH}" height="16" '
            'fill="#dfe7df"/>'
        )
        for span in lane.spans:
            x0 = _x(span.start, since, until)
            x1 = _x(span.end or until, since, until)
            parts.append(
                f'<rect x="{x0:.1f}" y="{y + 4}" width="{max(x1 - x0, 2.0):.1f}" height="20" '
                f'fill="url(#{uid}-h)" stroke="#7a1712"><title>{escape(span.label)}</title></rect>'
            )
    axis_y = ROW_HEIGHT * len(lanes) + 20
    for i in range(AXIS_TICKS + 1):
        at = since + (until - since) * i / AXIS_TICKS
        x = _x(at, since, until)
        anchor = "start" if i == 0 else "end" if i == AXIS_TICKS else "middle"
        parts.append(
            f'<text x="{x:.1f}" y="{axis_y}" text-anchor="{anchor}" class="chart-tick">'
            f"{escape(at.strftime(tick_label))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()


def bars(
    points: Sequence[tuple[str, int]],
    *,
    title: str,
    desc: str,
    every: int = 3,
) -> Markup:
    """A bar per point (label, count ≥ 0), its count written above it and
    in its tooltip; every ``every``-th label shown under the axis."""
    if any(value < 0 for _, value in points):
        raise ValueError("counts must not be negative")
    uid, parts = _open(title, desc, BAR_CHART_HEIGHT)
    del uid
    top = max((value for _, value in points), default=0) or 1
    plot_height = BAR_CHART_HEIGHT - 40
    step = (WIDTH - 20) / max(len(points), 1)
    for i, (label, value) in enumerate(points):
        h = plot_height * value / top
        x = 10 + i * step
        y = 15 + plot_height - h
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" height="{h:.1f}" '
            f'fill="#1f4e79"><title>{escape(label)}: {value}</title></rect>'
        )
        if value:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{y - 2:.1f}" text-anchor="middle" '
                f'class="chart-tick">{value}</text>'
            )
        if i % every == 0:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{BAR_CHART_HEIGHT - 8}" text-anchor="middle" '
                f'class="chart-tick">{escape(label)}</text>'
            )
    parts.append(
        f'<line x1="10" y1="{15 + plot_height}" x2="{WIDTH - 10}" y2="{15 + plot_height}" '
        'stroke="#333"/></svg>'
    )
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()


def paired_bars(
    points: Sequence[tuple[str, int, int]],
    *,
    names: tuple[str, str],
    title: str,
    desc: str,
    shown: Callable[[int], str] = str,
    every: int = 2,
) -> Markup:
    """Two bars per point (label, first ≥ 0, second ≥ 0): the first solid,
    the second hatched (told apart without colour), each with its figure
    (``shown``) in its tooltip; a legend naming both; every ``every``-th
    label under the axis."""
    if any(a < 0 or b < 0 for _, a, b in points):
        raise ValueError("values must not be negative")
    uid, parts = _open(title, desc, BAR_CHART_HEIGHT + 20)
    parts.append(_hatch(uid, ground="#fff", stripe="#b35c00", stripe_width=3))
    fills = ("#1f4e79", f"url(#{uid}-h)")
    for i, name in enumerate(names):  # the legend, above the plot
        key_x = 10 + i * 200
        parts.append(
            f'<rect x="{key_x}" y="2" width="14" height="14" fill="{fills[i]}" stroke="#333"/>'
            f'<text x="{key_x + 20}" y="14" class="chart-label">{escape(name)}</text>'
        )
    top = max((max(a, b) for _, a, b in points), default=0) or 1
    plot_top, plot_height = 30, BAR_CHART_HEIGHT - 40
    step = (WIDTH - 20) / max(len(points), 1)
    width = max(step / 2 - 1, 1.0)
    for i, (label, *values) in enumerate(points):
        x = 10 + i * step
        for j, value in enumerate(values):
            h = plot_height * value / top
            parts.append(
                f'<rect x="{x + 1 + j * width:.1f}" y="{plot_top + plot_height - h:.1f}" '
                f'width="{width:.1f}" height="{h:.1f}" fill="{fills[j]}" stroke="#333" '
                f'stroke-width="0.5"><title>{escape(label)}: {escape(names[j])} '
                f"{escape(shown(value))}</title></rect>"
            )
        if i % every == 0:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{BAR_CHART_HEIGHT + 12}" text-anchor="middle" '
                f'class="chart-tick">{escape(label)}</text>'
            )
    base = plot_top + plot_height
    parts.append(f'<line x1="10" y1="{base}" x2="{WIDTH - 10}" y2="{base}" stroke="#333"/></svg>')
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()
