"""One row mapper per table: a frozen dataclass whose fields are named as the
columns of a query's result, built from any row that has them.

Instead of restating every column once in a ``select`` and again in a
hand-written ``Row(id=row.id, ...)``, a module declares its dataclass, selects
``columns(Dataclass, table)`` and maps the rows with ``row_mapper(Dataclass)``;
a column the dataclass does not name is ignored, a field the row lacks is a
programmer's error (``KeyError`` naming it).

Rows are read by attribute, so the same mapper serves SQLAlchemy rows and the
driver's named tuples (the API's hot reads run compiled SQL on psycopg).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Executable, FromClause
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core.errors import NotFoundError

T = TypeVar("T")


def field_names(cls: type[object]) -> tuple[str, ...]:
    """The dataclass's field names: the columns a query must select for it."""
    assert dataclasses.is_dataclass(cls), f"{cls!r} is not a dataclass"
    return tuple(f.name for f in dataclasses.fields(cls))


def row_mapper(cls: type[T], *, prefix: str = "") -> Callable[[Any], T]:
    """``cls(row.<prefix><field>, ...)`` for every field of the dataclass
    ``cls``, in field order; the field list is read once, here, not on every
    row. ``prefix`` reads one dataclass out of a wider row whose columns were
    selected with the same prefix (``columns(..., prefix=...)``)."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    assert all(f.init and not f.kw_only for f in fields), f"{cls!r} has fields set otherwise"
    names = tuple(prefix + f.name for f in fields)
    values_of = attrgetter(*names)
    single = len(names) == 1

    def build(row: Any) -> T:
        try:
            values = values_of(row)
        except AttributeError:
            missing = next(name for name in names if not hasattr(row, name))
            raise KeyError(f"{cls.__name__}: the row has no column {missing!r}") from None
        return cls(*((values,) if single else values))

    build.__name__ = f"{cls.__name__.lower()}_from_row"
    return build


def columns(
    cls: type[object],
    table: FromClause,
    *,
    prefix: str = "",
    **elsewhere: ColumnElement[Any],
) -> tuple[ColumnElement[Any], ...]:
    """The select list of ``cls``: each field is ``table``'s column of that
    name, unless ``elsewhere`` gives its expression (a joined table's column,
    another name); each is labelled ``prefix + field`` where that differs
    from its own name."""
    names = field_names(cls)
    unknown = sorted(set(elsewhere) - set(names))
    assert not unknown, f"{cls.__name__} has no field {unknown[0]!r}"
    selected: list[ColumnElement[Any]] = []
    for name in names:
        column = elsewhere[name] if name in elsewhere else table.c[name]
        label = prefix + name
        selected.append(column if getattr(column, "name", None) == label else column.label(label))
    return tuple(selected)


async def one_row(
    conn: AsyncConnection,
    query: Executable,
    build: Callable[[Any], T],
    missing: str,
    params: Mapping[str, Any] | None = None,
) -> T:
    """The one row ``query`` finds, built; ``NotFoundError(missing)`` when
    there is none (more than one is a programmer's error)."""
    row = (await conn.execute(query, params)).one_or_none()
    if row is None:
        raise NotFoundError(missing)
    return build(row)
