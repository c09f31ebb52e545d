"""Point-in-time restore: ``reconciler backup --base`` and ``reconciler
restore --base``.

A base backup is ``pg_basebackup`` (tar or plain, WAL streamed into it, so
it is complete on its own) written to ``DIR.partial`` and renamed once
complete, with ``DIR.json`` beside it: the server's time and WAL position at
the backup's end, and the size and SHA-256 of every file. It needs a server
that archives its WAL (``archive_mode``: the embedded stack archives into
``<data dir>/wal-archive``, the compose one into its ``postgres-wal-archive``
volume), or nothing after the backup could ever be recovered: refused.

A restore never touches the live data directory. It unpacks the base backup
into ``INTO.partial``, writes ``recovery.signal``, and runs a temporary
PostgreSQL on it (loopback, a free port) with ``restore_command`` reading the
archive and the recovery target (a time, an LSN, or the end of the archive);
the server replays the WAL up to the target and promotes. Only then is the
directory renamed to ``INTO``; the operator swaps it in with the stack
stopped (docs/runbook.md). Refused before anything is written: a backup that
does not match its manifest, a target before the backup's end (the backup
cannot go back in time), a target in the future; refused after the replay,
``INTO`` never appearing: a target beyond the end of the archive (PostgreSQL
stops with "recovery ended before configured recovery target was reached").
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import tarfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

import click
import psycopg

from reconciler.cli.backup import BackupError, conninfo, libpq, pg_tool, run_tool, sha256_file

RECOVERY_TIMEOUT_SECONDS: Final = 3600
_LSN: Final = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")
_BEYOND_ARCHIVE: Final = "recovery ended before configured recovery target was reached"

Format = Literal["tar", "plain"]


@dataclass(frozen=True)
class BaseManifest:
    created_at: str
    end_time: str
    start_lsn: str
    end_lsn: str
    timeline: int
    format: Format
    # relative path -> [size in bytes, SHA-256]
    files: dict[str, list[str | int]]


@dataclass(frozen=True)
class Target:
    """Where to stop replaying: a time, an LSN, or (neither) the archive's end;
    on which timeline: ``latest`` (the newest in the archive: after an
    earlier point-in-time restore, the restored history), ``current`` (the
    base backup's), or a number."""

    time: datetime | None = None
    lsn: str | None = None
    timeline: str = "latest"

    def describe(self) -> str:
        if self.time is not None:
            where = f"time {self.time.isoformat()}"
        else:
            where = f"LSN {self.lsn}" if self.lsn is not None else "the end of the archive"
        return where if self.timeline == "latest" else f"{where} on timeline {self.timeline}"


def parse_lsn(text: str) -> int:
    """An LSN as PostgreSQL writes it (``16/B374D848``), as a number."""
    match = _LSN.fullmatch(text.strip())
    if match is None:
        raise BackupError(f"LSN {text!r}: expected two hex numbers, like 0/3000060")
    return (int(match[1], 16) << 32) | int(match[2], 16)


def parse_timeline(text: str) -> str:
    """``latest``, ``current`` or a timeline number, as PostgreSQL takes it."""
    value = text.strip().lower()
    if value in ("latest", "current") or (
        value.isascii() and value.isdigit() and 0 < int(value) < 1 << 32
    ):
        return value if not value.isdigit() else str(int(value))
    raise BackupError(f"--timeline {text!r}: expected latest, current or a timeline number")


def parse_time(text: str) -> datetime:
    """A target time; it must say its offset (an operator in Hà Nội and a
    server in UTC would otherwise disagree by seven hours)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as err:
        raise BackupError(
            f"--to-time {text!r}: expected ISO 8601, like 2026-12-04T03:00:00+07:00"
        ) from err
    if value.tzinfo is None:
        raise BackupError(f"--to-time {text!r} has no offset: add one, like +07:00")
    return value


def check_target(target: Target, manifest: BaseManifest, now: datetime) -> None:
    """Refuse a target this backup and archive cannot reach, before any work."""
    if target.time is not None:
        end = datetime.fromisoformat(manifest.end_time)
        if target.time < end:
            raise BackupError(
                f"target {target.describe()} is before the base backup's end "
                f"({end.isoformat()}): use an older base backup"
            )
        if target.time > now:
            raise BackupError(
                f"target {target.describe()} is in the future: the archive cannot reach it"
            )
    if target.lsn is not None and parse_lsn(target.lsn) < parse_lsn(manifest.end_lsn):
        raise BackupError(
            f"target {target.describe()} is before the base backup's end "
            f"(LSN {manifest.end_lsn}): use an older base backup"
        )


def recovery_settings(target: Target, archive: Path) -> dict[str, str]:
    """The temporary server's recovery settings (command-line ``-c``, so
    nothing of them stays in the restored cluster's configuration)."""
    settings = {
        "restore_command": f'cp {shlex.quote(str(archive))}/"%f" "%p"',
        "recovery_target_action": "promote",
        "recovery_target_timeline": target.timeline,
    }
    if target.time is not None:
        settings["recovery_target_time"] = target.time.isoformat(sep=" ")
    elif target.lsn is not None:
        settings["recovery_target_lsn"] = target.lsn
    return settings


def file_list(root: Path) -> dict[str, list[str | int]]:
    return {
        str(p.relative_to(root)): [p.stat().st_size, sha256_file(p)]
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def base_manifest_path(backup: Path) -> Path:
    return backup.with_name(backup.name + ".json")


def _server_state(database_url: str) -> tuple[str, str]:
    with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('archive_mode'), now()").fetchone()
    assert row is not None  # one row, always
    return str(row[0]), row[1].isoformat()


def base_backup(database_url: str, out: Path, fmt: Format = "tar") -> BaseManifest:
    """A base backup of the whole cluster into the directory ``out`` (and its
    manifest); nothing at ``out`` until it is complete."""
    env, _ = libpq(database_url)
    if out.exists() or base_manifest_path(out).exists():
        raise BackupError(f"{out} exists: choose another directory")
    archive_mode, _ = _server_state(database_url)
    if archive_mode == "off":
        raise BackupError(
            "the server does not archive its WAL (archive_mode=off): a base backup "
            "could restore nothing after itself; see docs/runbook.md"
        )
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.parent.mkdir(parents=True, exist_ok=True)
    try:
        run_tool(
            [
                pg_tool("pg_basebackup"),
                f"--pgdata={partial}",
                f"--format={'t' if fmt == 'tar' else 'p'}",
                "--wal-method=stream",
                "--checkpoint=fast",
                "--no-password",
            ],
            env,
        )
        _, end_time = _server_state(database_url)  # the server's clock, not ours
        ranges = json.loads((partial / "backup_manifest").read_text())["WAL-Ranges"]
        manifest = BaseManifest(
            created_at=datetime.now(UTC).isoformat(),
            end_time=end_time,
            start_lsn=ranges[0]["Start-LSN"],
            end_lsn=ranges[-1]["End-LSN"],
            timeline=int(ranges[-1]["Timeline"]),
            format=fmt,
            files=file_list(partial),
        )
        base_manifest_path(out).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
        partial.rename(out)
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    return manifest


def check_base(backup: Path) -> BaseManifest:
    """The base backup's manifest, if every file is exactly what it lists
    (and there is no other file)."""
    path = base_manifest_path(backup)
    try:
        manifest = BaseManifest(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as err:
        raise BackupError(f"{path}: no readable manifest ({err})") from err
    if not backup.is_dir():
        raise BackupError(f"{backup} is not a base backup directory")
    if manifest.format not in ("tar", "plain"):
        raise BackupError(f"{path}: unknown format {manifest.format!r}")
    if file_list(backup) != manifest.files:
        raise BackupError(f"{backup} does not match its manifest (changed or truncated): refused")
    return manifest


def _unpack(backup: Path, manifest: BaseManifest, work: Path) -> None:
    if manifest.format == "plain":
        shutil.copytree(backup, work, symlinks=True)
        return
    work.mkdir(mode=0o700)
    for name, into in (("base.tar", work), ("pg_wal.tar", work / "pg_wal")):
        try:
            with tarfile.open(backup / name) as tar:
                # The data filter refuses absolute paths, "..", links out, devices.
                tar.extractall(into, filter="data")
        except (tarfile.TarError, OSError) as err:
            raise BackupError(f"{backup / name}: cannot be unpacked safely ({err})") from err
    (work / "backup_manifest").unlink(missing_ok=True)


def _recover(work: Path, target: Target, archive: Path, log: Path) -> str:
    """Replay into ``work`` up to ``target``; the LSN where the new timeline
    begins."""
    from reconciler.devstack.postgres import EmbeddedPostgres
    from reconciler.devstack.process import ComponentFailedError

    # Not durable while replaying: a crash loses only ``work``, deleted anyway,
    # and PostgreSQL then skips its fsync of every file at the start of
    # recovery (seconds); the caller syncs the finished directory instead.
    # Archiving into the same archive: the promotion's new timeline history
    # goes there, so the next restore picks a newer timeline instead of
    # reusing this one's (whose segments the archive would then refuse).
    server = EmbeddedPostgres(
        work,
        log,
        database="postgres",
        durable=False,
        settings=recovery_settings(target, archive),
        wal_archive=archive,
    )
    server_url = server.info.libpq_url("postgres")

    def promoted() -> bool:
        with psycopg.connect(server_url, autocommit=True) as conn:
            row = conn.execute("SELECT NOT pg_is_in_recovery()").fetchone()
        return bool(row and row[0])

    try:
        server.start(RECOVERY_TIMEOUT_SECONDS)
        server.wait_until(promoted, RECOVERY_TIMEOUT_SECONDS, f"recovered to {target.describe()}")
        with psycopg.connect(server_url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        return str(row[0]) if row else "?"
    except ComponentFailedError as err:
        text = log.read_text(errors="replace") if log.exists() else ""
        if _BEYOND_ARCHIVE in text:
            raise BackupError(
                f"target {target.describe()} is beyond the end of the WAL archive "
                f"{archive}: nothing restored (log: {log})"
            ) from err
        raise BackupError(f"recovery failed, nothing restored: {err}") from err
    finally:
        server.stop()


def restore_base(backup: Path, target: Target, archive: Path, into: Path) -> tuple[str, Path]:
    """Build a recovered data directory at ``into`` from ``backup`` and the
    WAL ``archive``; the LSN it ends at and the recovery's log."""
    from reconciler.devstack.postgres import own_data_dir

    manifest = check_base(backup)
    check_target(target, manifest, datetime.now(UTC))
    if not archive.is_dir():
        raise BackupError(f"WAL archive {archive} is not a directory")
    into = into.resolve()
    work = into.with_name(into.name + ".partial")
    log = into.with_name(into.name + ".recovery.log")
    for path in (into, work):
        if path.exists():
            raise BackupError(f"{path} exists: choose another --into (never overwritten)")
    log.unlink(missing_ok=True)
    try:
        _unpack(backup, manifest, work)
        (work / "recovery.signal").touch()
        own_data_dir(work)
        lsn = _recover(work, target, archive.resolve(), log)
        os.sync()
        work.rename(into)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return lsn, log


def restore_base_command(
    base: Path,
    to_time: str | None,
    to_lsn: str | None,
    to_latest: bool,
    archive: Path | None,
    into: Path | None,
    timeline: str = "latest",
) -> None:
    """``reconciler restore --base``: check the options, restore, say what next."""
    if [to_time is not None, to_lsn is not None, to_latest].count(True) != 1:
        raise click.UsageError("with --base give exactly one of --to-time, --to-lsn, --to-latest")
    if archive is None or into is None:
        raise click.UsageError("with --base give --archive (the WAL archive) and --into")
    if to_lsn is not None:
        parse_lsn(to_lsn)
    target = Target(
        time=parse_time(to_time) if to_time else None,
        lsn=to_lsn,
        timeline=parse_timeline(timeline),
    )
    lsn, log = restore_base(base, target, archive, into)
    click.echo(
        f"recovered {base} to {target.describe()} in {into} (new timeline from LSN {lsn}; "
        f"log {log}). The live data directory is untouched: stop the stack, move it "
        f"aside, move {into} into its place, start the stack (docs/runbook.md)."
    )
