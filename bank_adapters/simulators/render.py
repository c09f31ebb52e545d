"""How the simulated banks write their statements: camt.053, MT940, CSV.

Written independently of the parsers (which are ours, the bank's client):
the round-trip tests render with this module and parse with
``bank_adapters.statements``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from xml.etree import ElementTree as ET

from domain.business_time import VIETNAM_TZ

CAMT_NAMESPACE: Final = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
_MT940_CONTENT_WIDTH: Final = 65


@dataclass(frozen=True, slots=True)
class SimLine:
    """One booking on our collection account as the bank sees it.
    ``direction`` is ``C`` (money in) or ``D`` (money out)."""

    bank_ref: str
    booked_at: datetime
    amount_vnd: int
    direction: str
    counterparty: str
    content: str
    end_to_end_ref: str | None = None


def _signed(line: SimLine) -> int:
    return line.amount_vnd if line.direction == "C" else -line.amount_vnd


def closing_balance(opening_vnd: int, lines: list[SimLine]) -> int:
    return opening_vnd + sum(_signed(line) for line in lines)


# --- camt.053 ---------------------------------------------------------------------


def _sub(parent: ET.Element, path: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = parent
    for part in path.split("/"):
        element = ET.SubElement(element, f"{{{CAMT_NAMESPACE}}}{part}")
    if text is not None:
        element.text = text
    element.attrib.update(attrs)
    return element


def _camt_balance(stmt: ET.Element, code: str, amount_vnd: int, day: date) -> None:
    balance = _sub(stmt, "Bal")
    _sub(balance, "Tp/CdOrPrtry/Cd", code)
    _sub(balance, "Amt", str(abs(amount_vnd)), Ccy="VND")
    _sub(balance, "CdtDbtInd", "CRDT" if amount_vnd >= 0 else "DBIT")
    _sub(balance, "Dt/Dt", day.isoformat())


def _camt_entry(stmt: ET.Element, line: SimLine, number: int) -> None:
    entry = _sub(stmt, "Ntry")
    _sub(entry, "NtryRef", str(number))
    _sub(entry, "Amt", str(line.amount_vnd), Ccy="VND")
    _sub(entry, "CdtDbtInd", "CRDT" if line.direction == "C" else "DBIT")
    _sub(entry, "Sts/Cd", "BOOK")
    booked_local = line.booked_at.astimezone(VIETNAM_TZ)
    _sub(entry, "BookgDt/DtTm", booked_local.isoformat())
    _sub(entry, "ValDt/Dt", booked_local.date().isoformat())
    _sub(entry, "AcctSvcrRef", line.bank_ref)
    domain = _sub(entry, "BkTxCd/Domn")
    _sub(domain, "Cd", "PMNT")
    _sub(domain, "Fmly/Cd", "RDDT" if line.direction == "C" else "ICDT")
    _sub(domain, "Fmly/SubFmlyCd", "ESDD" if line.direction == "C" else "DMCT")
    tx = _sub(entry, "NtryDtls/TxDtls")
    refs = _sub(tx, "Refs")
    _sub(refs, "AcctSvcrRef", line.bank_ref)
    _sub(refs, "EndToEndId", line.end_to_end_ref or "NOTPROVIDED")
    _sub(tx, "Amt", str(line.amount_vnd), Ccy="VND")
    if line.counterparty:
        party = "DbtrAcct" if line.direction == "C" else "CdtrAcct"
        _sub(tx, f"RltdPties/{party}/Id/Othr/Id", line.counterparty)
    if line.content:
        _sub(tx, "RmtInf/Ustrd", line.content)


def render_camt053(
    account: str,
    statement_date: date,
    opening_vnd: int,
    lines: list[SimLine],
    *,
    created_at: datetime,
) -> bytes:
    ET.register_namespace("", CAMT_NAMESPACE)
    document = ET.Element(f"{{{CAMT_NAMESPACE}}}Document")
    message = _sub(document, "BkToCstmrStmt")
    header = _sub(message, "GrpHdr")
    _sub(header, "MsgId", f"STMT-{account}-{statement_date:%Y%m%d}")
    _sub(header, "CreDtTm", created_at.astimezone(VIETNAM_TZ).isoformat())
    stmt = _sub(message, "Stmt")
    _sub(stmt, "Id", f"{account}-{statement_date:%Y%m%d}")
    _sub(stmt, "ElctrncSeqNb", statement_date.strftime("%Y%m%d"))
    _sub(stmt, "CreDtTm", created_at.astimezone(VIETNAM_TZ).isoformat())
    start = datetime.combine(statement_date, time(0), tzinfo=VIETNAM_TZ)
    period = _sub(stmt, "FrToDt")
    _sub(period, "FrDtTm", start.isoformat())
    _sub(period, "ToDtTm", (start + timedelta(days=1) - timedelta(seconds=1)).isoformat())
    statement_account = _sub(stmt, "Acct")
    _sub(statement_account, "Id/Othr/Id", account)
    _sub(statement_account, "Ccy", "VND")
    _camt_balance(stmt, "OPBD", opening_vnd, statement_date)
    _camt_balance(stmt, "CLBD", closing_balance(opening_vnd, lines), statement_date)
    for number, line in enumerate(lines, start=1):
        _camt_entry(stmt, line, number)
    ET.indent(document)
    data: bytes = ET.tostring(document, encoding="utf-8", xml_declaration=True)
    return data


# --- MT940 ------------------------------------------------------------------------


def _mt940_amount(amount_vnd: int) -> str:
    return f"{abs(amount_vnd)},"


def _mt940_balance(tag: str, amount_vnd: int, day: date) -> str:
    mark = "C" if amount_vnd >= 0 else "D"
    return f":{tag}:{mark}{day:%y%m%d}VND{_mt940_amount(amount_vnd)}"


def render_mt940(
    account: str,
    statement_date: date,
    opening_vnd: int,
    lines: list[SimLine],
) -> bytes:
    out = [
        f":20:STMT{statement_date:%y%m%d}",
        f":25:{account}",
        f":28C:{statement_date.timetuple().tm_yday:05d}/1",
        _mt940_balance("60F", opening_vnd, statement_date),
    ]
    for line in lines:
        booked = line.booked_at.astimezone(VIETNAM_TZ).date()
        out.append(
            f":61:{booked:%y%m%d}{booked:%m%d}{line.direction}{_mt940_amount(line.amount_vnd)}"
            f"NTRFNONREF//{line.bank_ref}"
        )
        if line.counterparty:
            out.append(line.counterparty[:34])
        if line.content:
            chunks = [
                line.content[i : i + _MT940_CONTENT_WIDTH]
                for i in range(0, len(line.content), _MT940_CONTENT_WIDTH)
            ]
            out.append(f":86:{chunks[0]}")
            out.extend(chunks[1:6])
    out.append(_mt940_balance("62F", closing_balance(opening_vnd, lines), statement_date))
    out.append(_mt940_balance("64", closing_balance(opening_vnd, lines), statement_date))
    out.append("-")
    return ("\r\n".join(out) + "\r\n").encode("utf-8")


# --- CSV --------------------------------------------------------------------------

CSV_COLUMNS: Final = ("bank_ref", "booked_at", "direction", "amount_vnd", "counterparty", "content")


def render_csv(lines: list[SimLine]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in lines:
        writer.writerow(
            [
                line.bank_ref,
                line.booked_at.astimezone(VIETNAM_TZ).isoformat(),
                line.direction,
                str(line.amount_vnd),
                line.counterparty,
                line.content,
            ]
        )
    return buffer.getvalue().encode("utf-8")


def day_bounds_utc(statement_date: date) -> tuple[datetime, datetime]:
    start = datetime.combine(statement_date, time(0), tzinfo=VIETNAM_TZ).astimezone(UTC)
    return start, start + timedelta(days=1)
