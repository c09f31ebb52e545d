"""Point-in-time restore, the pure parts: the WAL archive command never
overwrites a segment and never leaves half of one; a target the backup
cannot reach is refused before any work."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.cli.backup import BackupError
from reconciler.cli.pitr import (
    BaseManifest,
    Target,
    base_manifest_path,
    check_target,
    file_list,
    parse_lsn,
    parse_time,
    parse_timeline,
    restore_base,
)
from reconciler.devstack.postgres import archive_command

SEGMENT = "000000010000000000000003"


def _archive(archive: Path, source: Path) -> int:
    """Run the command as PostgreSQL does: %p relative to the data dir."""
    command = archive_command(archive).replace("%p", source.name).replace("%f", SEGMENT)
    return subprocess.run(["sh", "-c", command], cwd=source.parent, check=False).returncode


def test_a_segment_is_copied_whole_and_never_overwritten(tmp_path: Path) -> None:
    archive = tmp_path / "wal archive"  # a space: the path is quoted
    archive.mkdir()
    wal = tmp_path / "pg_wal"
    wal.mkdir()
    segment = wal / "seg"
    segment.write_bytes(b"A" * 4096)
    assert _archive(archive, segment) == 0
    assert (archive / SEGMENT).read_bytes() == b"A" * 4096
    # The same bytes again (a crash before PostgreSQL noted the copy): fine.
    assert _archive(archive, segment) == 0
    # Other bytes under the same name: refused, the archived one kept.
    segment.write_bytes(b"B" * 4096)
    assert _archive(archive, segment) != 0
    assert (archive / SEGMENT).read_bytes() == b"A" * 4096
    assert sorted(p.name for p in archive.iterdir()) == [SEGMENT]


def test_a_missing_segment_archives_nothing(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    assert _archive(archive, tmp_path / "gone") != 0
    assert list(archive.iterdir()) == []


@pytest.mark.parametrize("path", ["relative/archive", "/tmp/100%", "/tmp/a\nb"])
def test_an_archive_path_the_command_cannot_carry_is_refused(path: str) -> None:
    with pytest.raises(ValueError, match="WAL archive path"):
        archive_command(Path(path))


END = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
MANIFEST = BaseManifest(
    created_at=END.isoformat(),
    end_time=END.isoformat(),
    start_lsn="0/2000028",
    end_lsn="0/2000120",
    timeline=1,
    format="tar",
    files={},
)
NOW = END + timedelta(hours=1)


def test_targets_between_the_backup_and_now_pass() -> None:
    for target in [
        Target(time=END),
        Target(time=parse_time("2026-12-04T10:30:00+07:00")),
        Target(lsn="0/2000120"),
        Target(lsn="1/0"),
        Target(),
    ]:
        check_target(target, MANIFEST, NOW)


@pytest.mark.parametrize(
    ("target", "says"),
    [
        (Target(time=END - timedelta(microseconds=1)), "before the base backup's end"),
        (Target(time=parse_time("2026-12-04T09:59:59+07:00")), "before the base backup's end"),
        (Target(time=NOW + timedelta(seconds=1)), "in the future"),
        (Target(lsn="0/200011F"), "before the base backup's end"),
    ],
)
def test_unreachable_targets_are_refused(target: Target, says: str) -> None:
    with pytest.raises(BackupError, match=says):
        check_target(target, MANIFEST, NOW)


@pytest.mark.parametrize("text", ["", "0/", "G/1", "1/2/3", "123456789/0", "0x1/0"])
def test_a_malformed_lsn_is_named(text: str) -> None:
    with pytest.raises(BackupError, match="LSN"):
        parse_lsn(text)


def test_lsns_compare_as_numbers() -> None:
    assert parse_lsn("1/0") > parse_lsn("0/FFFFFFFF")
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848


@pytest.mark.parametrize(("text", "says"), [("yesterday", "ISO 8601"), ("2026-12-04", "offset")])
def test_a_time_without_offset_or_form_is_refused(text: str, says: str) -> None:
    with pytest.raises(BackupError, match=says):
        parse_time(text)


def test_a_backup_whose_tar_climbs_out_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    """A base backup (and its manifest) made by someone else, whose tar
    writes outside the new directory: refused, nothing written anywhere."""
    backup = tmp_path / "base"
    backup.mkdir()
    payload = tmp_path / "payload"
    payload.write_text("owned")
    with tarfile.open(backup / "base.tar", "w") as tar:
        tar.add(payload, arcname="../escaped")
    with tarfile.open(backup / "pg_wal.tar", "w"):
        pass
    manifest = dataclasses.replace(MANIFEST, files=file_list(backup))
    base_manifest_path(backup).write_text(json.dumps(dataclasses.asdict(manifest)))
    archive = tmp_path / "archive"
    archive.mkdir()
    into = tmp_path / "restored"
    with pytest.raises(BackupError, match="cannot be unpacked safely"):
        restore_base(backup, Target(), archive, into)
    assert not (tmp_path / "escaped").exists()
    assert not into.exists()
    assert not into.with_name("restored.partial").exists()


def test_timelines_as_postgresql_takes_them() -> None:
    assert [parse_timeline(t) for t in ["latest", "Current", "2", "007"]] == [
        "latest",
        "current",
        "2",
        "7",
    ]
    for bad in ["0", "-1", "4294967296", "two", "1; DROP", ""]:
        with pytest.raises(BackupError, match="--timeline"):
            parse_timeline(bad)
