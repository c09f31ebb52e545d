"""Keyset paging of the ledger's lists (approvals, disputes): oldest first by
id, a bounded page from the id after which the caller left off."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, TypeVar

from sqlalchemy import ColumnElement, Select

LIST_LIMIT_MAX: Final = 500

S = TypeVar("S", bound=Select[Any])


def keyset_page(
    query: S,
    id_column: ColumnElement[int],
    *,
    after_id: int,
    limit: int,
    filters: Iterable[tuple[ColumnElement[Any], object]] = (),
) -> S:
    """``query`` narrowed to the rows whose ``id_column`` is past
    ``after_id``, ``limit`` of them (checked by the caller with
    ``check_limit(limit, LIST_LIMIT_MAX)``, before its other arguments),
    oldest first; each ``(column, value)`` filter whose value is given (not
    None) must match."""
    assert 1 <= limit <= LIST_LIMIT_MAX, limit
    for column, value in filters:
        if value is not None:
            query = query.where(column == value)
    return query.where(id_column > after_id).order_by(id_column).limit(limit)
