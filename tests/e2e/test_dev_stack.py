"""``reconciler dev`` as a user runs it: a subprocess, through its dev.json."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import psutil

from tests.support.dev_cli import (
    api_call,
    descendants,
    start_dev,
    stop_and_check_no_orphans,
    wait_for_dev_json,
)
from tests.support.wal import archive_current_segment


def test_dev_stack_starts_serves_stops_and_reuses_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "stack"
    proc = start_dev(data_dir)
    try:
        info = wait_for_dev_json(proc, data_dir)
        for key in ("api_url", "console_url", "metrics_url", "temporal_address", "postgres_url"):
            assert info[key], key
        assert {u["role"] for u in info["users"]} >= {"officer", "finance", "approver", "operator"}
        children = descendants(proc.pid)
        names = {p.name() for p in children}
        assert "postgres" in names, names
        assert "temporal" in names, names

        status, body = api_call(info, "GET", "/api/v1/fines/01234%2Fqd-xphc")
        assert status == 200
        assert body["status"] == "unpaid"
        # dev.json's token is demo-admin's; its users log in as themselves.
        assert api_call(info, "GET", "/api/v1/auth/me")[1]["actor"] == "demo-admin"
        approver = next(u for u in info["users"] if u["role"] == "approver")
        credentials = {"username": approver["username"], "password": approver["password"]}
        status, session = api_call(info, "POST", "/api/v1/auth/login", credentials)
        assert status == 200, session
        status, me = api_call(info, "GET", "/api/v1/auth/me", token=session["token"])
        assert (status, me["actor"], me["role"]) == (200, "demo-approver", "approver")
        fine = {
            "decision_number": "777/QĐ-XPHC",
            "amount_vnd": 1_200_000,
            "violator_name": "Đỗ Thị Hoa",
            "plate": "29C-555.55",
            "issuing_unit": "Đội CSGT số 1",
            "violation": "Đi ngược chiều",
        }
        assert api_call(info, "POST", "/api/v1/fines", fine)[0] == 201
        # Its PostgreSQL archives WAL for a point-in-time restore (runbook).
        archive_current_segment(info["postgres_url"], data_dir / "wal-archive")
    finally:
        if proc.poll() is None:
            stop_and_check_no_orphans(proc, descendants(proc.pid), signal.SIGTERM)
    assert proc.returncode == 0
    assert not (data_dir / "dev.json").exists()

    # Second run on the same directory: same data, same token.
    proc = start_dev(data_dir)
    try:
        again = wait_for_dev_json(proc, data_dir)
        assert again["api_token"] == info["api_token"]
        status, body = api_call(again, "GET", "/api/v1/fines/777%2Fqd-xphc")
        assert status == 200, body
        assert body["violator_name"] == "Đỗ Thị Hoa"
        # A second stack on the same directory is refused with a clear message.
        clash = subprocess.run(
            [sys.executable, "-m", "reconciler", "dev", "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert clash.returncode != 0
        assert "already running" in clash.stderr
    finally:
        children = descendants(proc.pid) if proc.poll() is None else []
        if proc.poll() is None:
            stop_and_check_no_orphans(proc, children, signal.SIGINT)


def test_killed_supervisor_leaves_no_orphans(tmp_path: Path) -> None:
    data_dir = tmp_path / "stack"
    proc = start_dev(data_dir)
    try:
        wait_for_dev_json(proc, data_dir)
        children = descendants(proc.pid)
        assert children
    finally:
        proc.kill()
        proc.wait(timeout=30)
    _gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"orphans after SIGKILL: {[(p.pid, p.name()) for p in alive]}"
