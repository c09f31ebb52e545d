"""The console's SVG charts (``reconciler.console.charts``): accessible,
escaped, and drawing what they are given."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest

from reconciler.console.charts import Lane, Span, bars, paired_bars, timeline

SVG = "{http://www.w3.org/2000/svg}"
SINCE = datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = SINCE + timedelta(days=7)


def _parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)


def test_timeline_names_itself_and_each_outage() -> None:
    outage = Span(SINCE + timedelta(days=1), SINCE + timedelta(days=2), "01/03 → 02/03")
    still_open = Span(SINCE + timedelta(days=6), None, "since 07/03")
    svg = timeline(
        [Lane("vcb", (outage,)), Lane("tcb", (still_open,)), Lane("bidv", ())],
        SINCE,
        UNTIL,
        title="Outages",
        desc="One line per bank",
    )
    root = _parse(svg)
    assert root.get("role") == "img"
    title_id, desc_id = root.get("aria-labelledby", "").split()
    assert root.find(f"{SVG}title").get("id") == title_id  # type: ignore[union-attr]
    assert root.find(f"{SVG}desc").get("id") == desc_id  # type: ignore[union-attr]
    marks = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert [m.find(f"{SVG}title").text for m in marks] == ["01/03 → 02/03", "since 07/03"]  # type: ignore[union-attr]
    # One day of seven from the start: a seventh of the plot, from its left edge.
    first = marks[0]
    assert float(first.get("width", "0")) == pytest.approx((720 - 110 - 10) / 7, abs=0.2)
    # The open outage runs to the right edge.
    last = marks[1]
    assert float(last.get("x", "0")) + float(last.get("width", "0")) == pytest.approx(710, abs=0.2)
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert labels[:3] == ["vcb", "tcb", "bidv"]


def test_text_in_a_chart_is_escaped() -> None:
    hostile = '<script>alert(1)</script>"&'
    svg = timeline(
        [Lane(hostile, (Span(SINCE, UNTIL, hostile),))], SINCE, UNTIL, title=hostile, desc=hostile
    )
    assert "<script>" not in svg
    root = _parse(svg)  # still well-formed XML
    assert root.find(f"{SVG}title").text == hostile  # type: ignore[union-attr]
    chart = bars([(hostile, 3)], title=hostile, desc=hostile)
    assert "<script>" not in chart
    _parse(chart)


def test_bars_scale_to_the_highest_and_write_their_numbers() -> None:
    svg = bars([("00:00", 0), ("01:00", 5), ("02:00", 10)], title="In doubt", desc="per hour")
    root = _parse(svg)
    heights = [float(r.get("height", "0")) for r in root.iter(f"{SVG}rect")]
    assert heights[0] == 0
    assert heights[1] == pytest.approx(heights[2] / 2)
    tooltips = [r.find(f"{SVG}title").text for r in root.iter(f"{SVG}rect")]  # type: ignore[union-attr]
    assert tooltips == ["00:00: 0", "01:00: 5", "02:00: 10"]
    numbers = [t.text for t in root.iter(f"{SVG}text") if t.text and re.fullmatch(r"\d+", t.text)]
    assert numbers == ["5", "10"]  # a zero bar writes no number


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="after"):
        timeline([], UNTIL, SINCE, title="t", desc="d")
    with pytest.raises(ValueError, match="negative"):
        bars([("x", -1)], title="t", desc="d")


def test_same_input_same_svg() -> None:
    assert bars([("a", 1)], title="t", desc="d") == bars([("a", 1)], title="t", desc="d")


def _marks(root: ElementTree.Element) -> list[ElementTree.Element]:
    return [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]


def test_paired_bars_draw_both_figures_apart_without_colour() -> None:
    svg = paired_bars(
        [("01/03", 4_000_000, 1_000_000), ("02/03", 0, 0), ("03/03", 2_000_000, 0)],
        names=("Đã thu", "Đã hoàn"),
        title="Thu và hoàn theo ngày",
        desc="14 ngày",
        shown=lambda v: f"{v:,} đ".replace(",", "."),
    )
    root = _parse(svg)
    assert root.get("role") == "img"
    title_id, desc_id = root.get("aria-labelledby", "").split()
    assert root.find(f"{SVG}title").get("id") == title_id  # type: ignore[union-attr]
    assert root.find(f"{SVG}desc").get("id") == desc_id  # type: ignore[union-attr]
    marks = _marks(root)
    assert [m.find(f"{SVG}title").text for m in marks] == [  # type: ignore[union-attr]
        "01/03: Đã thu 4.000.000 đ",
        "01/03: Đã hoàn 1.000.000 đ",
        "02/03: Đã thu 0 đ",
        "02/03: Đã hoàn 0 đ",
        "03/03: Đã thu 2.000.000 đ",
        "03/03: Đã hoàn 0 đ",
    ]
    heights = [float(m.get("height", "")) for m in marks]
    assert heights[0] == pytest.approx(4 * heights[1])  # to scale
    assert heights[0] == pytest.approx(2 * heights[4])
    assert heights[2] == heights[3] == heights[5] == 0
    # The second figure is hatched, not only another colour; the legend says which.
    fills = {m.get("fill") for m in marks[1::2]}
    pattern = root.find(f"{SVG}defs/{SVG}pattern")
    assert fills == {f"url(#{pattern.get('id')})"}  # type: ignore[union-attr]
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts[:2] == ["Đã thu", "Đã hoàn"]
    assert "01/03" in texts
    assert "03/03" in texts
    assert "02/03" not in texts  # every other label under the axis


def test_paired_bars_escape_and_refuse_negative_values() -> None:
    svg = paired_bars([("<b>", 1, 0)], names=("<script>", "x"), title="<t>", desc="d&d", shown=str)
    assert "<script>" not in svg
    assert "<b>" not in svg
    _parse(svg)  # still well-formed XML
    with pytest.raises(ValueError, match="negative"):
        paired_bars([("a", -1, 0)], names=("a", "b"), title="t", desc="d")
    assert _marks(_parse(paired_bars([], names=("a", "b"), title="t", desc="d"))) == []
