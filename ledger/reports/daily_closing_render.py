"""The daily closing report (``ledger.reports.daily_closing``) as CSV and
as a Vietnamese PDF, drawn with the reconciliation report's PDF writer
(``ledger.reconciliation.report``: its font, page and table helpers)."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from typing import Final

from domain.text import spreadsheet_safe
from ledger.receipts.pdf import format_amount_vnd, format_vietnam_time
from ledger.reconciliation.report import _pair, _table, new_document
from ledger.reports.daily_closing import SUMMED, ClosingRow, DailyClosing, SeriesRow

TITLE: Final = "BÁO CÁO CUỐI NGÀY"
NO_UNIT: Final = "Chưa xác định đơn vị"
ROW_COLUMNS: Final = ("issuing_unit", "bank", *SUMMED)
SERIES_COLUMNS: Final = (
    "issuing_unit",
    "series",
    "issued",
    "first_number",
    "last_number",
    "no_gaps",
    "gaps_total",
    "gaps",
)
_PDF_HEADER: Final = (
    "Đơn vị",
    "Ngân hàng",
    "Đã thu",
    "Đã hoàn",
    "Treo (tạm giữ)",
    "Chênh lệch mở",
    "Khiếu nại mở",
    "Biên lai",
)
_PDF_WIDTHS: Final = (70.0, 25.0, 35.0, 30.0, 35.0, 27.0, 27.0, 28.0)


def row_cells(row: ClosingRow) -> list[object]:
    return [row.unit, row.bank, *(getattr(row, name) for name in SUMMED)]


def series_cells(row: SeriesRow) -> list[object]:
    gaps = " ".join(str(n) for n in row.gaps)
    if row.gaps_total > len(row.gaps):
        gaps += " …"
    return [
        row.unit,
        row.series,
        row.issued,
        row.first_number,
        row.last_number,
        "true" if row.no_gaps else "false",
        row.gaps_total,
        gaps,
    ]


def _cell(value: object) -> str:
    # Unit names come from fines as registered: never a formula.
    return "" if value is None else spreadsheet_safe(str(value))


def render_closing_csv(report: DailyClosing) -> str:
    """Two tables one after the other, a blank line between: the rows by
    unit and bank (then the total, unit ``TOTAL``), and the series."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["day", report.day.isoformat()])
    writer.writerow(ROW_COLUMNS)
    for row in report.rows:
        writer.writerow([_cell(v) for v in row_cells(row)])
    writer.writerow([_cell(v) for v in ["TOTAL", "", *row_cells(report.total)[2:]]])
    writer.writerow([])
    writer.writerow(SERIES_COLUMNS)
    for series in report.series:
        writer.writerow([_cell(v) for v in series_cells(series)])
    return "\ufeff" + buffer.getvalue()  # BOM: spreadsheets read the file as UTF-8


def _pdf_row(row: ClosingRow, unit: str) -> list[str]:
    return [
        unit,
        row.bank or "",
        format_amount_vnd(row.collected_vnd),
        format_amount_vnd(row.refunded_vnd),
        format_amount_vnd(row.suspense_vnd),
        str(row.open_discrepancies),
        str(row.open_disputes),
        str(row.receipts),
    ]


def render_closing_pdf(
    report: DailyClosing, *, generated_at: datetime, font_path: Path | None = None
) -> bytes:
    """A4 landscape: the table by unit and bank with its total, then the
    receipt series with their first and last numbers and gaps."""
    pdf = new_document(TITLE, f"{report.day:%d/%m/%Y}", generated_at, font_path)
    _pair(pdf, "Ngày", f"{report.day:%d/%m/%Y}")
    _pair(pdf, "Lập báo cáo lúc", format_vietnam_time(generated_at))
    _table(
        pdf,
        "Theo đơn vị và ngân hàng",
        _PDF_WIDTHS,
        _PDF_HEADER,
        [_pdf_row(r, r.unit or NO_UNIT) for r in report.rows],
        _pdf_row(report.total, "Tổng cộng"),
    )
    _table(
        pdf,
        "Biên lai đã phát hành",
        (70.0, 50.0, 25.0, 25.0, 25.0, 82.0),
        ("Đơn vị", "Ký hiệu", "Số lượng", "Từ số", "Đến số", "Số bị thiếu"),
        [
            [
                s.unit,
                s.series,
                str(s.issued),
                str(s.first_number),
                str(s.last_number),
                "Không thiếu số" if s.no_gaps else str(series_cells(s)[-1]),
            ]
            for s in report.series
        ],
    )
    return bytes(pdf.output())
