"""``reconciler dev`` run as a user runs it: a subprocess, read through its
``dev.json`` and called over HTTP (the end-to-end tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

START_TIMEOUT_SECONDS = 120


def start_dev(data_dir: Path, *extra: str, seed: bool = False) -> subprocess.Popen[bytes]:
    """``reconciler dev`` on ``data_dir``; its console goes to ``supervisor.out``.
    Without ``seed``, ``--no-seed``: the seed story takes ~10 s and leaves
    ``sgbank``'s link down, which tests of their own payments do not want."""
    data_dir.mkdir(parents=True, exist_ok=True)
    flags = [*extra] if seed else ["--no-seed", *extra]
    with (data_dir / "supervisor.out").open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "reconciler", "dev", "--data-dir", str(data_dir), *flags],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "RECONCILER_ENV": "dev"},
        )


def console(data_dir: Path) -> str:
    return (data_dir / "supervisor.out").read_text(errors="replace")


def wait_for_dev_json(proc: subprocess.Popen[bytes], data_dir: Path) -> dict[str, Any]:
    path = data_dir / "dev.json"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"reconciler dev exited with {proc.returncode}:\n{console(data_dir)}")
        if path.exists():
            info: dict[str, Any] = json.loads(path.read_text())
            return info
        time.sleep(0.2)
    proc.kill()
    pytest.fail("dev.json did not appear")


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def api_call(
    info: dict[str, Any],
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """(status, JSON) of a call with ``token`` (default: dev.json's ``api_token``)."""
    request = urllib.request.Request(
        info["api_url"] + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {token or info['api_token']}",
            "Content-Type": "application/json",
            **(headers or {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def stop_and_check_no_orphans(
    proc: subprocess.Popen[bytes], children: list[psutil.Process], sig: int
) -> None:
    proc.send_signal(sig)
    proc.wait(timeout=60)
    _gone, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, f"left running: {[(p.pid, p.name()) for p in alive]}"
