"""``reconciler dev`` run as a user runs it: a subprocess, read through its
``dev.json`` and called over HTTP (the end-to-end tests). Starting it is
``bench/devstack_client.py``'s (shared with the chaos harness); here a failed
start fails the test."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from bench import devstack_client
from bench.devstack_client import console, start_dev

# console and start_dev re-exported: the end-to-end tests import them from here.
__all__ = [
    "api_call",
    "console",
    "descendants",
    "start_dev",
    "stop_and_check_no_orphans",
    "wait_for_dev_json",
]


def wait_for_dev_json(proc: subprocess.Popen[bytes], data_dir: Path) -> dict[str, Any]:
    """``devstack_client.wait_for_dev_json``, a failed start failing the test."""
    try:
        return devstack_client.wait_for_dev_json(proc, data_dir)
    except devstack_client.DevStartError as err:
        pytest.fail(str(err))


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
