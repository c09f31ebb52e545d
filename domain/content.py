"""Transfer content as matching reads it: one key for every spelling, and our
payment reference found in that key.

Banks strip diacritics and punctuation from what a citizen types and cut it
short, so two spellings of one content compare equal only as a *key*:
upper-case ASCII letters and digits, diacritics stripped (``đ`` read as
``d``), everything else dropped. Our payment reference (``TF`` + 10 base32
characters + 1 check character) is made of such characters only, so it
survives in the key.

The bank adapters read content with these rules when they parse a transfer;
the ledger applies them to every line of a statement it loads, a million
lines in one go, so the usual ASCII content takes a bytes translate rather
than a Unicode decomposition (``tests/unit/reconciliation/test_recon_pure.py``
checks the two paths agree).
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Iterator
from typing import Final

REFERENCE_PREFIX: Final = "TF"
REFERENCE_BODY_LENGTH: Final = 10
REFERENCE_LENGTH: Final = len(REFERENCE_PREFIX) + REFERENCE_BODY_LENGTH + 1
# RFC 4648 base32: upper-case letters and digits only, as the key keeps them.
REFERENCE_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_ALPHABET_VALUE: Final = {c: i for i, c in enumerate(REFERENCE_ALPHABET)}

_ALNUM: Final = frozenset(string.ascii_letters + string.digits)
_NOT_ALNUM_ASCII: Final = bytes(c for c in range(128) if chr(c) not in _ALNUM)


def content_key(content: str) -> str:
    """``"Nộp phạt 1234/QĐ-XPVPHC"`` → ``"NOPPHAT1234QDXPVPHC"``: upper-case
    ASCII letters and digits only, diacritics stripped."""
    if content.isascii():
        return content.encode("ascii").translate(None, _NOT_ALNUM_ASCII).upper().decode("ascii")
    # đ/Đ are letters of their own, not d + a combining mark: NFD keeps them.
    folded = unicodedata.normalize("NFD", content.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in folded if c in _ALNUM).upper()


def _weighted_sum(body: str) -> int | None:
    """The weighted sum behind the check character; None if a character is
    not base32 (one pass: it runs for every ``TF`` in a million lines)."""
    total = 0
    for i, c in enumerate(body):
        value = _ALPHABET_VALUE.get(c)
        if value is None:
            return None
        total += (i + 1) * value
    return total


def reference_check_char(body: str) -> str:
    """The check character of a reference's base32 body (a weighted sum, so a
    swapped or mistyped character changes it)."""
    total = _weighted_sum(body)
    assert total is not None, f"not base32: {body!r}"
    return REFERENCE_ALPHABET[total % len(REFERENCE_ALPHABET)]


def is_payment_reference(candidate: str) -> bool:
    if len(candidate) != REFERENCE_LENGTH or not candidate.startswith(REFERENCE_PREFIX):
        return False
    total = _weighted_sum(candidate[len(REFERENCE_PREFIX) : -1])
    return (
        total is not None and candidate[-1] == REFERENCE_ALPHABET[total % len(REFERENCE_ALPHABET)]
    )


def _references(key: str) -> Iterator[str]:
    start = key.find(REFERENCE_PREFIX)
    while start != -1:
        candidate = key[start : start + REFERENCE_LENGTH]
        if is_payment_reference(candidate):
            yield candidate
        start = key.find(REFERENCE_PREFIX, start + 1)


def payment_references(key: str) -> list[str]:
    """Every valid payment reference in a content key, in order, no repeats
    (found even where the bank deleted the spaces around it)."""
    return list(dict.fromkeys(_references(key)))


def first_payment_reference(key: str) -> str | None:
    """The first valid payment reference in a content key, if any."""
    return next(_references(key), None)
