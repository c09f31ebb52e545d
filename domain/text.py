"""Vietnamese text as keyboards and banks reduce it."""

from __future__ import annotations

import unicodedata


def strip_diacritics(text: str) -> str:
    """``"Nguyễn Văn Đức"`` → ``"Nguyen Van Duc"``. Other characters unchanged."""
    # đ/Đ are letters of their own, not d + a combining mark: NFD keeps them.
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )
