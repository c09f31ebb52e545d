"""The operator's and the admin's console texts, Vietnamese and English
(same keys; merged into ``reconciler.console.texts.TEXTS``)."""

from __future__ import annotations

from typing import Final

VI: Final[dict[str, str]] = {
    "nav_links": "Kết nối ngân hàng",
    "nav_in_doubt": "Thanh toán chờ xác minh",
    "nav_alerts": "Cảnh báo",
    "nav_users": "Người dùng",
    "links_title": "Tình trạng kết nối ngân hàng",
    "link_state": "Tình trạng",
    "link_up": "Hoạt động",
    "link_down": "Mất kết nối",
    "down_since": "Mất kết nối từ",
    "uptime_24h": "Thời gian hoạt động 24 giờ",
    "uptime_7d": "Thời gian hoạt động 7 ngày",
    "outages_7d": "Số lần mất kết nối (7 ngày)",
    "latency_note": (
        "Độ trễ của lần thăm dò gần nhất chưa được ghi lại ở máy chủ này; "
        "xem bảng điều khiển Grafana."
    ),
    "timeline_title": "Các lần mất kết nối trong 7 ngày qua",
    "timeline_desc": (
        "Mỗi dòng là một ngân hàng; đoạn gạch chéo màu đỏ là thời gian mất kết nối. "
        "Bảng bên dưới liệt kê cùng các lần đó."
    ),
    "outage_started": "Bắt đầu",
    "outage_ended": "Kết thúc",
    "outage_cause": "Nguyên nhân",
    "outage_open": "Đang mất kết nối",
    "no_outages": "Không có lần mất kết nối nào trong 7 ngày qua.",
    "in_doubt_chart_title": "Số thanh toán chờ xác minh theo giờ (24 giờ qua)",
    "in_doubt_chart_desc": (
        "Mỗi cột là số thanh toán đang chờ xác minh vào đầu giờ đó; con số ghi trên cột. "
        "Bảng bên dưới có cùng số liệu."
    ),
    "hour": "Giờ",
    "count": "Số lượng",
    "show_table": "Xem số liệu dạng bảng",
    "wake_bank": "Đánh thức ngân hàng",
    "wake_hint": (
        "Khi kết nối đã trở lại mà thanh toán chưa được xác minh: hệ thống hỏi ngân hàng "
        "ngay cho mọi thanh toán chờ xác minh của ngân hàng này. Thao tác được ghi nhật ký."
    ),
    "wake_started": "Đã yêu cầu khôi phục kết nối ngân hàng {bank}; quá trình đang chạy.",
    "wake_done": "Đã khôi phục kết nối ngân hàng {bank}.",
    "in_doubt_title": "Thanh toán chờ xác minh",
    "in_doubt_empty": "Không có thanh toán nào đang chờ xác minh.",
    "age": "Đã chờ",
    "attempts": "Số lần hỏi ngân hàng",
    "last_answer": "Trả lời gần nhất của ngân hàng",
    "no_answer": "Chưa có",
    "recheck": "Kiểm tra lại ngay",
    "recheck_label": "Kiểm tra lại ngay thanh toán {payment}",
    "recheck_done": (
        "Đã yêu cầu hỏi lại ngân hàng về thanh toán {payment}. "
        "Kết quả sẽ hiện ở đây sau ít giây (tải lại trang)."
    ),
    "filter_bank": "Lọc theo ngân hàng",
    "all_banks": "Tất cả ngân hàng",
    "filter_button": "Lọc",
    "next_page": "Trang sau",
    "payment_id": "Mã thanh toán",
    "refused": "Không thực hiện được",
    "alerts_title": "Cảnh báo đang kích hoạt",
    "alerts_empty": "Không có cảnh báo nào đang kích hoạt.",
    "alert_name": "Cảnh báo",
    "severity": "Mức độ",
    "since": "Từ lúc",
    "summary": "Tóm tắt",
    "runbook": "Hướng dẫn xử lý",
    "team": "Nhóm",
    "users_title": "Người dùng và mã truy cập",
    "username_col": "Tên đăng nhập",
    "full_name": "Họ tên",
    "role": "Vai trò",
    "units": "Đơn vị",
    "units_hint": "Mã đơn vị, cách nhau bởi dấu phẩy (chỉ cho cán bộ CSGT và cán bộ tài chính).",
    "account_state": "Trạng thái",
    "state_active": "Đang hoạt động",
    "state_disabled": "Đã vô hiệu hóa",
    "state_locked": "Bị khóa",
    "last_login": "Đăng nhập gần nhất",
    "create_user": "Tạo người dùng",
    "create_button": "Tạo",
    "disable": "Vô hiệu hóa",
    "enable": "Kích hoạt lại",
    "unlock": "Mở khóa",
    "reset_password": "Đặt lại mật khẩu",
    "tokens": "Mã truy cập",
    "token_name": "Tên",
    "token_kind": "Loại",
    "expires": "Hết hạn",
    "last_used": "Dùng gần nhất",
    "revoke": "Thu hồi",
    "no_tokens": "Không có mã truy cập nào còn hiệu lực.",
    "actions": "Thao tác",
    "user_created": "Đã tạo người dùng {username}.",
    "password_shown_once": (
        "Mật khẩu tạm thời của {username} (chỉ hiện một lần, hãy trao tận tay): {password}"
    ),
    "user_changed": "Đã cập nhật người dùng {username}.",
    "token_revoked": "Đã thu hồi mã truy cập số {token}.",
    "more_users": "Còn người dùng khác",
    "never": "Chưa bao giờ",
}

