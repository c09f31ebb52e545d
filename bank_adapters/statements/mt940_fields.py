"""MT940 files as banks deliver them, cut into fields.

What is taken away before the fields are read (and why it is safe):

- the SWIFT envelope: ``{1:…}{2:…}{3:…}{4:`` opening a message and ``-}``
  (with any ``{5:…}`` trailer) closing it, on their own lines or together
  with the next message's header. Block 2 names the message type: anything
  but MT940 (an MT942 interim report, an MT950) is refused;
- a bank's header lines between messages: ``:940:``, ``940``/``940 00``, a
  BIC on its own line (``ABNANL2A``), ING's ``0000 01INGBNL2AXXXX00001``.
  Nothing else may come before a statement's ``:20:``;
- the file-transfer framing bytes SOH (0x01) and ETX (0x03) at the start or
  end of a line, and Ctrl-Z (0x1A) at the end of the file;
- a statement separator line ``-``; blank lines (banks pad ``:86:`` with
  lines of spaces).

A field is a tag line and the lines that continue it. ``:86:`` may run over
more than SWIFT's 6 lines (banks send up to a dozen), ``:61:`` may have two
supplementary lines, ``:28C:`` may wrap once; each field is bounded in lines
and characters. ``wraps`` records, per line, whether it was a full SWIFT line
of 65 characters ending in a non-space, i.e. whether the next line continues
the same word (see ``join_wrapped``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from bank_adapters.types import StatementFormat, StatementParseError

_FMT: Final = StatementFormat.MT940
SWIFT_LINE_LENGTH: Final = 65
FIELD_LINES_MAX: Final = 100
FIELD_CHARS_MAX: Final = 2000
_TAG_RE: Final = re.compile(r":(\d{2}[A-Z]?):(.*)", re.ASCII | re.DOTALL)
# Continuation lines each tag may have.
_CONTINUATIONS_MAX: Final = {
    "20": 0,
    "21": 0,
    "13D": 0,
    "25": 1,
    "28": 1,
    "28C": 1,
    "60F": 0,
    "60M": 0,
    "61": 2,
    "86": FIELD_LINES_MAX - 1,
    "62F": 0,
    "62M": 0,
    "64": 0,
    "65": 0,
}
# Tags of the MT942 interim report, refused by name.
_MT942_TAGS: Final = frozenset({"34F", "90C", "90D"})
_HEADER_BLOCK_RE: Final = re.compile(r"\{([123]):((?:[^{}]|\{[^{}]*\})*)\}")
_TRAILER_BLOCK_RE: Final = re.compile(r"\{(?:5|S):(?:[^{}]|\{[^{}]*\})*\}")
_MESSAGE_TYPE_RE: Final = re.compile(r"[IO](\d{3})")
_BANK_HEADER_RE: Final = re.compile(
    r":940:|940(?: \d{2})?|[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?|\d{4} \d{2}[A-Z0-9]*", re.ASCII
)
_LINE_SPLIT_RE: Final = re.compile(r"\r\n|\r|\n")
_FRAMING_START: Final = "\x01\x03"
_FRAMING_END: Final = "\x03\x1a"


@dataclass(slots=True)
class Field:
    tag: str
    lines: list[str]
    line_number: int
    wraps: list[bool] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"line {self.line_number} (:{self.tag}:)"

    @property
    def raw(self) -> str:
        return "\n".join([f":{self.tag}:{self.lines[0]}", *self.lines[1:]])


def join_wrapped(lines: list[str], wraps: list[bool]) -> str:
    """Lines SWIFT cut at 65 characters, joined back: a full line ending in a
    non-space continues the same word on the next line (no separator);
    otherwise the line ended where the text did, and a space separates.
    Blank lines (padding) are dropped."""
    text = ""
    joined_previous = True
    for line, wrapped in zip(lines, wraps, strict=True):
        piece = line.strip(" ") if not joined_previous else line.rstrip(" ")
        if not piece:
            continue
        if text:
            text += piece if joined_previous else " " + piece
        else:
            text = piece.lstrip(" ")
        joined_previous = wrapped
    return text


def _strip_envelope(line: str, number: int) -> tuple[str, bool]:
    """Take the SWIFT envelope off the start of ``line``; True if there was one."""
    rest = line
    found = False
    if rest.startswith("-}"):
        rest, found = rest[2:].lstrip(_FRAMING_START), True
    while (trailer := _TRAILER_BLOCK_RE.match(rest)) is not None:
        rest, found = rest[trailer.end() :].lstrip(_FRAMING_START), True
    while (block := _HEADER_BLOCK_RE.match(rest)) is not None:
        if block.group(1) == "2":
            kind = _MESSAGE_TYPE_RE.match(block.group(2))
            if kind is None or kind.group(1) != "940":
                raise StatementParseError(
                    _FMT,
                    f"line {number} (SWIFT block 2)",
                    f"message type must be MT940 (I940/O940), got {block.group(2)[:4]!r}",
                )
        rest, found = rest[block.end() :].lstrip(_FRAMING_START), True
    if rest.startswith("{4:"):
        rest, found = rest[3:], True
    return rest, found


def tokenize(text: str) -> list[Field]:
    """The fields of an MT940 file, envelope and bank headers taken away."""
    fields: list[Field] = []
    between = True  # outside a statement: headers allowed, no continuation
    for number, physical in enumerate(_LINE_SPLIT_RE.split(text.rstrip("\x1a")), start=1):
        line, enveloped = _strip_envelope(
            physical.lstrip(_FRAMING_START).rstrip(_FRAMING_END), number
        )
        between = between or enveloped
        content = line.rstrip(" ")
        if not content.strip(" "):
            continue
        if content == "-":
            between = True
            continue
        match = _TAG_RE.fullmatch(content)
        if match is not None:
            fields.append(_new_field(match.group(1), match.group(2), line, number))
            between = False
        elif between:
            if not _BANK_HEADER_RE.fullmatch(content.strip(" ")):
                raise StatementParseError(
                    _FMT,
                    f"line {number}",
                    f"text before a statement: expected :20:, a SWIFT header ({{1:…}}{{2:…}}"
                    f"{{4:) or a bank header (:940:, 940, a BIC), found {content[:40]!r}",
                )
        else:
            _continue_field(fields[-1], line, number)
    for parsed in fields:
        _check_field(parsed)
    return fields


def _new_field(tag: str, value: str, line: str, number: int) -> Field:
    if tag in _MT942_TAGS:
        raise StatementParseError(
            _FMT,
            f"line {number} (:{tag}:)",
            "this is an MT942 interim report, not an MT940 statement",
        )
    if tag not in _CONTINUATIONS_MAX:
        raise StatementParseError(_FMT, f"line {number}", f"unknown tag :{tag}:")
    return Field(tag, [value.rstrip(" ")], number, [_wraps(value, line)])


def _wraps(value: str, line: str) -> bool:
    # SWIFT's 65 characters do not count the tag. A bank that cuts shorter
    # (Rabobank cuts some words at 64) gets a space inside the word: the
    # lesser harm than gluing two words wherever a line happens to be long.
    return len(value) >= SWIFT_LINE_LENGTH and not line.endswith(" ")


def _continue_field(previous: Field, line: str, number: int) -> None:
    if len(previous.lines) > _CONTINUATIONS_MAX[previous.tag]:
        raise StatementParseError(
            _FMT,
            f"line {number}",
            f"expected a tag: :{previous.tag}: (line {previous.line_number}) takes at most "
            f"{_CONTINUATIONS_MAX[previous.tag]} more lines",
        )
    previous.lines.append(line.rstrip(" "))
    previous.wraps.append(_wraps(line, line))


def _check_field(parsed: Field) -> None:
    text = "".join(parsed.lines)
    if len(text) > FIELD_CHARS_MAX:
        raise StatementParseError(
            _FMT, parsed.where, f"field longer than {FIELD_CHARS_MAX} characters"
        )
    # Some banks (ING) put a TAB inside :86: free text; it is a space there.
    allowed = "\t" if parsed.tag == "86" else ""
    if any((ord(c) < 32 and c not in allowed) or c == "\x7f" for c in text):
        raise StatementParseError(_FMT, parsed.where, "field contains control characters")
