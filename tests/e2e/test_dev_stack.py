"""``reconciler dev`` as a user runs it: a subprocess, through its dev.json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

START_TIMEOUT_SECONDS = 120


def _start(data_dir: Path, *extra: str) -> subprocess.Popen[bytes]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "supervisor.out").open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "reconciler", "dev", "--data-dir", str(data_dir), *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def _wait_for_dev_json(proc: subprocess.Popen[bytes], data_dir: Path) -> dict[str, Any]:
    path = data_dir / "dev.json"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = (data_dir / "supervisor.out").read_text(errors="replace")
            pytest.fail(f"reconciler dev exited with {proc.returncode}:\n{out}")
        if path.exists():
            info: dict[str, Any] = json.loads(path.read_text())
            return info
        time.sleep(0.2)
    proc.kill()
    pytest.fail("dev.json did not appear")


def _descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def _api(
    info: dict[str, Any], method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    """(status, JSON) of a call with ``token`` (default: dev.json's ``api_token``)."""
    request = urllib.request.Request(
        info["api_url"] + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {token or info['api_token']}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _stop_and_check_no_orphans(
    proc: subprocess.Popen[bytes], children: list[psutil.Process], sig: int
) -> None:
    proc.send_signal(sig)
    proc.wait(timeout=60)
    _gone, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, f"left running: {[(p.pid, p.name()) for p in alive]}"


def test_dev_stack_starts_serves_stops_and_reuses_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "stack"
    proc = _start(data_dir)
    try:
        info = _wait_for_dev_json(proc, data_dir)
        for key in ("api_url", "console_url", "metrics_url", "temporal_address", "postgres_url"):
            assert info[key], key
        assert {u["role"] for u in info["users"]} >= {"officer", "finance", "approver", "operator"}
        children = _descendants(proc.pid)
        names = {p.name() for p in children}
        assert "postgres" in names, names
        assert "temporal" in names, names

        status, body = _api(info, "GET", "/api/v1/fines/01234%2Fqd-xphc")
        assert status == 200
        assert body["status"] == "unpaid"
        # dev.json's token is demo-admin's; its users log in as themselves.
        assert _api(info, "GET", "/api/v1/auth/me")[1]["actor"] == "demo-admin"
        approver = next(u for u in info["users"] if u["role"] == "approver")
        credentials = {"username": approver["username"], "password": approver["password"]}
        status, session = _api(info, "POST", "/api/v1/auth/login", credentials)
        assert status == 200, session
        status, me = _api(info, "GET", "/api/v1/auth/me", token=session["token"])
        assert (status, me["actor"], me["role"]) == (200, "demo-approver", "approver")
        fine = {
            "decision_number": "777/QĐ-XPHC",
            "amount_vnd": 1_200_000,
            "violator_name": "Đỗ Thị Hoa",
            "plate": "29C-555.55",
            "issuing_unit": "Đội CSGT số 1",
            "violation": "Đi ngược chiều",
        }
        assert _api(info, "POST", "/api/v1/fines", fine)[0] == 201
    finally:
        if proc.poll() is None:
            _stop_and_check_no_orphans(proc, _descendants(proc.pid), signal.SIGTERM)
    assert proc.returncode == 0
    assert not (data_dir / "dev.json").exists()

    # Second run on the same directory: same data, same token.
    proc = _start(data_dir)
    try:
        again = _wait_for_dev_json(proc, data_dir)
        assert again["api_token"] == info["api_token"]
        status, body = _api(again, "GET", "/api/v1/fines/777%2Fqd-xphc")
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
        children = _descendants(proc.pid) if proc.poll() is None else []
        if proc.poll() is None:
            _stop_and_check_no_orphans(proc, children, signal.SIGINT)


def test_killed_supervisor_leaves_no_orphans(tmp_path: Path) -> None:
    data_dir = tmp_path / "stack"
    proc = _start(data_dir)
    try:
        _wait_for_dev_json(proc, data_dir)
        children = _descendants(proc.pid)
        assert children
    finally:
        proc.kill()
        proc.wait(timeout=30)
    _gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"orphans after SIGKILL: {[(p.pid, p.name()) for p in alive]}"
