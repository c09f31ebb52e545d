"""Vietnamese text as keyboards and banks reduce it."""

from __future__ import annotations

import re
import unicodedata
from typing import Final


def strip_diacritics(text: str) -> str:
    """``"Nguyễn Văn Đức"`` → ``"Nguyen Van Duc"``. Other characters unchanged."""
    # đ/Đ are letters of their own, not d + a combining mark: NFD keeps them.
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )


# Characters no text we accept may hold: C0 and C1 controls (but tab, line
# feed and carriage return, which only multi-line text may hold), DEL, lone
# surrogates (JSON's "\ud800" decodes to one; it cannot be encoded again),
# and the invisible format characters that make a text read differently
# from what it holds: soft hyphen, zero-width spaces and joiners, the
# direction marks, embeddings, overrides and isolates, line and paragraph
# separators, the word joiner and invisible operators, the byte-order mark
# and the interlinear annotation marks.
_UNSAFE: Final = (
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f"
    "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff"
)
_UNSAFE_MULTILINE_RE: Final = re.compile(f"[{_UNSAFE}]")
_UNSAFE_LINE_RE: Final = re.compile(f"[{_UNSAFE}\t\n\r]")


def unsafe_character(text: str, *, multiline: bool = False) -> str | None:
    """The first character ``text`` may not hold, described (``"U+202E"``),
    or None. ``multiline`` text may hold tab, line feed and carriage return."""
    found = (_UNSAFE_MULTILINE_RE if multiline else _UNSAFE_LINE_RE).search(text)
    return None if found is None else f"U+{ord(found.group()):04X}"


# What makes a spreadsheet read a cell as a formula: =, +, - and @ (and their
# full-width forms, which some spreadsheets fold), and a leading tab or
# carriage return, which spreadsheets skip before looking for them.
_FORMULA_START: Final = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
_PLAIN_NUMBER_RE: Final = re.compile(r"-?[0-9]+", re.ASCII)


def spreadsheet_safe(text: str) -> str:
    """A CSV cell a spreadsheet shows as text: one that would start a
    formula gets a leading apostrophe. A plain (negative) integer stays."""
    if text[:1] in _FORMULA_START and not _PLAIN_NUMBER_RE.fullmatch(text):
        return "'" + text
    return text
