"""One camt.053 ``Ntry`` to statement lines: status, references, batches.

Status. camt.053 reports booked entries (pending ones belong in camt.052),
and ``Sts`` is mandatory in its schema; an entry without one is read as
booked (``BOOK``), which is what a bank that leaves it out reports. ``PDNG``,
``INFO`` and ``FUTR`` entries are skipped; any other status refuses the file.

Reference (``bank_ref``), the first present of:

1. ``Ntry/AcctSvcrRef``: the bank's own reference for the booking, the one
   the standard means to identify it;
2. ``NtryDtls/TxDtls/Refs/AcctSvcrRef``: the bank's reference for the
   transaction (some banks set it only there);
3. ``Refs/TxId``: the interbank transaction id, unique along the payment's
   whole chain;
4. ``Refs/UETR``: the unique end-to-end transaction reference (v8+);
5. ``Ntry/NtryRef`` qualified by the statement's ``Stmt/Id`` (``Id/NtryRef``):
   the standard makes ``NtryRef`` unique only within its statement, so alone
   it would repeat from one day's file to the next;
6. a reference derived from the entry's own fields (``CAMT-`` and a hash,
   ``common.derived_bank_ref``).

``EndToEndId`` is never the bank reference: the payer sets it, may send the
same one twice, and it is kept as ``end_to_end_ref`` instead.

Batch entries (several ``TxDtls``) become one line per transaction detail,
each with its own amount (``TxDtls/Amt``, or ``AmtDtls/TxAmt/Amt`` in v2),
direction, reference (steps 2-4 above, else the entry's reference with
``:1``, ``:2``...), counterparty and content. Their signed amounts must add up
to the entry's amount, or the file is refused naming the entry. With a single
``TxDtls`` the entry is one line of the entry's own amount.

Content: ``RmtInf/Ustrd`` (all of them, joined by a space); else the
structured remittance references (``Strd/CdtrRefInf/Ref``,
``Strd/RfrdDocInf/Nb``, ``Strd/AddtlRmtInf``); else ``TxDtls/AddtlTxInf``;
else ``Ntry/AddtlNtryInf``.

Amount 0 moves no money: such an entry (or transaction detail) is skipped.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final, NamedTuple
from xml.etree.ElementTree import Element

from bank_adapters.statements.common import (
    BANK_REF_LENGTH_MAX,
    CONTENT_LENGTH_MAX,
    FIELD_LENGTH_MAX,
    check_amount,
    check_bank_ref,
    check_text,
    clip_raw,
    derived_bank_ref,
    parse_whole_vnd,
    to_utc,
    vietnam_day_start_utc,
)
from bank_adapters.types import Direction, StatementFormat, StatementLine, StatementParseError

_FMT: Final = StatementFormat.CAMT053
_SKIPPED_STATUSES: Final = frozenset({"PDNG", "INFO", "FUTR"})
_BOOKED: Final = "BOOK"
_TX_REFERENCES: Final = ("Refs/AcctSvcrRef", "Refs/TxId", "Refs/UETR")
_STRUCTURED_CONTENT: Final = ("CdtrRefInf/Ref", "RfrdDocInf/Nb", "AddtlRmtInf")
TX_DETAILS_MAX: Final = 10_000


class EntryContext(NamedTuple):
    """What an entry's conversion needs from around it."""

    ns: str
    statement_id: str
    where: str
    line: int
    raw: str
    seen: dict[str, int]


def find(element: Element, ns: str, path: str) -> Element | None:
    return element.find("/".join(f"{{{ns}}}{part}" for part in path.split("/")))


def text_at(element: Element, ns: str, path: str) -> str | None:
    found = find(element, ns, path)
    return None if found is None else (found.text or "").strip()


def require_text(element: Element, ns: str, path: str, where: str) -> str:
    value = text_at(element, ns, path)
    if not value:
        raise StatementParseError(_FMT, where, f"{path} missing or empty")
    return value


