"""ISO 20022 camt.053 (BankToCustomerStatement) parser.

Hostile input is expected: the file comes from outside. defusedxml refuses any
DTD (so entity-expansion bombs and external entities never expand), the file
size is checked before parsing, nesting depth and element count are bounded
while parsing, and every ``Ntry`` becomes a ``StatementLine`` (and is dropped
from the tree) as soon as it ends, so memory follows the output, not the
markup. Any fault anywhere refuses the whole file with a
``StatementParseError`` naming the entry, element and line.

Accepted: camt.053.001.02 to .13 (the elements read here did not change),
one ``Stmt`` per file, VND amounts in whole đồng, only ``BOOK`` entries
become lines (``PDNG``/``INFO`` entries are skipped).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Final
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from bank_adapters.statements.common import (
    DEFAULT_LIMITS,
    FIELD_LENGTH_MAX,
    StatementLimits,
    check_amount,
    check_balances,
    check_bank_ref,
    check_size,
    check_text,
    check_unique_refs,
    clip_raw,
    parse_whole_vnd,
    to_utc,
    vietnam_day_start_utc,
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
_SKIPPED_STATUSES: Final = frozenset({"PDNG", "INFO", "FUTR"})


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
            parsed = _entry(element, self._ns, where, line, raw.decode("utf-8", "replace"))
            if parsed is not None:
                self.lines.append(parsed)
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
    builder = _BoundedBuilder(data, limits)
    # ISO 20022 messages are UTF-8; the override also keeps a forged
    # encoding declaration from reaching the codec lookup.
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


def _find(element: Element, ns: str, path: str) -> Element | None:
    return element.find("/".join(f"{{{ns}}}{part}" for part in path.split("/")))


def _text(element: Element, ns: str, path: str) -> str | None:
    found = _find(element, ns, path)
    return None if found is None else (found.text or "").strip()


def _require_text(element: Element, ns: str, path: str, where: str) -> str:
    value = _text(element, ns, path)
    if not value:
        raise StatementParseError(_FMT, where, f"{path} missing or empty")
    return value


def _amount(element: Element, ns: str, path: str, where: str) -> int:
    amount = _find(element, ns, path)
    if amount is None:
        raise StatementParseError(_FMT, where, f"{path} missing")
    currency = amount.get("Ccy")
    if currency != "VND":
        raise StatementParseError(_FMT, where, f"{path} currency must be VND, got {currency!r}")
    return parse_whole_vnd(_FMT, f"{where} {path}", (amount.text or "").strip())


def _booked_at(entry: Element, ns: str, where: str) -> datetime:
    moment = _text(entry, ns, "BookgDt/DtTm")
    day = _text(entry, ns, "BookgDt/Dt")
    try:
        if moment:
            return to_utc(datetime.fromisoformat(moment))
        if day:
            return vietnam_day_start_utc(date.fromisoformat(day))
    except (ValueError, OverflowError) as exc:
        raise StatementParseError(_FMT, f"{where} BookgDt", f"bad date or time: {exc}") from None
    raise StatementParseError(_FMT, where, "BookgDt (DtTm or Dt) missing")


def _account_id(element: Element, ns: str, path: str) -> str:
    return _text(element, ns, f"{path}/Id/Othr/Id") or _text(element, ns, f"{path}/Id/IBAN") or ""


def _entry(entry: Element, ns: str, where: str, line: int, raw: str) -> StatementLine | None:
    status = _text(entry, ns, "Sts/Cd") or _text(entry, ns, "Sts") or ""
    if status in _SKIPPED_STATUSES:
        return None
    if status != "BOOK":
        raise StatementParseError(_FMT, f"{where} Sts", f"unknown entry status {status!r:.40}")
    mark = _require_text(entry, ns, "CdtDbtInd", where)
    if mark not in ("CRDT", "DBIT"):
        raise StatementParseError(_FMT, f"{where} CdtDbtInd", f"must be CRDT or DBIT: {mark!r:.40}")
    direction = Direction.CREDIT if mark == "CRDT" else Direction.DEBIT
    amount_vnd = _amount(entry, ns, "Amt", where)
    check_amount(_FMT, f"{where} Amt", amount_vnd)
    details = entry.findall(f"{{{ns}}}NtryDtls/{{{ns}}}TxDtls")
    if len(details) > 1:
        raise StatementParseError(_FMT, where, "batch entries (several TxDtls) are not supported")
    tx = details[0] if details else Element("TxDtls")
    bank_ref = _text(entry, ns, "AcctSvcrRef") or _text(tx, ns, "Refs/AcctSvcrRef") or ""
    end_to_end = _text(tx, ns, "Refs/EndToEndId")
    party = "RltdPties/DbtrAcct" if direction is Direction.CREDIT else "RltdPties/CdtrAcct"
    content = " ".join(
        (u.text or "").strip() for u in tx.findall(f"{{{ns}}}RmtInf/{{{ns}}}Ustrd")
    ) or (_text(entry, ns, "AddtlNtryInf") or "")
    return StatementLine(
        bank_ref=check_bank_ref(_FMT, f"{where} AcctSvcrRef", bank_ref),
        booked_at=_booked_at(entry, ns, where),
        amount_vnd=amount_vnd,
        direction=direction,
        counterparty=check_text(
            _FMT, f"{where} {party}", "counterparty", _account_id(tx, ns, party), FIELD_LENGTH_MAX
        ),
        content=check_text(_FMT, f"{where} RmtInf", "content", content, FIELD_LENGTH_MAX),
        raw=clip_raw(raw),
        end_to_end_ref=(
            None
            if not end_to_end or end_to_end == "NOTPROVIDED"
            else check_text(_FMT, f"{where} EndToEndId", "EndToEndId", end_to_end, 140)
        ),
        source_line=line,
    )


def _balance(balance: Element, ns: str, where: str) -> int:
    amount = _amount(balance, ns, "Amt", where)
    mark = _require_text(balance, ns, "CdtDbtInd", where)
    if mark not in ("CRDT", "DBIT"):
        raise StatementParseError(_FMT, f"{where} CdtDbtInd", f"must be CRDT or DBIT: {mark!r:.40}")
    return amount if mark == "CRDT" else -amount


def _statement(root: Element, ns: str, lines: list[StatementLine]) -> ParsedStatement:
    statements = root.findall(f"{{{ns}}}BkToCstmrStmt/{{{ns}}}Stmt")
    if len(statements) != 1:
        raise StatementParseError(
            _FMT, "BkToCstmrStmt", f"expected exactly one Stmt, found {len(statements)}"
        )
    stmt = statements[0]
    account = _account_id(stmt, ns, "Acct")
    if not account:
        raise StatementParseError(_FMT, "Stmt/Acct", "account id (Othr/Id or IBAN) missing")
    currency = _text(stmt, ns, "Acct/Ccy")
    if currency not in (None, "VND"):
        raise StatementParseError(_FMT, "Stmt/Acct/Ccy", f"must be VND, got {currency!r:.20}")
    opening: int | None = None
    closing: int | None = None
    for index, balance in enumerate(stmt.findall(f"{{{ns}}}Bal"), start=1):
        code = _text(balance, ns, "Tp/CdOrPrtry/Cd") or ""
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
