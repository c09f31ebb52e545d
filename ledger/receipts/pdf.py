"""The printed receipt (biên lai thu tiền phạt) as a PDF, in Vietnamese.

A5 portrait, DejaVu Sans embedded (subset) so every Vietnamese letter
prints and text extraction works; the QR code of the verify URL is drawn as
vector rectangles, sharp at any printer resolution. Rendering uses only the
receipt's signed payload, never live data, so a reprint shows what was
signed. The output is deterministic: the same receipt, copy count and URL
give the same bytes (the PDF dates are the issue time).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import segno
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from domain.business_time import VIETNAM_TZ
from ledger.receipts.fonts import find_dejavu_sans
from ledger.receipts.issue import Receipt, verify_token

FAMILY = "DejaVuSans"
PAGE_SIZE_MM = (148.0, 210.0)  # A5, given in mm: fpdf2 2.8 warns on the name "A5"
MARGIN_MM = 12.0
LABEL_WIDTH_MM = 34.0
LINE_HEIGHT_MM = 5.5
QR_SIZE_MM = 32.0
QR_BORDER_MODULES = 4  # the quiet zone scanners need
VERIFY_URL_CHARS_MAX = 512

TITLE = "BIÊN LAI THU TIỀN PHẠT"
NATION = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"


def format_amount_vnd(amount_vnd: int) -> str:
    """``1500000`` → ``"1.500.000 đồng"`` (dot thousands separators)."""
    assert isinstance(amount_vnd, int)
    assert not isinstance(amount_vnd, bool)
    return f"{amount_vnd:,}".replace(",", ".") + " đồng"


def format_vietnam_time(at: datetime) -> str:
    local = at.astimezone(VIETNAM_TZ)
    return f"{local:%H:%M} ngày {local:%d/%m/%Y} (giờ Việt Nam)"


def render_receipt_pdf(
    receipt: Receipt, verify_url: str, *, font_path: Path | None = None
) -> bytes:
    """The receipt as PDF bytes. ``receipt.copies > 1`` prints "Bản sao lần N".

    Reprints should call ``ledger.receipts.issue.record_copy`` first and render the
    receipt it returns. ``font_path`` overrides the font lookup
    (``ledger.receipts.fonts``); ``FontNotFound`` names the paths tried.
    """
    if len(verify_url) > VERIFY_URL_CHARS_MAX:
        raise ValueError("verify URL too long for the receipt's QR code")
    pdf = _new_document(receipt, font_path)
    payload = receipt.payload
    _header(pdf, str(payload["issuing_unit"]))
    _title(pdf, receipt)
    _field(pdf, "Số quyết định", payload["decision_number"])
    _field(pdf, "Người nộp", payload["violator_name"])
    _field(pdf, "Biển số", payload["plate"])
    _field(pdf, "Hành vi vi phạm", payload["violation"])
    _field(pdf, "Đơn vị", payload["issuing_unit"])
    _field(pdf, "Số tiền", format_amount_vnd(int(payload["amount_vnd"])), bold=True)
    _field(pdf, "Bằng chữ", payload["amount_words"])
    _field(pdf, "Ngân hàng", payload["bank"])
    _field(pdf, "Mã giao dịch", payload["bank_ref"])
    _field(pdf, "Thời gian thu", format_vietnam_time(receipt.issued_at))
    _verification(pdf, receipt, verify_url)
    return bytes(pdf.output())


def _new_document(receipt: Receipt, font_path: Path | None) -> FPDF:
    fonts = find_dejavu_sans(font_path)
    pdf = FPDF(orientation="P", unit="mm", format=PAGE_SIZE_MM)
    pdf.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
    pdf.set_auto_page_break(auto=True, margin=MARGIN_MM)
    pdf.add_font(FAMILY, "", fonts.regular)
    pdf.add_font(FAMILY, "B", fonts.bold or fonts.regular)
    pdf.set_creation_date(receipt.issued_at)
    pdf.set_lang("vi")
    pdf.set_title(f"{TITLE} {receipt.series} số {receipt.number}")
    pdf.set_author(str(receipt.payload["issuing_unit"]))
    pdf.set_subject(f"Quyết định {receipt.payload['decision_number']}")
    pdf.set_creator("fine-reconciler")
    pdf.add_page()
    return pdf


def _header(pdf: FPDF, issuing_unit: str) -> None:
    """Issuing unit on the left, the national heading on the right."""
    left_w = pdf.epw * 0.45
    right_w = pdf.epw - left_w
    top = pdf.get_y()
    pdf.set_font(FAMILY, "B", 7.5)
    pdf.multi_cell(left_w - 2, 3.8, issuing_unit.upper(), align="C")
    left_bottom = pdf.get_y()
    pdf.set_xy(pdf.l_margin + left_w, top)
    pdf.multi_cell(right_w, 3.8, NATION, align="C", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(FAMILY, "", 7.5)
    pdf.multi_cell(right_w, 3.8, MOTTO, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(left_bottom, pdf.get_y()) + 6)


def _title(pdf: FPDF, receipt: Receipt) -> None:
    pdf.set_font(FAMILY, "B", 14)
    pdf.cell(0, 8, TITLE, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FAMILY, "", 9)
    pdf.cell(
        0,
        5,
        f"Ký hiệu: {receipt.series}    Số: {receipt.number:07d}",
        align="C",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    if receipt.copies > 1:
        pdf.set_font(FAMILY, "B", 9)
        pdf.cell(
            0, 5, f"Bản sao lần {receipt.copies}", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
    pdf.ln(4)


def _field(pdf: FPDF, label: str, value: Any, *, bold: bool = False) -> None:
    pdf.set_font(FAMILY, "", 9)
    pdf.cell(LABEL_WIDTH_MM, LINE_HEIGHT_MM, f"{label}:")
    pdf.set_font(FAMILY, "B" if bold else "", 9)
    text = "" if value is None else str(value)
    pdf.multi_cell(0, LINE_HEIGHT_MM, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _verification(pdf: FPDF, receipt: Receipt, verify_url: str) -> None:
    pdf.ln(4)
    if pdf.get_y() + QR_SIZE_MM > pdf.h - pdf.b_margin:
        pdf.add_page()
    top = pdf.get_y()
    _draw_qr(pdf, verify_url, pdf.l_margin, top, QR_SIZE_MM)
    text_x = pdf.l_margin + QR_SIZE_MM + 4
    text_w = pdf.epw - QR_SIZE_MM - 4
    pdf.set_xy(text_x, top + 3)
    pdf.set_font(FAMILY, "", 8.5)
    pdf.cell(text_w, 4.5, "Mã xác thực:", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(FAMILY, "B", 8.5)
    pdf.cell(text_w, 4.5, verify_token(receipt.signature), new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(FAMILY, "", 7)
    pdf.multi_cell(
        text_w,
        3.5,
        "Quét mã QR hoặc mở địa chỉ dưới đây để kiểm tra biên lai:",
        new_x=XPos.LEFT,
        new_y=YPos.NEXT,
    )
    pdf.multi_cell(text_w, 3.5, verify_url, new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.multi_cell(
        text_w,
        3.5,
        f"Biên lai điện tử ký số Ed25519, khóa {receipt.key_id}.",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.set_y(max(pdf.get_y(), top + QR_SIZE_MM))


def _draw_qr(pdf: FPDF, data: str, x: float, y: float, size: float) -> None:
    """The QR code as filled rectangles, one per horizontal run of dark modules."""
    qr = segno.make(data, error="m", micro=False)
    rows = [bytes(row) for row in qr.matrix]
    modules = len(rows) + 2 * QR_BORDER_MODULES
    module_mm = size / modules
    pdf.set_fill_color(0, 0, 0)
    for r, row in enumerate(rows):
        c = 0
        while c < len(row):
            if not row[c]:
                c += 1
                continue
            start = c
            while c < len(row) and row[c]:
                c += 1
            pdf.rect(
                x + (QR_BORDER_MODULES + start) * module_mm,
                y + (QR_BORDER_MODULES + r) * module_mm,
                (c - start) * module_mm,
                module_mm,
                style="F",
            )
