"""SQL text assembled from named placeholders, every one checked.

A few statements of the load differ by the rules in force or by the path a
load takes (which temporary table holds the statement, which payments are
looked up, which session setting is set). Each is written once, as a
template with ``{name}`` placeholders, and filled by ``fill``, which checks
that the template's placeholders and the values given are the same names
(none missing, none extra) and that every value is SQL this code wrote: an
``Sql`` fragment, an identifier that matches ``IDENTIFIER``, or a literal of
our own constants. A failed check is a programmer's error
(``AssertionError``): nothing that came from outside reaches a template.
Values go in by one pass over the template, so a value's own text is never
read for placeholders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

PLACEHOLDER: Final = re.compile(r"\{([a-z][a-z0-9_]*)\}")
IDENTIFIER: Final = re.compile(r"[a-z_][a-z0-9_]*")
# What a literal of ours may hold: no quote or backslash to escape.
_LITERAL: Final = re.compile(r"[^'\\]*")


@dataclass(frozen=True)
class Sql:
    """A fragment of SQL written by this code, never built from input."""

    text: str


EMPTY: Final = Sql("")


def identifier(name: str) -> Sql:
    """A table or column name of ours."""
    assert IDENTIFIER.fullmatch(name), f"not an identifier: {name!r}"
    return Sql(name)


def literal(value: str) -> Sql:
    """One of our constants as a SQL string literal."""
    assert _LITERAL.fullmatch(value), f"not a plain constant: {value!r}"
    return Sql(f"'{value}'")


def fill(template: str, **values: Sql) -> str:
    """``template`` with every ``{name}`` replaced by ``values[name]``. A
    placeholder may stand in several places; it takes one value."""
    wanted = set(PLACEHOLDER.findall(template))
    assert wanted == set(values), (
        f"the template's placeholders {sorted(wanted)} are not the values given {sorted(values)}"
    )
    for name, value in values.items():
        assert isinstance(value, Sql), f"{{{name}}}: not SQL of ours: {value!r}"
    return PLACEHOLDER.sub(lambda found: values[found.group(1)].text, template)
