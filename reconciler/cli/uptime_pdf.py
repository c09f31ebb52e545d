"""The monthly uptime report as a PDF in Vietnamese, for the banks' SLA
talks: one line per bank (outages, minutes down, availability, target,
error budget left) and one per outage (the payments it held in doubt and
how fast they were receipted after the recovery). Rendering only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from ledger.receipts.fonts import find_dejavu_sans
from ledger.receipts.pdf import format_vietnam_time
from observability.uptime import Uptime

FAMILY: Final = "DejaVuSans"
TITLE: Final = "BÁO CÁO THỜI GIAN HOẠT ĐỘNG KẾT NỐI NGÂN HÀNG"
# Outage rows printed at most (the CSV of --outages has them all).
PDF_OUTAGES_MAX: Final = 500
BANK_HEADER: Final = (
    "Ngân hàng",
    "Số sự cố",
    "Phút gián đoạn",
    "Tỷ lệ hoạt động",
    "Mục tiêu",
    "Ngân sách lỗi (phút)",
    "Còn lại (phút)",
)
OUTAGE_HEADER: Final = (
    "Ngân hàng",
    "Sự cố",
    "Bắt đầu",
    "Kết thúc",
    "Phút",
    "Thanh toán chờ",
    "Đã có biên lai",
    "Còn chờ",
    "Biên lai chậm nhất (giây)",
)


def _row(pdf: FPDF, widths: Sequence[float], cells: Sequence[str], *, bold: bool = False) -> None:
    pdf.set_font(FAMILY, "B" if bold else "", 8)
    for width, cell in zip(widths, cells, strict=True):
        pdf.cell(width, 5.5, cell[:60], border=1)
    pdf.ln(5.5)


def _bank_cells(report: Uptime) -> list[str]:
    return [
        report.bank,
        str(report.outages),
        f"{report.seconds_down / 60:.2f}",
        f"{report.availability_percent:.3f}%",
        f"{report.target_percent:g}%",
        f"{report.budget_seconds / 60:.2f}",
        f"{report.budget_left_seconds / 60:.2f}",
    ]


def _when(iso: str) -> str:
    return format_vietnam_time(datetime.fromisoformat(iso)) if iso else "đang diễn ra"


def render_uptime_pdf(
    month: str, reports: list[Uptime], outages: list[list[str]], generated_at: datetime
) -> bytes:
    """A4 landscape; ``outages``: the rows of ``report uptime --outages``."""
    fonts = find_dejavu_sans()
    pdf = FPDF(orientation="L", unit="mm", format=(210.0, 297.0))
    pdf.set_auto_page_break(auto=True, margin=10.0)
    pdf.add_font(FAMILY, "", fonts.regular)
    pdf.add_font(FAMILY, "B", fonts.bold or fonts.regular)
    pdf.set_creation_date(generated_at)
    pdf.set_lang("vi")
    pdf.set_title(f"{TITLE} {month}")
    pdf.add_page()
    pdf.set_font(FAMILY, "B", 14)
    pdf.cell(0, 9, TITLE, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FAMILY, "", 9)
    pdf.cell(0, 6, f"Tháng {month[5:]}/{month[:4]}; lập lúc {format_vietnam_time(generated_at)}")
    pdf.ln(9)
    _row(pdf, (40, 25, 35, 35, 25, 40, 35), BANK_HEADER, bold=True)
    for report in reports:
        _row(pdf, (40, 25, 35, 35, 25, 40, 35), _bank_cells(report))
    pdf.ln(4)
    widths = (25, 15, 55, 55, 18, 27, 27, 18, 37)
    _row(pdf, widths, OUTAGE_HEADER, bold=True)
    for cells in outages[:PDF_OUTAGES_MAX]:
        bank, number, started, ended, *rest = cells
        _row(pdf, widths, [bank, number, _when(started), _when(ended), *rest])
    if len(outages) > PDF_OUTAGES_MAX:
        pdf.cell(0, 6, f"... và {len(outages) - PDF_OUTAGES_MAX} sự cố khác (xem CSV)")
    return bytes(pdf.output())
