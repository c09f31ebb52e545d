"""One row mapper per table: a frozen dataclass whose fields are named as the
columns of a query's result, built from any row that has them.

Instead of restating every column once in a ``select`` and again in a
hand-written ``Row(id=row.id, ...)``, a module declares its dataclass and
gets its mapper from here; a column the dataclass does not name is ignored,
a field the row lacks is a programmer's error (``KeyError`` naming it)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class _HasMapping(Protocol):
    @property
    def _mapping(self) -> Mapping[str, Any]: ...


def row_mapper(cls: type[T]) -> Callable[[_HasMapping], T]:
    """``cls(**{field: row[field] ...})`` for every field of the dataclass
    ``cls``; the field list is read once, here, not on every row."""
    assert dataclasses.is_dataclass(cls), f"{cls!r} is not a dataclass"
    names = tuple(f.name for f in dataclasses.fields(cls))

    def build(row: _HasMapping) -> T:
        mapping = row._mapping
        try:
            return cls(**{name: mapping[name] for name in names})
        except KeyError as err:
            raise KeyError(f"{cls.__name__}: the row has no column {err.args[0]!r}") from None

    build.__name__ = f"{cls.__name__.lower()}_from_row"
    return build


def field_names(cls: type[object]) -> tuple[str, ...]:
    """The dataclass's field names: the columns a query must select for it."""
    assert dataclasses.is_dataclass(cls), f"{cls!r} is not a dataclass"
    return tuple(f.name for f in dataclasses.fields(cls))
