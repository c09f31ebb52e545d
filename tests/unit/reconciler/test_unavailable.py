"""Which failures are an outage (503, retry) and which are not."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors as pg_errors
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from temporalio.service import RPCError, RPCStatusCode

from reconciler.api.unavailable import database_unavailable, temporal_unavailable


def _wrapped(orig: BaseException, invalidated: bool = False) -> OperationalError:
    return OperationalError("SELECT 1", {}, orig, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "err",
    [
        _wrapped(psycopg.OperationalError("connection refused")),  # no SQLSTATE
        _wrapped(pg_errors.AdminShutdown()),
        _wrapped(pg_errors.CannotConnectNow()),
        _wrapped(pg_errors.ConnectionFailure()),
        _wrapped(pg_errors.SerializationFailure(), invalidated=True),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        PoolTimeoutError("QueuePool limit reached"),
    ],
)
def test_unreachable_database_is_an_outage(err: BaseException) -> None:
    assert database_unavailable(err)


@pytest.mark.parametrize(
    "err",
    [
        # Refused statements: the database is there and said no.
        _wrapped(pg_errors.SerializationFailure()),
        _wrapped(pg_errors.QueryCanceled()),
        _wrapped(pg_errors.DeadlockDetected()),
        IntegrityError("INSERT", {}, pg_errors.UniqueViolation()),
        ValueError("not a database error"),
    ],
)
def test_a_refused_statement_is_not_an_outage(err: BaseException) -> None:
    assert not database_unavailable(err)


def test_only_an_unreachable_temporal_is_an_outage() -> None:
    assert temporal_unavailable(RPCError("down", RPCStatusCode.UNAVAILABLE, b""))
    # A frontend too slow to answer within the call's deadline: try again too.
    assert temporal_unavailable(RPCError("slow", RPCStatusCode.DEADLINE_EXCEEDED, b""))
    assert not temporal_unavailable(RPCError("exists", RPCStatusCode.ALREADY_EXISTS, b""))
    assert not temporal_unavailable(OSError("not an RPC"))
