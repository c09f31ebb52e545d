"""A fine's state in plain words, the same for the officer at the counter
and the citizen on the status page.

A payment in doubt (still ``initiated`` or ``verifying``) says which bank,
since when that bank's link is down (``ledger.outages``) if it is, that the
citizen must not pay again, that the receipt comes by itself when the bank
answers, and from when a dispute is the way (``dispute_after`` after the
payment, or after the link came back if it is still down then; the setting
``RECONCILER_DISPUTE_AFTER_HOURS``, a day by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from ledger.fines import FineStatus, FineView, PaymentSummary
from ledger.payments.model import LIVE_STATUSES
from observability.outages import Outage
from reconciler.console.render import Lang, format_time
from reconciler.settings import Settings

_LINES: Final[dict[Lang, dict[str, str]]] = {
    "vi": {
        "paid": "Khoản phạt đã được nộp. Biên lai đã được phát hành.",
        "paid_no_receipt": (
            "Khoản phạt đã được nộp. Biên lai đang được phát hành và sẽ tự động có trong ít "
            "phút; không cần nộp lại."
        ),
        "unpaid": "Khoản phạt chưa được nộp.",
        "pending": ("Khoản thanh toán qua ngân hàng {bank} lúc {at} đang chờ ngân hàng xác nhận."),
        "down": "Kết nối với ngân hàng {bank} bị gián đoạn từ {since}.",
        "up": "Kết nối với ngân hàng {bank} vẫn hoạt động; hệ thống đang hỏi lại ngân hàng.",
        "no_repay": (
            "Người nộp KHÔNG được nộp lại: nếu tài khoản đã bị trừ tiền, khoản này sẽ được "
            "ghi nhận."
        ),
        "auto_receipt": "Biên lai sẽ tự động được phát hành khi ngân hàng trả lời.",
        "dispute_at": (
            "Nếu đến {deadline} vẫn chưa có biên lai mà tài khoản đã bị trừ tiền, hãy mở "
            "khiếu nại tại quầy."
        ),
        "dispute_after_link": (
            "Nếu {wait} giờ sau khi kết nối được khôi phục vẫn chưa có biên lai mà tài "
            "khoản đã bị trừ tiền, hãy mở khiếu nại tại quầy."
        ),
    },
    "en": {
        "paid": "The fine is paid. Its receipt has been issued.",
        "paid_no_receipt": (
            "The fine is paid. Its receipt is being issued and will appear by itself in a "
            "few minutes; there is nothing to pay again."
        ),
        "unpaid": "The fine is not paid.",
        "pending": "The payment through bank {bank} at {at} awaits the bank's confirmation.",
        "down": "The link to bank {bank} has been down since {since}.",
        "up": "The link to bank {bank} is up; we are asking the bank again.",
        "no_repay": (
            "The citizen must NOT pay again: if their account was debited, this payment "
            "will be recorded."
        ),
        "auto_receipt": "The receipt will be issued by itself when the bank answers.",
        "dispute_at": (
            "If there is still no receipt by {deadline} and the account was debited, open "
            "a dispute at the counter."
        ),
        "dispute_after_link": (
            "If there is still no receipt {wait} hours after the link is back and the "
            "account was debited, open a dispute at the counter."
        ),
    },
}


@dataclass(frozen=True)
class Explanation:
    status: str  # a FineStatus
    lines: tuple[str, ...]
    bank: str | None = None  # the bank of a payment in doubt


def in_doubt(view: FineView) -> PaymentSummary | None:
    """The fine's latest payment still in flight, if it is not paid."""
    if view.status != FineStatus.VERIFYING:
        return None
    live = [p for p in view.payments if p.status in LIVE_STATUSES]
    return live[-1] if live else None


def dispute_after(settings: Settings) -> timedelta:
    """How long after a payment in doubt (or its link's return) the console
    sends the citizen to open a dispute."""
    return timedelta(hours=settings.dispute_after_hours)


def explain(
    view: FineView, open_outages: list[Outage], lang: Lang, dispute_wait: timedelta
) -> Explanation:
    """``view``'s state in ``lang``; ``open_outages``: the banks' links
    down now; ``dispute_wait``: from when a dispute is the way (after the
    payment, or after its link's return)."""
    lines = _LINES[lang]
    if view.status == FineStatus.PAID:
        # Settled and receipted are two steps: the receipt follows in moments.
        paid = lines["paid"] if view.receipt is not None else lines["paid_no_receipt"]
        return Explanation(view.status, (paid,))
    payment = in_doubt(view)
    if payment is None:
        return Explanation(FineStatus.UNPAID, (lines["unpaid"],))
    bank = payment.bank
    outage = next((o for o in open_outages if o.bank == payment.bank), None)
    said = [lines["pending"].format(bank=bank, at=format_time(payment.created_at, lang))]
    if outage is not None:
        said.append(lines["down"].format(bank=bank, since=format_time(outage.started_at, lang)))
    else:
        said.append(lines["up"].format(bank=bank))
    said += [lines["no_repay"], lines["auto_receipt"]]
    if outage is not None:
        said.append(lines["dispute_after_link"].format(wait=_hours(dispute_wait)))
    else:
        deadline = payment.created_at + dispute_wait
        said.append(lines["dispute_at"].format(deadline=format_time(deadline, lang)))
    return Explanation(FineStatus.VERIFYING, tuple(said), bank=payment.bank)


def _hours(span: timedelta) -> int:
    return int(span.total_seconds() // 3600)
