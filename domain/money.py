"""Money: an integer number of đồng (VND has no minor unit), never a float."""

from __future__ import annotations

from typing import Final

# Far above any fine or statement total (a quadrillion đồng), far below
# PostgreSQL's bigint and the sums of a year of postings: a bound that catches
# a unit mix-up (a typed amount in xu or with a decimal point) without ever
# refusing a real one.
AMOUNT_VND_MAX: Final = 10**15


def is_amount_vnd(value: object) -> bool:
    """A positive whole number of đồng within the bound. ``bool`` is an
    ``int`` subclass; ``True`` đồng is a bug, not an amount."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= AMOUNT_VND_MAX
