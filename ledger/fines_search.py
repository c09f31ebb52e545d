"""Fines found by plate and by the violator's name, unit-scoped in SQL.

A plate is typed any way (``51f-123.45``, ``51F 12345``): its key is its
capital letters and digits (``plate_key``). A name is typed without caring
for case or diacritics (``nguyen van a`` finds ``Nguyễn Văn A``): its key is
``fold_name``. Both keys are stored, generated columns of ``fines``
(migration 0014, whose SQL ``fine_search_fold`` uses the same table as
``fold_name``); a search is a prefix of a key, read as a range of the key's
index (``key >= prefix AND key < prefix || U+10FFFF``: both bounds are plain
parameters, so the index serves it in a prepared statement too, which a
``LIKE $1 || '%'`` does not promise).

Pages run in key order: ``(plate_key, id)`` when a plate is given, else
``(name_key, id)`` when a name is, else ``id``; a page's cursor is the id of
its last fine, whose key the next page reads back in SQL. A cursor naming a
fine outside the caller's units only places the page: the unit condition is
part of the query, never a filter of rows after they were read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, and_, case, exists, not_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core import tables as t
from ledger.core.errors import ValidationError
from ledger.core.rows import columns, row_mapper
from ledger.fines import FineStatus
from ledger.payments.model import LIVE_STATUSES

SEARCH_LIMIT_MAX: Final = 200
# Longer than any plate or name a fine holds (``ledger.fines.TEXT_FIELD_MAX_CHARS``).
SEARCH_CHARS_MAX: Final = 200

# Every Latin letter with marks (U+00C0-U+024F, U+1E00-U+1EFF) whose base is
# an ASCII letter, and Đ/đ, to that letter in lower case. Migration 0014
# holds a copy (tests/unit/ledger/test_fines_search.py checks they agree).
FOLD_FROM = (
    "ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆ"
    "ćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐő"
    "ŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛ"
    "ǜǞǟǠǡǦǧǨǩǪǫǬǭǰǴǵǸǹǺǻȀȁȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮȯ"
    "ȰȱȲȳḀḁḂḃḄḅḆḇḈḉḊḋḌḍḎḏḐḑḒḓḔḕḖḗḘḙḚḛḜḝḞḟḠḡḢḣḤḥḦḧḨḩḪḫḬḭḮḯḰḱḲḳḴḵḶḷ"
    "ḸḹḺḻḼḽḾḿṀṁṂṃṄṅṆṇṈṉṊṋṌṍṎṏṐṑṒṓṔṕṖṗṘṙṚṛṜṝṞṟṠṡṢṣṤṥṦṧṨṩṪṫṬṭṮṯṰṱṲṳ"
    "ṴṵṶṷṸṹṺṻṼṽṾṿẀẁẂẃẄẅẆẇẈẉẊẋẌẍẎẏẐẑẒẓẔẕẖẗẘẙẠạẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵ"
    "ẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰự"
    "ỲỳỴỵỶỷỸỹĐđ"
)
FOLD_TO = (
    "aaaaaaceeeeiiiinooooouuuuyaaaaaaceeeeiiiinooooouuuuyyaaaaaac"
    "cccccccddeeeeeeeeeegggggggghhiiiiiiiiijjkkllllllnnnnnnoooooo"
    "rrrrrrssssssssttttuuuuuuuuuuuuwwyyyzzzzzzoouuaaiioouuuuuuuuu"
    "uaaaaggkkoooojggnnaaaaaaeeeeiiiioooorrrruuuusstthhaaeeoooooo"
    "ooyyaabbbbbbccddddddddddeeeeeeeeeeffgghhhhhhhhhhiiiikkkkkkll"
    "llllllmmmmmmnnnnnnnnoooooooopppprrrrrrrrssssssssssttttttttuu"
    "uuuuuuuuvvvvwwwwwwwwwwxxxxyyzzzzzzhtwyaaaaaaaaaaaaaaaaaaaaaa"
    "aaeeeeeeeeeeeeeeeeiiiioooooooooooooooooooooooouuuuuuuuuuuuuu"
    "yyyyyyyydd"
)
_COMBINING: Final = "".join(chr(c) for c in range(0x0300, 0x0370))
_FOLD: Final = str.maketrans(
    FOLD_FROM + "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    FOLD_TO + "abcdefghijklmnopqrstuvwxyz",
    _COMBINING,
)
_SPACES: Final = re.compile(" +")
_NOT_PLATE: Final = re.compile(r"[^0-9A-Za-z]+", re.ASCII)
# Above every character a key can hold: the end of a prefix's range.
_KEY_END: Final = "\U0010ffff"


def fold_name(raw: str) -> str:
    """A name as ``fines.name_key`` holds it (``fine_search_fold`` in SQL)."""
    return _SPACES.sub(" ", raw.translate(_FOLD)).strip(" ")


def plate_key(raw: str) -> str:
    """A plate as ``fines.plate_key`` holds it."""
    return _NOT_PLATE.sub("", raw).upper()


def _prefix(field: str, raw: str | None, key: Any) -> str | None:
    if raw is None:
        return None
    if len(raw) > SEARCH_CHARS_MAX:
        raise ValidationError(field, f"is longer than {SEARCH_CHARS_MAX} characters")
    value = key(raw)
    if not value:
        raise ValidationError(field, "has no letter or digit to search for")
    return str(value)


@dataclass(frozen=True)
class FineSearch:
    """What to find: prefixes of keys (as typed: they are folded here), a
    fine status (``FineStatus``) and an issuing unit, all optional."""

    plate: str | None = None
    name: str | None = None
    status: str | None = None
    unit: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "plate", _prefix("plate", self.plate, plate_key))
        object.__setattr__(self, "name", _prefix("name", self.name, fold_name))
        statuses = tuple(s.value for s in FineStatus)
        if self.status is not None and self.status not in statuses:
            raise ValidationError("status", f"must be one of: {', '.join(statuses)}")
        if self.unit is not None and len(self.unit) > SEARCH_CHARS_MAX:
            raise ValidationError("unit", f"is longer than {SEARCH_CHARS_MAX} characters")


@dataclass(frozen=True)
class FineRow:
    """A fine as a search lists it."""

    id: int
    decision_number: str
    amount_vnd: int
    violator_name: str
    plate: str
    issuing_unit: str
    violation: str
    created_at: datetime
    cancelled_at: datetime | None
    status: str


_f = t.fines
_p = t.payments
_SETTLED: Final = exists().where(_p.c.fine_id == _f.c.id, _p.c.settles_fine)
_LIVE: Final = exists().where(
    _p.c.fine_id == _f.c.id, _p.c.status.in_([s.value for s in LIVE_STATUSES])
)
# As ``ledger.fines.FINE_STATUS_SQL`` says it, per fine of the page.
_STATUS: Final = case(
    (_SETTLED, FineStatus.PAID.value),
    (_LIVE, FineStatus.VERIFYING.value),
    else_=FineStatus.UNPAID.value,
)
_STATUS_IS: Final[dict[str, ColumnElement[bool]]] = {
    FineStatus.PAID.value: _SETTLED,
    FineStatus.VERIFYING.value: and_(not_(_SETTLED), _LIVE),
    FineStatus.UNPAID.value: and_(not_(_SETTLED), not_(_LIVE)),
}
_COLUMNS: Final = columns(FineRow, _f, status=_STATUS.label("status"))
_row: Final = row_mapper(FineRow)


def _order_key(search: FineSearch) -> ColumnElement[str] | None:
    if search.plate is not None:
        return _f.c.plate_key
    if search.name is not None:
        return _f.c.name_key
    return None


async def search_fines(
    conn: AsyncConnection,
    search: FineSearch,
    *,
    units: Sequence[str],
    after_id: int | None,
    limit: int,
) -> list[FineRow]:
    """Fines matching ``search`` in the caller's ``units`` (empty: every
    unit), in key order after the fine ``after_id``, ``limit`` of them."""
    assert 1 <= limit <= SEARCH_LIMIT_MAX, limit
    query = select(*_COLUMNS)
    for column, prefix in ((_f.c.plate_key, search.plate), (_f.c.name_key, search.name)):
        if prefix is not None:
            query = query.where(column >= prefix, column < prefix + _KEY_END)
    if search.unit is not None:
        query = query.where(_f.c.issuing_unit == search.unit)
    if units:
        query = query.where(_f.c.issuing_unit.in_(list(units)))
    if search.status is not None:
        query = query.where(_STATUS_IS[search.status])
    key = _order_key(search)
    if key is None:
        if after_id is not None:
            query = query.where(_f.c.id > after_id)
        query = query.order_by(_f.c.id)
    else:
        if after_id is not None:
            after_key = select(key).where(_f.c.id == after_id).scalar_subquery()
            query = query.where(tuple_(key, _f.c.id) > tuple_(after_key, after_id))
        query = query.order_by(key, _f.c.id)
    return [_row(r) for r in (await conn.execute(query.limit(limit))).all()]


__all__ = [
    "SEARCH_LIMIT_MAX",
    "FineRow",
    "FineSearch",
    "fold_name",
    "plate_key",
    "search_fines",
]
