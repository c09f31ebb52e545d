"""Transfer content as Vietnamese banks mangle it, and how to match it anyway.

Banks strip Vietnamese diacritics and punctuation from transfer content and
cut it to a few dozen characters (``bank_transfer_content`` does exactly what
the simulators do). A decision number such as ``1234/QĐ-XPVPHC`` therefore
comes back as ``1234QDXPVPHC``, possibly cut short.

Matching survives that by comparing *keys*: upper-case, ASCII letters and
digits only (``alnum_key``). Our own payment reference (``payment_reference``)
is made of those characters only, carries a check character so that random
citizen text is not taken for one, and is placed first in the content so that
truncation never cuts it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Final

from domain.content import (
    REFERENCE_BODY_LENGTH,
    REFERENCE_PREFIX,
    content_key,
    is_payment_reference,
    payment_references,
    reference_check_char,
)
from domain.text import strip_diacritics

TRANSFER_CONTENT_LENGTH_MAX_DEFAULT: Final = 50
_NOT_ALNUM_SPACE_RE: Final = re.compile(r"[^A-Za-z0-9 ]+")
_SPACES_RE: Final = re.compile(r"\s+")
# Printable ASCII minus characters that some bank apps refuse in QR content.
_QR_UNSAFE_RE: Final = re.compile(r"[^A-Za-z0-9 /\-.,:()+?']+")
_TRUNCATED_PREFIX_LENGTH_MIN: Final = 6


def bank_transfer_content(text: str, length_max: int = TRANSFER_CONTENT_LENGTH_MAX_DEFAULT) -> str:
    """What a Vietnamese bank keeps of a transfer's content: diacritics
    stripped, punctuation and other symbols deleted, whitespace collapsed,
    cut to ``length_max`` characters."""
    assert length_max > 0
    ascii_text = strip_diacritics(_SPACES_RE.sub(" ", text))
    kept = _NOT_ALNUM_SPACE_RE.sub("", ascii_text)
    return _SPACES_RE.sub(" ", kept).strip()[:length_max].rstrip()


def alnum_key(text: str) -> str:
    """Upper-case ASCII letters and digits only: the form in which two
    spellings of the same content compare equal (``domain.content``)."""
    return content_key(text)


def decision_number_key(decision_number: str) -> str:
    """``"1234/QĐ-XPVPHC"`` → ``"1234QDXPVPHC"``."""
    return alnum_key(decision_number)


def mentions_decision(content: str, decision_number: str) -> bool:
    """Whether transfer content names the decision, after bank mangling,
    including a decision number cut short at the end of the content (at
    least six characters of it must remain)."""
    content_key = alnum_key(content)
    decision_key = alnum_key(decision_number)
    if not decision_key:
        return False
    if decision_key in content_key:
        return True
    shortest = min(_TRUNCATED_PREFIX_LENGTH_MIN, len(decision_key))
    return any(
        content_key.endswith(decision_key[:n])
        for n in range(len(decision_key) - 1, shortest - 1, -1)
    )


def payment_reference(idempotency_key: str) -> str:
    """Our short reference for a payment, derived from its idempotency key:
    ``TF`` + 10 base32 characters + 1 check character (13 in all). It survives
    any bank mangling because it is upper-case letters and digits only."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).digest()
    body = base64.b32encode(digest).decode("ascii")[:REFERENCE_BODY_LENGTH]
    return REFERENCE_PREFIX + body + reference_check_char(body)


def find_payment_references(content: str) -> list[str]:
    """Every valid payment reference in ``content`` (in order, no repeats),
    found even when the bank deleted the spaces around it."""
    return payment_references(alnum_key(content))


def qr_transfer_content(reference: str, decision_number: str) -> str:
    """The content we put in a VietQR payload: reference first (banks cut
    the end), then the decision number in ASCII. EMVCo payloads carry ASCII
    only, so diacritics are stripped here rather than left to the bank."""
    assert is_payment_reference(reference), reference
    decision = _QR_UNSAFE_RE.sub("", strip_diacritics(decision_number)).strip()
    return f"{reference} {decision}".strip()
