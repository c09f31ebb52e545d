"""The reconciliation report: CSV (every line of the statement date, then the
payments the bank has no line for) and a PDF summary in Vietnamese (totals
by class, discrepancies by kind, and the discrepancies themselves, bounded).

Rendering only: the rows come from ``ledger.reconciliation.followup``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from domain.business_time import VIETNAM_TZ
from domain.text import spreadsheet_safe
from ledger.receipts.fonts import find_dejavu_sans
from ledger.receipts.pdf import format_amount_vnd, format_vietnam_time
from ledger.reconciliation.followup import REPORT_COLUMNS, RunReport

FAMILY: Final = "DejaVuSans"
PDF_ROWS_MAX: Final = 1_000
MARGIN_MM: Final = 10.0
TITLE: Final = "BÁO CÁO ĐỐI SOÁT SAO KÊ NGÂN HÀNG"

CLASS_LABELS: Final = {
    "matched": "Khớp",
    "healed": "Đã xử lý tự động",
    "duplicate": "Nộp trùng",
    "amount_mismatch": "Sai số tiền",
    "unknown": "Không xác định",
    "unconfirmed": "Tải lên, chờ ngân hàng xác nhận",
}
KIND_LABELS: Final = {
    "duplicate": "Nộp trùng",
    "missing_at_bank": "Thiếu tại ngân hàng",
    "amount_mismatch": "Sai số tiền",
    "unknown": "Không xác định",
    "in_doubt_too_long": "Chờ xác minh quá lâu",
    "unconfirmed": "Tải lên, chờ ngân hàng xác nhận",
}
STATUS_LABELS: Final = {
    "running": "Đang chạy",
    "completed": "Hoàn thành",
    "failed": "Lỗi",
    "open": "Chưa xử lý",
    "resolved": "Đã giải quyết",
    "dismissed": "Đã bỏ qua",
}


# --- CSV ---------------------------------------------------------------------------


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(VIETNAM_TZ).isoformat()
    # Statement text comes from outside (a payer's transfer note): a cell a
    # spreadsheet would run as a formula is quoted as text.
    return spreadsheet_safe(str(value))


def csv_header() -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(REPORT_COLUMNS)
    return "\ufeff" + buffer.getvalue()  # BOM: spreadsheets read the file as UTF-8


def csv_rows(rows: Iterable[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([_csv_value(row.get(name)) for name in REPORT_COLUMNS])
    return buffer.getvalue()


# --- PDF ---------------------------------------------------------------------------


def render_report_pdf(
    report: RunReport,
    discrepancy_rows: Sequence[Mapping[str, Any]],
    *,
    generated_at: datetime,
    font_path: Path | None = None,
) -> bytes:
    """A4 landscape. ``discrepancy_rows``: report rows that carry a
    discrepancy, at most ``PDF_ROWS_MAX`` are printed."""
    pdf = _document(report, generated_at, font_path)
    _summary(pdf, report, generated_at)
    _classes(pdf, report)
    _discrepancy_kinds(pdf, report)
    _discrepancy_table(pdf, discrepancy_rows, report)
    return bytes(pdf.output())


def _document(report: RunReport, generated_at: datetime, font_path: Path | None) -> FPDF:
    run = report.run
    subject = f"{run.bank} {run.statement_date:%d/%m/%Y}"
    return new_document(TITLE, subject, generated_at, font_path)


def new_document(title: str, subject: str, generated_at: datetime, font_path: Path | None) -> FPDF:
    """An A4 landscape report in Vietnamese (DejaVu Sans), ``title`` on top
    of its first page (the daily closing report uses it too)."""
    fonts = find_dejavu_sans(font_path)
    pdf = FPDF(orientation="L", unit="mm", format=(210.0, 297.0))
    pdf.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
    pdf.set_auto_page_break(auto=True, margin=MARGIN_MM)
    pdf.add_font(FAMILY, "", fonts.regular)
    pdf.add_font(FAMILY, "B", fonts.bold or fonts.regular)
    pdf.set_creation_date(generated_at)
    pdf.set_lang("vi")
    pdf.set_title(f"{title} {subject}")
    pdf.set_creator("fine-reconciler")
    pdf.add_page()
    pdf.set_font(FAMILY, "B", 14)
    pdf.cell(0, 9, title, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return pdf


def _pair(pdf: FPDF, label: str, value: str) -> None:
    pdf.set_font(FAMILY, "", 9)
    pdf.cell(55, 5.5, f"{label}:")
    pdf.set_font(FAMILY, "B", 9)
    pdf.cell(0, 5.5, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _summary(pdf: FPDF, report: RunReport, generated_at: datetime) -> None:
    run = report.run
    c = run.counts
    pdf.ln(2)
    _pair(pdf, "Ngân hàng", run.bank)
    _pair(pdf, "Ngày sao kê", f"{run.statement_date:%d/%m/%Y}")
    _pair(pdf, "Lần đối soát", f"số {run.id} ({STATUS_LABELS.get(run.status, run.status)})")
    _pair(pdf, "Bắt đầu", format_vietnam_time(run.started_at))
    if run.finished_at is not None:
        _pair(pdf, "Kết thúc", format_vietnam_time(run.finished_at))
    _pair(pdf, "Tổng tiền vào", format_amount_vnd(c["credit_total_vnd"]))
    _pair(pdf, "Tổng tiền ra", format_amount_vnd(c["debit_total_vnd"]))
    _pair(pdf, "Thao tác tự động còn chờ", str(c["actions_pending"]))
    if run.error:
        _pair(pdf, "Lỗi", run.error[:200])
    _pair(pdf, "Lập báo cáo lúc", format_vietnam_time(generated_at))
    pdf.ln(3)


def _row(pdf: FPDF, widths: Sequence[float], cells: Sequence[str], *, bold: bool = False) -> None:
    pdf.set_font(FAMILY, "B" if bold else "", 8)
    for width, cell in zip(widths, cells, strict=True):
        pdf.cell(width, 5.5, cell[:90], border=1)
    pdf.ln(5.5)


def _table(
    pdf: FPDF,
    title: str,
    widths: Sequence[float],
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    total: Sequence[str] | None = None,
) -> None:
    pdf.set_font(FAMILY, "B", 10)
    pdf.cell(0, 7, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    _row(pdf, widths, header, bold=True)
    for cells in rows:
        _row(pdf, widths, cells)
    if total is not None:
        _row(pdf, widths, total, bold=True)
    pdf.ln(3)


def _classes(pdf: FPDF, report: RunReport) -> None:
    counted = [(label, *report.by_class.get(name, (0, 0))) for name, label in CLASS_LABELS.items()]
    rows = [(label, str(lines), format_amount_vnd(amount)) for label, lines, amount in counted]
    total_lines = sum(lines for _, lines, _ in counted)
    total_amount = sum(amount for _, _, amount in counted)
    total = ("Tổng", str(total_lines), format_amount_vnd(total_amount))
    header = ("Phân loại", "Số dòng", "Số tiền")
    _table(pdf, "Kết quả theo dòng sao kê", (60.0, 30.0, 50.0), header, rows, total)


def _discrepancy_kinds(pdf: FPDF, report: RunReport) -> None:
    rows = []
    for kind, label in KIND_LABELS.items():
        still_open, total = report.by_discrepancy.get(kind, (0, 0))
        rows.append((label, str(still_open), str(total)))
    header = ("Loại", "Chưa xử lý", "Tổng")
    _table(pdf, "Chênh lệch cần xử lý", (60.0, 30.0, 30.0), header, rows)


def _discrepancy_table(pdf: FPDF, rows: Sequence[Mapping[str, Any]], report: RunReport) -> None:
    total = sum(n for _, n in report.by_discrepancy.values())
    pdf.set_font(FAMILY, "B", 10)
    pdf.cell(0, 7, "Danh sách chênh lệch", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    widths = (14.0, 36.0, 34.0, 30.0, 38.0, 36.0, 28.0, 61.0)
    header = (
        "Mã",
        "Mã giao dịch",
        "Thời gian",
        "Số tiền",
        "Loại",
        "Số quyết định",
        "Trạng thái",
        "Nội dung",
    )
    _row(pdf, widths, header, bold=True)
    for row in rows[:PDF_ROWS_MAX]:
        booked = row.get("booked_at")
        _row(
            pdf,
            widths,
            (
                str(row.get("discrepancy_id") or ""),
                str(row.get("bank_ref") or ""),
                booked.astimezone(VIETNAM_TZ).strftime("%d/%m %H:%M") if booked else "",
                format_amount_vnd(int(row.get("amount_vnd") or 0)),
                KIND_LABELS.get(str(row.get("discrepancy_kind")), ""),
                str(row.get("decision_number") or ""),
                STATUS_LABELS.get(str(row.get("discrepancy_status")), ""),
                str(row.get("content") or "")[:40],
            ),
        )
    shown = min(len(rows), PDF_ROWS_MAX)
    if total > shown:
        pdf.set_font(FAMILY, "", 8)
        pdf.cell(
            0,
            6,
            f"… và {total - shown} chênh lệch khác: xem báo cáo CSV.",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
