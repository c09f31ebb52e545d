"""Every text the console shows, in Vietnamese and in English (same keys:
``tests/unit/console`` checks both languages hold every key)."""

from __future__ import annotations

from typing import Final

from reconciler.console import texts_finance, texts_officer, texts_operator

VI: Final[dict[str, str]] = {
    "app_title": "Bảng điều khiển nộp phạt",
    "switch_lang": "English",
    "switch_lang_code": "en",
    "login_title": "Đăng nhập cán bộ",
    "username": "Tên đăng nhập",
    "password": "Mật khẩu",
    "login_button": "Đăng nhập",
    "logout": "Đăng xuất",
    "login_failed": "Sai tên đăng nhập hoặc mật khẩu.",
    "login_throttled": "Đăng nhập sai quá nhiều lần. Hãy thử lại sau {seconds} giây.",
    "account_locked": (
        "Tài khoản bị khóa do đăng nhập sai quá nhiều lần, đến {until}. "
        "Quản trị viên có thể mở khóa."
    ),
    "signed_in_as": "Đăng nhập với tên",
    "forbidden_title": "Không có quyền truy cập",
    "forbidden_message": (
        "Vai trò của bạn không được phép xem trang này. Nếu cần, hãy liên hệ quản trị viên."
    ),
    "csrf_title": "Yêu cầu bị từ chối",
    "csrf_message": (
        "Biểu mẫu đã hết hạn hoặc không hợp lệ, nên không có gì được thay đổi. "
        "Hãy tải lại trang và thử lại."
    ),
    "bad_request_title": "Yêu cầu không hợp lệ",
    "bad_request_message": "Dữ liệu gửi lên không hợp lệ; không có gì được thay đổi.",
    "not_found_title": "Không tìm thấy",
    "not_found_message": "Không tìm thấy biên lai này.",
    "no_page_for_role": "Chưa có trang nào cho vai trò của bạn trong bảng điều khiển.",
    "counter_title": "Quầy tra cứu quyết định xử phạt",
    "search_label": "Số quyết định",
    "search_hint": (
        "Nhập số quyết định, viết hoa hay thường, có dấu hay không (ví dụ 01234/QĐ-XPHC)."
    ),
    "search_button": "Tra cứu",
    "fine_not_found": "Không tìm thấy quyết định số {number}.",
    "bad_decision": (
        "Số quyết định không hợp lệ: chỉ gồm chữ cái, chữ số, dấu cách và / - . "
        "(ví dụ 01234/QĐ-XPHC), tối đa 64 ký tự."
    ),
    "decision_number": "Số quyết định",
    "amount": "Số tiền phạt",
    "violator": "Người vi phạm",
    "plate": "Biển số",
    "unit": "Đơn vị ra quyết định",
    "violation": "Hành vi vi phạm",
    "status": "Tình trạng",
    "payments": "Các lần thanh toán",
    "bank": "Ngân hàng",
    "payment_status": "Trạng thái",
    "created": "Thời gian",
    "receipt": "Biên lai",
    "print": "In biên lai (PDF)",
    "reprint": "In lại (bản sao có đánh số, được ghi nhật ký)",
    "status_paid": "Đã nộp",
    "status_verifying": "Đang xác minh",
    "status_unpaid": "Chưa nộp",
    "pay_initiated": "Đã khởi tạo",
    "pay_verifying": "Đang xác minh",
    "pay_succeeded": "Thành công",
    "pay_declined": "Bị từ chối",
    "pay_refunded": "Đã hoàn tiền",
    "citizen_title": "Tra cứu tình trạng nộp phạt",
    "citizen_intro": (
        "Nhập số quyết định xử phạt và biển số xe để biết khoản phạt đã được nộp hay chưa."
    ),
    "citizen_check": "Tra cứu",
    "citizen_unknown": (
        "Không tìm thấy quyết định với số và biển số này. Hãy kiểm tra lại cả hai."
    ),
    "citizen_missing": "Hãy nhập cả số quyết định và biển số.",
    "download_receipt": "Tải biên lai của bạn (PDF)",
    "too_many_title": "Quá nhiều yêu cầu",
    "too_many_message": "Bạn đã tra cứu quá nhiều lần. Hãy thử lại sau ít phút.",
}

EN: Final[dict[str, str]] = {
    "app_title": "Fine payments console",
    "switch_lang": "Tiếng Việt",
    "switch_lang_code": "vi",
    "login_title": "Staff login",
    "username": "Username",
    "password": "Password",
    "login_button": "Log in",
    "logout": "Log out",
    "login_failed": "Wrong username or password.",
    "login_throttled": "Too many failed logins. Try again in {seconds} s.",
    "account_locked": (
        "The account is locked after too many failed logins until {until}. An admin can unlock it."
    ),
    "signed_in_as": "Logged in as",
    "forbidden_title": "Not allowed",
    "forbidden_message": "Your role may not see this page. Ask an admin if you need it.",
    "csrf_title": "Request refused",
    "csrf_message": (
        "The form has expired or is not valid, so nothing was changed. "
        "Reload the page and try again."
    ),
    "bad_request_title": "Bad request",
    "bad_request_message": "What was sent is not valid; nothing was changed.",
    "not_found_title": "Not found",
    "not_found_message": "There is no such receipt.",
    "no_page_for_role": "The console has no page for your role yet.",
    "counter_title": "Counter: find a decision",
    "search_label": "Decision number",
    "search_hint": (
        "Type the decision number in any case, with or without accents (e.g. 01234/QĐ-XPHC)."
    ),
    "search_button": "Search",
    "fine_not_found": "No decision number {number}.",
    "bad_decision": (
        "Not a decision number: only letters, digits, spaces and / - . "
        "(e.g. 01234/QĐ-XPHC), at most 64 characters."
    ),
    "decision_number": "Decision number",
    "amount": "Fine",
    "violator": "Violator",
    "plate": "Plate",
    "unit": "Issuing unit",
    "violation": "Violation",
    "status": "State",
    "payments": "Payments",
    "bank": "Bank",
    "payment_status": "Status",
    "created": "Time",
    "receipt": "Receipt",
    "print": "Print the receipt (PDF)",
    "reprint": "Reprint (a numbered copy, audited)",
    "status_paid": "Paid",
    "status_verifying": "Verifying",
    "status_unpaid": "Unpaid",
    "pay_initiated": "Started",
    "pay_verifying": "Verifying",
    "pay_succeeded": "Succeeded",
    "pay_declined": "Declined",
    "pay_refunded": "Refunded",
    "citizen_title": "Check a fine's payment",
    "citizen_intro": "Enter the decision number and the plate to see whether the fine is paid.",
    "citizen_check": "Check",
    "citizen_unknown": "No decision with this number and plate. Check both again.",
    "citizen_missing": "Enter both the decision number and the plate.",
    "download_receipt": "Download your receipt (PDF)",
    "too_many_title": "Too many requests",
    "too_many_message": "You have checked too many times. Try again in a few minutes.",
}

TEXTS: Final = {
    "vi": VI | texts_operator.VI | texts_finance.VI | texts_officer.VI,
    "en": EN | texts_operator.EN | texts_finance.EN | texts_officer.EN,
}
