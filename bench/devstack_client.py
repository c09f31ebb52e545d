"""``reconciler dev`` run as a user runs it: a subprocess on a data dir, read
through the ``dev.json`` it writes once every part is up. Shared by the chaos
harness (``bench/chaos.py``) and the end-to-end tests
(``tests/support/dev_cli.py``, which turns ``DevStartError`` into a test
failure); nothing here knows about pytest."""

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

START_TIMEOUT_SECONDS = 120.0


class DevStartError(RuntimeError):
    """``reconciler dev`` exited, or wrote no ``dev.json`` in time; the
    message carries its console."""


def start_dev(data_dir: Path, *extra: str, seed: bool = False) -> subprocess.Popen[bytes]:
    """``reconciler dev`` on ``data_dir``; its console goes to ``supervisor.out``.
    Without ``seed``, ``--no-seed``: the seed story takes ~10 s and leaves
    ``sgbank``'s link down, which runs of their own payments do not want."""
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


def wait_for_dev_json(
    proc: subprocess.Popen[bytes], data_dir: Path, timeout: float = START_TIMEOUT_SECONDS
) -> dict[str, Any]:
    """The ``dev.json`` of the stack ``proc`` runs, once it exists (bounded
    by ``timeout``; on timeout the supervisor is killed)."""
    path = data_dir / "dev.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DevStartError(
                f"reconciler dev exited with {proc.returncode}:\n{console(data_dir)}"
            )
        if path.exists():
            try:
                info: dict[str, Any] = json.loads(path.read_text())
            except ValueError:  # being written; read it again
                time.sleep(0.05)
                continue
            return info
        time.sleep(0.2)
    proc.kill()
    proc.wait(timeout=30)
    raise DevStartError(f"dev.json did not appear in {timeout:.0f} s:\n{console(data_dir)[-2000:]}")


def local_http(
    url: str, method: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """(status, JSON answer, or the error body's text) of one call to the dev
    stack's own ports; (0, reason) when nothing answered. Refuses any other
    host, so a mistyped URL cannot send chaos traffic elsewhere."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"chaos traffic goes to 127.0.0.1 only, not {url}")
    request = urllib.request.Request(
        url,
        method=method,
        data=data,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")[:500]
    except (OSError, ValueError) as err:
        return 0, str(err)
