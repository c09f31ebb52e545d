"""What a public page may show of a person: enough to compare with the paper
in one's hand, not enough to learn who paid what from a guessed URL.

* A name keeps its first word (the family name, shared by millions) whole
  and the other words as initials: ``"Nguyễn Văn An"`` → ``"Nguyễn V. A."``;
  a name of one word is only its initial.
* A plate keeps its first three letters or digits (province code and
  series, e.g. ``29A``) and its last two; the ones between become ``*``,
  separators stay: ``"29A-123.45"`` → ``"29A-***.45"``. A plate of five or
  fewer keeps only its last two.
"""

from __future__ import annotations

from typing import Final

MASK: Final = "*"
PLATE_HEAD_KEPT: Final = 3
PLATE_TAIL_KEPT: Final = 2


def mask_name(name: str) -> str:
    words = name.split()
    if not words:
        return ""
    initials = [f"{word[0].upper()}." for word in words[1:]]
    head = words[0] if len(words) > 1 else f"{words[0][0].upper()}."
    return " ".join([head, *initials])


def mask_plate(plate: str) -> str:
    plate = plate.strip()
    positions = [i for i, ch in enumerate(plate) if ch.isalnum()]
    head = PLATE_HEAD_KEPT if len(positions) > PLATE_HEAD_KEPT + PLATE_TAIL_KEPT else 0
    hidden = set(positions[head : max(head, len(positions) - PLATE_TAIL_KEPT)])
    return "".join(MASK if i in hidden else ch for i, ch in enumerate(plate))