def amount_at(element: Element, ns: str, path: str, where: str) -> int:
    amount = find(element, ns, path)
    if amount is None:
        raise StatementParseError(_FMT, where, f"{path} missing")
    currency = amount.get("Ccy")
    if currency != "VND":
        raise StatementParseError(_FMT, where, f"{path} currency must be VND, got {currency!r}")
    return parse_whole_vnd(_FMT, f"{where} {path}", (amount.text or "").strip())


def direction_at(element: Element, ns: str, where: str) -> Direction:
    mark = require_text(element, ns, "CdtDbtInd", where)
    if mark not in ("CRDT", "DBIT"):
        raise StatementParseError(_FMT, f"{where} CdtDbtInd", f"must be CRDT or DBIT: {mark!r:.40}")
    return Direction.CREDIT if mark == "CRDT" else Direction.DEBIT


def account_id(element: Element, ns: str, path: str) -> str:
    other = text_at(element, ns, f"{path}/Id/Othr/Id")
    return other or text_at(element, ns, f"{path}/Id/IBAN") or ""


def _booked_at(entry: Element, ns: str, where: str) -> datetime:
    moment = text_at(entry, ns, "BookgDt/DtTm")
    day = text_at(entry, ns, "BookgDt/Dt")
    try:
        if moment:
            return to_utc(datetime.fromisoformat(moment))
        if day:
            return vietnam_day_start_utc(date.fromisoformat(day))
    except (ValueError, OverflowError) as exc:
        raise StatementParseError(_FMT, f"{where} BookgDt", f"bad date or time: {exc}") from None
    raise StatementParseError(_FMT, where, "BookgDt (DtTm or Dt) missing")


def _signed(direction: Direction, amount: int) -> int:
    return amount if direction is Direction.CREDIT else -amount


def entry_lines(entry: Element, ctx: EntryContext) -> list[StatementLine]:
    """The lines of one ``Ntry`` (none for a skipped one); raises
    ``StatementParseError`` naming the entry and element."""
    ns, where = ctx.ns, ctx.where
    status = text_at(entry, ns, "Sts/Cd") or text_at(entry, ns, "Sts") or _BOOKED
    if status in _SKIPPED_STATUSES:
        return []
    if status != _BOOKED:
        raise StatementParseError(
            _FMT, f"{where} Sts", f"unknown entry status {status!r:.40} (expected BOOK)"
        )
    direction = direction_at(entry, ns, where)
    amount_vnd = amount_at(entry, ns, "Amt", where)
    if amount_vnd == 0:
        return []
    check_amount(_FMT, f"{where} Amt", amount_vnd)
    booked_at = _booked_at(entry, ns, where)
    details = entry.findall(f"{{{ns}}}NtryDtls/{{{ns}}}TxDtls")
    if len(details) > TX_DETAILS_MAX:
        raise StatementParseError(_FMT, where, f"more than {TX_DETAILS_MAX} TxDtls")
    if len(details) <= 1:
        tx = details[0] if details else Element("TxDtls")
        ref = (
            text_at(entry, ns, "AcctSvcrRef")
            or _first_text(tx, ns, _TX_REFERENCES)
            or _entry_ref(entry, ctx, booked_at, tx)
        )
        return [_line(entry, tx, ctx, ref, (direction, amount_vnd), booked_at)]
    return _batch(entry, details, ctx, (direction, amount_vnd), booked_at)


