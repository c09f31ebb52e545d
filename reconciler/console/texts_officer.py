"""The officer's pages' texts (``reconciler.console.officer``), in
Vietnamese and in English, same keys; merged into the console's ``TEXTS``."""

from __future__ import annotations

from typing import Final

VI: Final[dict[str, str]] = {
    "search_plate": "Biển số (một phần đầu cũng được)",
    "search_name": "Tên người vi phạm (không cần dấu, phần đầu cũng được)",
    "search_any_hint": (
        "Điền một ô: số quyết định, hoặc biển số (ví dụ 51F-123.45, 51f12345), "
        "hoặc tên (ví dụ nguyen van a)."
    ),
    "search_bad": "Không tìm được: ô {field} cần có chữ cái hoặc chữ số.",
    "search_none": "Không có quyết định nào khớp.",
    "search_results": "Kết quả tìm kiếm",
    "search_more": "Trang sau",
    "status_cancelled": "Đã hủy",
    "nav_counter": "Tra cứu",
    "nav_receipts_today": "Biên lai hôm nay",
    "nav_dispute": "Mở khiếu nại",
    "nav_fines_import": "Nhập quyết định",
    "receipts_today_title": "Biên lai đã phát hành hôm nay",
    "receipts_today_intro": "Biên lai của đơn vị {unit} ngày {day} (giờ Việt Nam).",
    "receipts_today_all": "Biên lai của mọi đơn vị ngày {day} (giờ Việt Nam).",
    "receipts_unit": "Đơn vị",
    "receipts_none": "Hôm nay chưa có biên lai nào.",
    "receipt_number": "Số biên lai",
    "issued_at": "Phát hành lúc",
    "copies": "Số bản sao",
    "actions": "Thao tác",
    "dispute_title": "Mở khiếu nại: đã bị trừ tiền nhưng chưa có biên lai",
    "dispute_intro": (
        "Dùng khi công dân cho biết tài khoản đã bị trừ tiền nhưng chưa nhận được biên lai. "
        "Bộ phận tài chính sẽ đối chiếu với ngân hàng."
    ),
    "dispute_bank": "Ngân hàng bị trừ tiền",
    "dispute_amount": "Số tiền bị trừ (đồng)",
    "dispute_when": "Thời điểm bị trừ (YYYY-MM-DD HH:MM, giờ Việt Nam)",
    "dispute_bank_ref": "Mã giao dịch của ngân hàng (nếu có)",
    "dispute_phone": "Số điện thoại của công dân",
    "dispute_email": "Email của công dân",
    "dispute_contact_hint": "Cần ít nhất một cách liên hệ: số điện thoại hoặc email.",
    "dispute_note": "Mô tả (công dân nói gì)",
    "dispute_submit": "Mở khiếu nại",
    "dispute_opened": "Đã mở khiếu nại số {id}. Bộ phận tài chính sẽ xử lý.",
    "dispute_error": "Chưa mở được khiếu nại: {field}: {message}",
    "dispute_contact_missing": "cần số điện thoại hoặc email của công dân",
    "dispute_phone_bad": "số điện thoại gồm 9-11 chữ số (có thể bắt đầu bằng +84)",
    "dispute_email_bad": "email không hợp lệ",
    "dispute_when_bad": "thời điểm phải có dạng YYYY-MM-DD HH:MM",
    "dispute_conflict": "Chưa mở được khiếu nại: {message}",
    "dispute_contact_line": "Liên hệ của công dân",
    "dispute_field_decision_number": "Số quyết định",
    "dispute_field_bank": "Ngân hàng",
    "dispute_field_amount_vnd": "Số tiền",
    "dispute_field_occurred_at": "Thời điểm bị trừ",
    "dispute_field_bank_ref": "Mã giao dịch",
    "dispute_field_phone": "Số điện thoại",
    "dispute_field_email": "Email",
    "dispute_field_contact": "Liên hệ",
    "dispute_field_description": "Mô tả",
    "dispute_choose_bank": "Chọn ngân hàng",
}

EN: Final[dict[str, str]] = {
    "search_plate": "Plate (its start will do)",
    "search_name": "Violator's name (no accents needed, its start will do)",
    "search_any_hint": (
        "Fill in one box: the decision number, or the plate (e.g. 51F-123.45, 51f12345), "
        "or the name (e.g. nguyen van a)."
    ),
    "search_bad": "Nothing to search for: the {field} box needs a letter or a digit.",
    "search_none": "No decision matches.",
    "search_results": "Search results",
    "search_more": "Next page",
    "status_cancelled": "Cancelled",
    "nav_counter": "Search",
    "nav_receipts_today": "Today's receipts",
    "nav_dispute": "Open a dispute",
    "nav_fines_import": "Import fines",
    "receipts_today_title": "Receipts issued today",
    "receipts_today_intro": "Receipts of {unit} on {day} (Vietnam time).",
    "receipts_today_all": "Receipts of every unit on {day} (Vietnam time).",
    "receipts_unit": "Unit",
    "receipts_none": "No receipt yet today.",
    "receipt_number": "Receipt number",
    "issued_at": "Issued at",
    "copies": "Copies",
    "actions": "Actions",
    "dispute_title": "Open a dispute: debited but no receipt",
    "dispute_intro": (
        "For a citizen whose account was debited but who has no receipt. "
        "Finance checks it with the bank."
    ),
    "dispute_bank": "Bank that debited",
    "dispute_amount": "Amount debited (đồng)",
    "dispute_when": "When debited (YYYY-MM-DD HH:MM, Vietnam time)",
    "dispute_bank_ref": "The bank's transaction reference (if known)",
    "dispute_phone": "Citizen's phone number",
    "dispute_email": "Citizen's email",
    "dispute_contact_hint": "At least one way to reach them: a phone number or an email.",
    "dispute_note": "Description (what the citizen says)",
    "dispute_submit": "Open the dispute",
    "dispute_opened": "Dispute {id} opened. Finance will handle it.",
    "dispute_error": "The dispute was not opened: {field}: {message}",
    "dispute_contact_missing": "the citizen's phone number or email is needed",
    "dispute_phone_bad": "a phone number is 9-11 digits (it may start with +84)",
    "dispute_email_bad": "not an email address",
    "dispute_when_bad": "the time must look like YYYY-MM-DD HH:MM",
    "dispute_conflict": "The dispute was not opened: {message}",
    "dispute_contact_line": "Citizen's contact",
    "dispute_field_decision_number": "Decision number",
    "dispute_field_bank": "Bank",
    "dispute_field_amount_vnd": "Amount",
    "dispute_field_occurred_at": "When debited",
    "dispute_field_bank_ref": "Transaction reference",
    "dispute_field_phone": "Phone",
    "dispute_field_email": "Email",
    "dispute_field_contact": "Contact",
    "dispute_field_description": "Description",
    "dispute_choose_bank": "Choose the bank",
}
