"""ISO 20022 camt.053 (BankToCustomerStatement) parser.

Hostile input is expected: the file comes from outside. defusedxml refuses any
DTD (so entity-expansion bombs and external entities never expand), the file
size is checked before parsing, nesting depth and element count are bounded
while parsing, and every ``Ntry`` becomes a ``StatementLine`` (and is dropped
from the tree) as soon as it ends, so memory follows the output, not the
markup. Any fault anywhere refuses the whole file with a
``StatementParseError`` naming the entry, element and line.

Accepted: camt.053.001.02 to .13 (the elements read here did not change),
one ``Stmt`` per file, VND amounts in whole đồng. How entries become lines
(status, reference fallbacks, batch entries, content) is in
``camt053_entries``.

Encoding: UTF-8 (the ISO 20022 rule) unless the XML declaration names
another; ISO-8859-1, ISO-8859-15, Windows-1252, US-ASCII and UTF-16 (with
its byte order mark) are read by converting the file to UTF-8 first (line
numbers stay the same). Any other declared encoding is refused by name. The
codec is chosen from this fixed list, never looked up from the file's text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from bank_adapters.statements.camt053_entries import (
    EntryContext,
    account_id,
    amount_at,
    direction_at,
    entry_lines,
    text_at,
)
from bank_adapters.statements.common import (
    DEFAULT_LIMITS,
    StatementLimits,
    check_balances,
    check_size,
    check_unique_refs,
)
from bank_adapters.types import (
    Direction,
    ParsedStatement,
    StatementFormat,
    StatementLine,
    StatementParseError,
)

_FMT: Final = StatementFormat.CAMT053
_NS_RE: Final = re.compile(r"urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.\d{2}")
_OPENING_CODES: Final = frozenset({"OPBD", "PRCD"})
_CLOSING_CODES: Final = frozenset({"CLBD"})
_DECLARATION_RE: Final = re.compile(
    rb"""\A\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9._-]{1,40})["']"""
)
# Declared name (lower case) -> Python codec. A fixed list: the file's text
# never reaches the codec lookup.
_ENCODINGS: Final = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "us-ascii": "ascii",
    "ascii": "ascii",
    "iso-8859-1": "latin-1",
    "iso8859-1": "latin-1",
    "latin1": "latin-1",
    "latin-1": "latin-1",
    "iso-8859-15": "iso8859-15",
    "iso8859-15": "iso8859-15",
    "windows-1252": "cp1252",
    "cp1252": "cp1252",
    "utf-16": "utf-16",
}


class _LimitExceededError(Exception):
    pass


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


class _BoundedBuilder:
    """Parser target: a TreeBuilder that bounds depth and element count and
    converts each entry as soon as it is complete."""

    def __init__(self, data: bytes, limits: StatementLimits) -> None:
        self._data = data
        self._limits = limits
        self._builder = TreeBuilder()
        self._stack: list[Element] = []
        self._elements = 0
        self._ns = ""
        self._entry_start: tuple[int, int] = (0, 0)
        self._position: Callable[[], tuple[int, int]] = lambda: (0, 0)
        self.lines: list[StatementLine] = []
        self.entries_seen = 0
        self._seen_refs: dict[str, int] = {}

    def bind(self, position: Callable[[], tuple[int, int]]) -> None:
        """``position()`` gives (line, byte offset) of the current event."""
        self._position = position

    @property
    def namespace(self) -> str:
        return self._ns

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self._elements += 1
        if len(self._stack) >= self._limits.xml_depth_max:
            raise _LimitExceededError(f"nesting deeper than {self._limits.xml_depth_max}")
        if self._elements > self._limits.xml_elements_max:
            raise _LimitExceededError(f"more than {self._limits.xml_elements_max} elements")
        if not self._stack:
            self._ns = tag[1:].partition("}")[0] if tag.startswith("{") else ""
            if _local(tag) != "Document" or not _NS_RE.fullmatch(self._ns):
                raise _LimitExceededError(
                    f"root element must be Document in a camt.053.001 namespace, got {tag!r:.120}"
                )
        elif tag == self._q("Ntry") and self._stack[-1].tag == self._q("Stmt"):
            self.entries_seen += 1
            if self.entries_seen > self._limits.entries_max:
                raise _LimitExceededError(f"more than {self._limits.entries_max} entries")
            self._entry_start = self._position()
        element = self._builder.start(tag, attrs)
        self._stack.append(element)
        return element

    def end(self, tag: str) -> Element:
        element = self._builder.end(tag)
        self._stack.pop()
        if tag == self._q("Ntry") and self._stack and self._stack[-1].tag == self._q("Stmt"):
            line, start = self._entry_start
            _, end = self._position()
            close = self._data.find(b">", end)
            raw = self._data[start : close + 1 if close >= 0 else len(self._data)]
            where = f"Ntry #{self.entries_seen} (line {line})"
            statement = self._stack[-1]
            context = EntryContext(
                ns=self._ns,
                statement_id=text_at(statement, self._ns, "Id") or "",
                where=where,
                line=line,
                raw=raw.decode("utf-8", "replace"),
                seen=self._seen_refs,
            )
            self.lines.extend(entry_lines(element, context))
            if len(self.lines) > self._limits.entries_max:
                raise _LimitExceededError(f"more than {self._limits.entries_max} lines")
            # The entry is now a StatementLine; keeping its elements would
            # make memory grow with the markup.
            self._stack[-1].remove(element)
        return element

    def data(self, text: str) -> None:
        self._builder.data(text)

    def close(self) -> Element:
        return self._builder.close()

    def _q(self, local: str) -> str:
        return f"{{{self._ns}}}{local}"