def _batch(
    entry: Element,
    details: list[Element],
    ctx: EntryContext,
    booking: tuple[Direction, int],
    booked_at: datetime,
) -> list[StatementLine]:
    ns, where = ctx.ns, ctx.where
    entry_ref = _entry_ref(entry, ctx, booked_at, None)
    lines: list[StatementLine] = []
    total = 0
    for index, tx in enumerate(details, start=1):
        tx_where = f"{where} TxDtls #{index}"
        path = "Amt" if find(tx, ns, "Amt") is not None else "AmtDtls/TxAmt/Amt"
        amount_vnd = amount_at(tx, ns, path, tx_where)
        direction = (
            direction_at(tx, ns, tx_where) if find(tx, ns, "CdtDbtInd") is not None else booking[0]
        )
        total += _signed(direction, amount_vnd)
        if amount_vnd == 0:
            continue
        check_amount(_FMT, f"{tx_where} {path}", amount_vnd)
        ref = _first_text(tx, ns, _TX_REFERENCES) or f"{entry_ref}:{index}"
        lines.append(_line(entry, tx, ctx, ref, (direction, amount_vnd), booked_at, tx_where))
    if total != _signed(*booking):
        raise StatementParseError(
            _FMT,
            f"{where} NtryDtls",
            f"the {len(details)} TxDtls add up to {total} đồng, "
            f"the entry's Amt to {_signed(*booking)}",
        )
    return lines


def _first_text(element: Element, ns: str, paths: tuple[str, ...]) -> str:
    for path in paths:
        value = text_at(element, ns, path)
        if value:
            return value
    return ""


def _entry_ref(entry: Element, ctx: EntryContext, booked_at: datetime, tx: Element | None) -> str:
    ns = ctx.ns
    own = text_at(entry, ns, "AcctSvcrRef")
    if own:
        return own
    entry_ref = text_at(entry, ns, "NtryRef")
    if entry_ref:
        qualified = f"{ctx.statement_id}/{entry_ref}"
        if len(qualified) <= BANK_REF_LENGTH_MAX:
            return qualified
        return derived_bank_ref("CAMT", (ctx.statement_id, entry_ref), ctx.seen)
    parts = [
        booked_at.isoformat(),
        text_at(entry, ns, "CdtDbtInd") or "",
        text_at(entry, ns, "Amt") or "",
        text_at(entry, ns, "AddtlNtryInf") or "",
    ]
    if tx is not None:
        parts += [_content(entry, tx, ns), text_at(tx, ns, "Refs/EndToEndId") or ""]
    return derived_bank_ref("CAMT", parts, ctx.seen)


def _content(entry: Element, tx: Element, ns: str) -> str:
    remittance = [(u.text or "").strip() for u in tx.findall(f"{{{ns}}}RmtInf/{{{ns}}}Ustrd")]
    if not any(remittance):
        remittance = [
            (found.text or "").strip()
            for strd in tx.findall(f"{{{ns}}}RmtInf/{{{ns}}}Strd")
            for path in _STRUCTURED_CONTENT
            for found in strd.findall("/".join(f"{{{ns}}}{p}" for p in path.split("/")))
        ]
    text = " ".join(part for part in remittance if part)
    return text or text_at(tx, ns, "AddtlTxInf") or text_at(entry, ns, "AddtlNtryInf") or ""


def _line(
    entry: Element,
    tx: Element,
    ctx: EntryContext,
    bank_ref: str,
    booking: tuple[Direction, int],
    booked_at: datetime,
    where: str | None = None,
) -> StatementLine:
    ns, where = ctx.ns, where or ctx.where
    direction, amount_vnd = booking
    party = "RltdPties/DbtrAcct" if direction is Direction.CREDIT else "RltdPties/CdtrAcct"
    end_to_end = text_at(tx, ns, "Refs/EndToEndId")
    return StatementLine(
        bank_ref=check_bank_ref(_FMT, f"{where} reference", bank_ref),
        booked_at=booked_at,
        amount_vnd=amount_vnd,
        direction=direction,
        counterparty=check_text(
            _FMT, f"{where} {party}", "counterparty", account_id(tx, ns, party), FIELD_LENGTH_MAX
        ),
        content=check_text(
            _FMT, f"{where} RmtInf", "content", _content(entry, tx, ns), CONTENT_LENGTH_MAX
        ),
        raw=clip_raw(ctx.raw),
        end_to_end_ref=(
            None
            if not end_to_end or end_to_end == "NOTPROVIDED"
            else check_text(_FMT, f"{where} EndToEndId", "EndToEndId", end_to_end, 140)
        ),
        source_line=ctx.line,
    )
