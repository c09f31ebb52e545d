"""Settings for a CLI command: read once, refused with a clean message.

A refused setting (a published or short secret in production, a malformed
value) stops the command with the problem named and nothing else: pydantic's
own message would echo the offending input, secrets included.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click
from pydantic import ValidationError

from reconciler.logs import configure_logging
from reconciler.settings import Settings


def describe(err: ValidationError) -> str:
    lines = []
    for error in err.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"RECONCILER_{where.upper()}: {message}" if where else message)
    return "settings refused:\n  " + "\n  ".join(lines)


def load_settings() -> Settings:
    try:
        settings = Settings()
    except ValidationError as err:
        raise click.ClickException(describe(err)) from None
    configure_logging(settings.log_level, settings.log_format)
    return settings


@contextlib.contextmanager
def refused_at_start() -> Iterator[None]:
    """A service that cannot start for want of a key or a certificate says
    which, in one line, instead of a traceback."""
    from ledger.receipts.signing import SigningKeyError
    from reconciler.wiring import TemporalTLSError

    try:
        yield
    except (SigningKeyError, TemporalTLSError) as err:
        raise click.ClickException(str(err)) from None
