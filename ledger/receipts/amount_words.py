"""Vietnamese amount in words, as printed on receipts ("Bằng chữ: ...").

``num2words(n, lang="vi")`` was checked and is not used: it drops the
"không trăm" of inner groups (1.010 → "một nghìn lẻ mười", 2.024 → "hai
nghìn lẻ hai mươi bốn", 3.000.050 → "ba triệu lẻ năm mươi"), reads 10^15
as "một trăm nghìn tỷ" (that is 10^14), and converts through ``float``.
A receipt must read the way accounting documents do, so the rules are
written out here:

- numbers are read in groups of three (trăm / mươi / đơn vị) with the
  scales "nghìn", "triệu", "tỷ"; above a tỷ the count of tỷ is itself read
  as a number ("một nghìn tỷ", "một triệu tỷ");
- every non-zero group after the first is read in full, so its hundreds
  are spoken even when zero ("một nghìn không trăm linh năm");
- zero tens before a unit is "linh" ("một trăm linh năm");
- after "mươi", 1 is "mốt" and 5 is "lăm"; after "mười", 5 is "lăm".
"""

from __future__ import annotations

from domain.money import AMOUNT_VND_MAX

AMOUNT_VND_MIN = 1

_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_SCALES = ((10**6, "triệu"), (10**3, "nghìn"), (1, ""))
_BILLION = 10**9


def amount_in_words_vi(amount_vnd: int) -> str:
    """``500000`` → ``"Năm trăm nghìn đồng"``.

    Raises ``ValueError`` for amounts outside 1 .. 10^15 đồng (and for
    anything that is not an ``int``: money is never a float).
    """
    if isinstance(amount_vnd, bool) or not isinstance(amount_vnd, int):
        raise ValueError(f"amount_vnd must be an int, got {type(amount_vnd).__name__}")
    if not AMOUNT_VND_MIN <= amount_vnd <= AMOUNT_VND_MAX:
        raise ValueError(
            f"amount_vnd must be between {AMOUNT_VND_MIN} and {AMOUNT_VND_MAX}, got {amount_vnd}"
        )
    words = number_in_words_vi(amount_vnd)
    return f"{words[0].upper()}{words[1:]} đồng"


def number_in_words_vi(number: int) -> str:
    """A positive integer in lower-case Vietnamese words (no unit)."""
    if number <= 0:
        raise ValueError(f"number must be positive, got {number}")
    return " ".join(_read(number, leading=True))


def _read(number: int, *, leading: bool) -> list[str]:
    """Words of ``0 < number``; ``leading`` is false after a larger scale."""
    assert number > 0
    if number >= _BILLION:
        billions, rest = divmod(number, _BILLION)
        words = [*_read(billions, leading=leading), "tỷ"]
        if rest:
            words += _read(rest, leading=False)
        return words
    words = []
    for scale, name in _SCALES:
        group, number = divmod(number, scale)
        if group:
            words += _read_group(group, full=not leading)
            if name:
                words.append(name)
            leading = False
    return words


def _read_group(group: int, *, full: bool) -> list[str]:
    """Words of ``0 < group < 1000``; ``full`` speaks zero hundreds."""
    assert 0 < group < 1000
    hundreds, tens, units = group // 100, group // 10 % 10, group % 10
    words = []
    if hundreds or full:
        words += [_DIGITS[hundreds], "trăm"]
    if tens == 0:
        if units:
            if words:
                words.append("linh")
            words.append(_DIGITS[units])
    elif tens == 1:
        words.append("mười")
        if units:
            words.append("lăm" if units == 5 else _DIGITS[units])
    else:
        words += [_DIGITS[tens], "mươi"]
        if units:
            words.append({1: "mốt", 5: "lăm"}.get(units, _DIGITS[units]))
    return words