EN: Final[dict[str, str]] = {
    "nav_links": "Bank links",
    "nav_in_doubt": "Payments in doubt",
    "nav_alerts": "Alerts",
    "nav_users": "Users",
    "links_title": "Bank link health",
    "link_state": "State",
    "link_up": "Up",
    "link_down": "Down",
    "down_since": "Down since",
    "uptime_24h": "Uptime 24 h",
    "uptime_7d": "Uptime 7 days",
    "outages_7d": "Outages (7 days)",
    "latency_note": (
        "The latency of the last probe is not recorded on this server; see the Grafana dashboard."
    ),
    "timeline_title": "Outages over the last 7 days",
    "timeline_desc": (
        "One line per bank; a red hatched bar is a time its link was down. "
        "The table below lists the same outages."
    ),
    "outage_started": "Started",
    "outage_ended": "Ended",
    "outage_cause": "Cause",
    "outage_open": "Still down",
    "no_outages": "No outage in the last 7 days.",
    "in_doubt_chart_title": "Payments in doubt per hour (last 24 hours)",
    "in_doubt_chart_desc": (
        "Each bar is the number of payments in doubt at the start of that hour, written "
        "above it. The table below holds the same figures."
    ),
    "hour": "Hour",
    "count": "Count",
    "show_table": "Show the figures as a table",
    "wake_bank": "Wake the bank",
    "wake_hint": (
        "When the link is back but payments are not verified: ask the bank now about every "
        "payment of this bank in doubt. The action is audited."
    ),
    "wake_started": "The link recovery of bank {bank} was requested; it is running.",
    "wake_done": "The link recovery of bank {bank} is done.",
    "in_doubt_title": "Payments in doubt",
    "in_doubt_empty": "No payment is in doubt.",
    "age": "Waiting for",
    "attempts": "Status checks",
    "last_answer": "Bank's last answer",
    "no_answer": "None yet",
    "recheck": "Re-check now",
    "recheck_label": "Re-check payment {payment} now",
    "recheck_done": (
        "The bank is being asked again about payment {payment}. "
        "The answer shows here in a few seconds (reload the page)."
    ),
    "filter_bank": "Filter by bank",
    "all_banks": "All banks",
    "filter_button": "Filter",
    "next_page": "Next page",
    "payment_id": "Payment id",
    "refused": "Not done",
    "alerts_title": "Active alerts",
    "alerts_empty": "No alert is firing.",
    "alert_name": "Alert",
    "severity": "Severity",
    "since": "Since",
    "summary": "Summary",
    "runbook": "Runbook",
    "team": "Team",
    "users_title": "Users and tokens",
    "username_col": "Username",
    "full_name": "Full name",
    "role": "Role",
    "units": "Units",
    "units_hint": "Unit codes separated by commas (officers and finance staff only).",
    "account_state": "State",
    "state_active": "Active",
    "state_disabled": "Disabled",
    "state_locked": "Locked",
    "last_login": "Last login",
    "create_user": "Create a user",
    "create_button": "Create",
    "disable": "Disable",
    "enable": "Enable",
    "unlock": "Unlock",
    "reset_password": "Reset the password",
    "tokens": "Tokens",
    "token_name": "Name",
    "token_kind": "Kind",
    "expires": "Expires",
    "last_used": "Last used",
    "revoke": "Revoke",
    "no_tokens": "No live token.",
    "actions": "Actions",
    "user_created": "User {username} created.",
    "password_shown_once": (
        "Temporary password of {username} (shown once, hand it over in person): {password}"
    ),
    "user_changed": "User {username} updated.",
    "token_revoked": "Token {token} revoked.",
    "more_users": "More users exist",
    "never": "Never",
}
