"""Decision numbers (số quyết định): how one is typed, and its lookup key.

A decision number looks like ``01234/QĐ-XPHC``. It is stored as typed (the
display form) and as a normalised key, so that an officer typing
``01234/qd-xphc`` or `` 01234 / QĐ-XPHC`` finds the same fine, and a bank
transfer's content (no diacritics, case lost) still names it.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

DECISION_NUMBER_LENGTH_MAX: Final = 64
# The typed form is stored too (``fines.decision_number``, at most 64
# characters in the database): bound it, not only the key. A key drops
# combining marks, so "a" with 100 accents has a one-letter key but a
# 101-character typed form.
DECISION_NUMBER_TYPED_LENGTH_MAX: Final = DECISION_NUMBER_LENGTH_MAX
_ALLOWED_KEY: Final = re.compile(r"[0-9a-z][0-9a-z/._ -]*")
_SPACES: Final = re.compile(r"\s+")
_SPACE_AROUND_SEPARATOR: Final = re.compile(r"\s*([/\-.])\s*")


class DecisionNumberError(ValueError):
    """What is wrong with a typed decision number, in words a person can act on."""


def normalise_decision_number(raw: object) -> str:
    """The lookup key of a decision number.

    Trimmed, case-folded, whitespace collapsed (and dropped around ``/``, ``-``
    and ``.``), ``Đ``/``đ`` read as ``d`` and other diacritics dropped, so the
    key is what an officer would type on a keyboard without Vietnamese input.
    Raises ``DecisionNumberError`` when nothing usable is left.
    """
    if not isinstance(raw, str):
        raise DecisionNumberError("must be a string")
    too_long = f"is longer than {DECISION_NUMBER_TYPED_LENGTH_MAX} characters"
    # A cheap bound before normalising a huge string: NFC composes only a
    # few code points into one.
    if len(raw) > 8 * DECISION_NUMBER_TYPED_LENGTH_MAX:
        raise DecisionNumberError(too_long)
    value = unicodedata.normalize("NFC", raw).strip()
    if len(value) > DECISION_NUMBER_TYPED_LENGTH_MAX:
        raise DecisionNumberError(too_long)
    value = value.replace("Đ", "D").replace("đ", "d")
    value = "".join(
        ch for ch in unicodedata.normalize("NFKD", value) if not unicodedata.combining(ch)
    )
    value = value.casefold()
    value = _SPACES.sub(" ", value)
    value = _SPACE_AROUND_SEPARATOR.sub(r"\1", value)
    if not value:
        raise DecisionNumberError("is empty")
    if len(value) > DECISION_NUMBER_LENGTH_MAX:
        raise DecisionNumberError(f"is longer than {DECISION_NUMBER_LENGTH_MAX} characters")
    if not _ALLOWED_KEY.fullmatch(value):
        raise DecisionNumberError(
            "may contain only letters, digits, spaces and / - . (e.g. 01234/QĐ-XPHC)"
        )
    return value