def parse_camt053(data: bytes, *, limits: StatementLimits = DEFAULT_LIMITS) -> ParsedStatement:
    """Parse one camt.053 file; raises ``StatementParseError`` (nothing else)."""
    check_size(_FMT, data, limits)
    data = _as_utf8(data)
    builder = _BoundedBuilder(data, limits)
    # The file is UTF-8 by now; the override also keeps a forged encoding
    # declaration from reaching the codec lookup.
    parser = DefusedXMLParser(target=builder, encoding="utf-8", forbid_dtd=True)
    expat = parser.parser
    builder.bind(lambda: (expat.CurrentLineNumber, expat.CurrentByteIndex))
    try:
        parser.feed(data)
        root = parser.close()
    except DefusedXmlException as exc:
        raise StatementParseError(
            _FMT,
            f"line {expat.CurrentLineNumber}",
            f"DTDs and entity declarations are refused ({type(exc).__name__})",
        ) from None
    except _LimitExceededError as exc:
        raise StatementParseError(_FMT, f"line {expat.CurrentLineNumber}", str(exc)) from None
    except ParseError as exc:
        line, column = getattr(exc, "position", (expat.CurrentLineNumber, 0))
        raise StatementParseError(
            _FMT, f"line {line}, column {column}", f"not well-formed XML ({exc})"
        ) from None
    return _statement(root, builder.namespace, builder.lines)


def _as_utf8(data: bytes) -> bytes:
    """The file in UTF-8, from the encoding its declaration (or BOM) names."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec, declared = "utf-16", "UTF-16"
    else:
        match = _DECLARATION_RE.match(data)
        if match is None:
            return data
        declared = match.group(1).decode("ascii")
        found = _ENCODINGS.get(declared.lower())
        if found is None:
            raise StatementParseError(
                _FMT,
                "line 1 (XML declaration)",
                f"encoding {declared!r} is not supported: expected UTF-8, ISO-8859-1, "
                "ISO-8859-15, Windows-1252, US-ASCII or UTF-16",
            )
        codec = found
    if codec == "utf-8":
        return data
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise StatementParseError(
            _FMT, f"line {line}", f"not valid {declared} text (as declared)"
        ) from None
    text = text.removeprefix("\ufeff")
    declaration = re.match(r"""\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([^"']*)["']""", text)
    if declaration is not None:
        text = text[: declaration.start(1)] + "UTF-8" + text[declaration.end(1) :]
    return text.encode("utf-8")


def _balance(balance: Element, ns: str, where: str) -> int:
    amount = amount_at(balance, ns, "Amt", where)
    return amount if direction_at(balance, ns, where) is Direction.CREDIT else -amount


def _statement(root: Element, ns: str, lines: list[StatementLine]) -> ParsedStatement:
    statements = root.findall(f"{{{ns}}}BkToCstmrStmt/{{{ns}}}Stmt")
    if len(statements) != 1:
        raise StatementParseError(
            _FMT, "BkToCstmrStmt", f"expected exactly one Stmt, found {len(statements)}"
        )
    stmt = statements[0]
    account = account_id(stmt, ns, "Acct")
    if not account:
        raise StatementParseError(_FMT, "Stmt/Acct", "account id (Othr/Id or IBAN) missing")
    currency = text_at(stmt, ns, "Acct/Ccy")
    if currency not in (None, "VND"):
        raise StatementParseError(_FMT, "Stmt/Acct/Ccy", f"must be VND, got {currency!r:.20}")
    opening: int | None = None
    closing: int | None = None
    for index, balance in enumerate(stmt.findall(f"{{{ns}}}Bal"), start=1):
        code = text_at(balance, ns, "Tp/CdOrPrtry/Cd") or ""
        where = f"Bal #{index} ({code or 'no code'})"
        if code in _OPENING_CODES:
            opening = _balance(balance, ns, where)
        elif code in _CLOSING_CODES:
            closing = _balance(balance, ns, where)
    check_unique_refs(_FMT, lines)
    if opening is not None and closing is not None:
        check_balances(_FMT, "Bal CLBD", opening, closing, lines)
    return ParsedStatement(
        format=_FMT,
        account=account,
        lines=tuple(lines),
        opening_balance_vnd=opening,
        closing_balance_vnd=closing,
    )
