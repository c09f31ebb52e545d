"""Receipt PDFs rendered from an in-memory receipt (no database)."""

from __future__ import annotations

import dataclasses
import io
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pypdf
import pytest
import segno

from ledger.receipts import fonts
from ledger.receipts import pdf as receipt_pdf
from ledger.receipts.issue import Receipt, canonical_json, verify_url
from ledger.receipts.pdf import format_amount_vnd, format_vietnam_time, render_receipt_pdf
from ledger.receipts.signing import ReceiptSigner


def make_receipt(copies: int = 1) -> Receipt:
    signer = ReceiptSigner.from_base64("A" * 43)
    payload = {
        "series": "DCSGTS1CAQHK-2025",
        "number": 42,
        "issued_at": "2025-03-01T02:03:04+00:00",
        "decision_number": "0123/QĐ-XPHC",
        "amount_vnd": 1_250_000,
        "amount_words": "Một triệu hai trăm năm mươi nghìn đồng",
        "violator_name": "Nguyễn Thị Ánh Tuyết",
        "plate": "29A-123.45",
        "issuing_unit": "Đội CSGT số 1 - Công an quận Hoàn Kiếm",
        "violation": "Không chấp hành hiệu lệnh của đèn tín hiệu giao thông",
        "bank": "vcb",
        "bank_ref": "FT25060123456",
        "payment_id": "0b7f0a8e-7c53-4d8e-9f43-111111111111",
    }
    text = canonical_json(payload)
    return Receipt(
        series="DCSGTS1CAQHK-2025",
        number=42,
        issued_at=datetime(2025, 3, 1, 2, 3, 4, tzinfo=UTC),
        payload=payload,
        payload_canonical=text,
        signature=signer.sign(text.encode()),
        key_id=signer.key_id,
        copies=copies,
        payment_id=uuid.UUID(str(payload["payment_id"])),
    )


def pdf_text(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.mark.parametrize(
    ("amount_vnd", "text"),
    [
        (1, "1 đồng"),
        (1000, "1.000 đồng"),
        (1_500_000, "1.500.000 đồng"),
        (10**15, "1.000.000.000.000.000 đồng"),
    ],
)
def test_amount_in_figures_uses_dot_separators(amount_vnd: int, text: str) -> None:
    assert format_amount_vnd(amount_vnd) == text


def test_time_is_shown_in_vietnam_time() -> None:
    at = datetime(2024, 12, 31, 17, 5, tzinfo=UTC)
    assert format_vietnam_time(at) == "00:05 ngày 01/01/2025 (giờ Việt Nam)"


def test_pdf_has_the_vietnamese_receipt_text() -> None:
    receipt = make_receipt()
    url = verify_url(
        "https://bienlai.example.vn", receipt.series, receipt.number, receipt.signature
    )
    data = render_receipt_pdf(receipt, url)
    assert data.startswith(b"%PDF-")
    text = pdf_text(data)
    for expected in (
        "BIÊN LAI THU TIỀN PHẠT",
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Số quyết định: 0123/QĐ-XPHC",
        "Người nộp: Nguyễn Thị Ánh Tuyết",
        "Biển số: 29A-123.45",
        "Số tiền: 1.250.000 đồng",
        "Bằng chữ: Một triệu hai trăm năm mươi nghìn đồng",
        "Hành vi vi phạm: Không chấp hành",
        "Ký hiệu: DCSGTS1CAQHK-2025",
        "Số: 0000042",
        "Mã xác thực",
        receipt.signature[:22],
        "09:03 ngày 01/03/2025",
    ):
        assert expected in text, expected
    assert "Bản sao" not in text
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert reader.metadata is not None
    assert reader.metadata.title == "BIÊN LAI THU TIỀN PHẠT DCSGTS1CAQHK-2025 số 42"


def test_copies_are_marked() -> None:
    receipt = make_receipt(copies=3)
    text = pdf_text(render_receipt_pdf(receipt, "https://x.example/verify/A-2025/1?s=abc"))
    assert "Bản sao lần 3" in text


def test_output_is_deterministic() -> None:
    receipt = make_receipt()
    url = "https://x.example/verify/DCSGTS1CAQHK-2025/42?s=abc"
    first = render_receipt_pdf(receipt, url)
    assert render_receipt_pdf(receipt, url) == first
    assert render_receipt_pdf(make_receipt(copies=2), url) != first


def test_renders_with_matplotlibs_font_when_the_system_has_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(fonts, "SYSTEM_FONT_DIRS", (tmp_path,))
    text = pdf_text(render_receipt_pdf(make_receipt(), "https://x.example/v"))
    assert "BIÊN LAI THU TIỀN PHẠT" in text


class RectRecorder:
    def __init__(self) -> None:
        self.rects: list[tuple[float, float, float, float]] = []

    def set_fill_color(self, *_: int) -> None:
        pass

    def rect(self, x: float, y: float, w: float, h: float, style: str) -> None:
        assert style == "F"
        self.rects.append((x, y, w, h))


def test_qr_rectangles_reproduce_the_qr_matrix() -> None:
    url = "https://bienlai.example.vn/verify/DCSGTS1CAQHK-2025/42?s=AAAAAAAAAAAAAAAAAAAAAA"
    recorder = RectRecorder()
    size = 33.0
    receipt_pdf._draw_qr(recorder, url, 10.0, 20.0, size)  # type: ignore[arg-type]
    matrix = segno.make(url, error="m", micro=False).matrix
    border = receipt_pdf.QR_BORDER_MODULES
    module = size / (len(matrix) + 2 * border)
    drawn = [[0] * len(matrix) for _ in matrix]
    for x, y, w, h in recorder.rects:
        assert h == pytest.approx(module)
        row = round((y - 20.0) / module) - border
        first = round((x - 10.0) / module) - border
        for col in range(first, first + round(w / module)):
            assert drawn[row][col] == 0, "modules drawn twice"
            drawn[row][col] = 1
    assert drawn == [[1 if m else 0 for m in row] for row in matrix]
    assert len(recorder.rects) < sum(map(sum, drawn)), "runs are merged"


def test_overlong_verify_url_is_refused() -> None:
    with pytest.raises(ValueError, match="too long"):
        render_receipt_pdf(make_receipt(), "https://x.example/" + "a" * 600)


def test_long_texts_wrap_onto_another_page() -> None:
    receipt = make_receipt()
    long_violation = "Điều khiển xe chạy quá tốc độ quy định. " * 60
    payload = {**receipt.payload, "violation": long_violation}
    data = render_receipt_pdf(dataclasses.replace(receipt, payload=payload), "https://x.example/v")
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 2
    assert "Mã xác thực" in pdf_text(data)
