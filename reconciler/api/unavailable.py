"""Which failures mean "a part we depend on is down": a 503 the client may
retry (with ``Retry-After``), not a 500 that looks like a bug.

Only failures to reach the part count. A statement the database refused
(a constraint, a serialization failure, a timeout of ours) is not an
outage, and stays whatever it was.
"""

from __future__ import annotations

from typing import Final

import psycopg
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from temporalio.service import RPCError, RPCStatusCode

# How long a client should wait before trying again: about what a restart
# of PostgreSQL or Temporal by a supervisor takes.
RETRY_AFTER_SECONDS: Final = 5
# SQLSTATEs of a server that is going away or not yet accepting:
# admin_shutdown, crash_shutdown, cannot_connect_now. Class 08 is
# "connection exception".
_UNAVAILABLE_SQLSTATES: Final = frozenset({"57P01", "57P02", "57P03"})
# Temporal's frontend unreachable, or not answering within the call's
# deadline (a server overloaded or restarting): either way, try again later.
_UNAVAILABLE_RPC: Final = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED})


def _psycopg_unreachable(err: BaseException | None) -> bool:
    if isinstance(err, psycopg.InterfaceError):
        return True  # "the connection is closed" and the like
    if not isinstance(err, psycopg.OperationalError):
        return False
    state = err.sqlstate
    # No SQLSTATE: the client could not connect or lost the connection.
    return state is None or state.startswith("08") or state in _UNAVAILABLE_SQLSTATES


def database_unavailable(err: BaseException) -> bool:
    """True when ``err`` says PostgreSQL cannot be reached (or no pooled
    connection could be had in time)."""
    if isinstance(err, PoolTimeoutError | InterfaceError):
        return True
    if isinstance(err, DBAPIError):
        return err.connection_invalidated or _psycopg_unreachable(err.orig)
    return _psycopg_unreachable(err)


def temporal_unavailable(err: BaseException) -> bool:
    """True when ``err`` says the Temporal frontend cannot be reached."""
    return isinstance(err, RPCError) and err.status in _UNAVAILABLE_RPC
