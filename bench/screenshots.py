"""Screenshots of each console page, for docs/console.md:

    python -m bench.screenshots [--out docs/console]

Starts a seeded ``reconciler dev`` in a temporary directory, walks the
pages the browser tests walk (tests/e2e/test_console_browser.py) in
Debian's chromium (``/usr/bin/chromium``, scripts/install-system-tools.sh;
nothing is downloaded), saves one PNG per page and stops the stack. The
tests take no screenshots: pictures are made here, on purpose, by a person
who then looks at them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Final

from playwright.sync_api import Page, sync_playwright

CHROMIUM: Final = Path("/usr/bin/chromium")
START_SECONDS: Final = 180.0
STORY_DECISION: Final = "02003/QĐ-XPHC"
STORY_PLATE: Final = "29A-888.99"


def _start(data_dir: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    out = (data_dir / "supervisor.out").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "dev", "--data-dir", str(data_dir)],
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, "RECONCILER_ENV": "dev"},
    )
    deadline = time.monotonic() + START_SECONDS
    while not (data_dir / "dev.json").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"reconciler dev did not start; see {data_dir}/supervisor.out")
        time.sleep(0.5)
    info: dict[str, Any] = json.loads((data_dir / "dev.json").read_text())
    return proc, info


def _user(info: dict[str, Any], role: str) -> dict[str, str]:
    found: dict[str, str] = next(u for u in info["users"] if u["role"] == role)
    return found


def _log_in(page: Page, info: dict[str, Any], role: str) -> None:
    page.context.clear_cookies()
    user = _user(info, role)
    page.goto(info["console_url"])
    page.fill("#username", user["username"])
    page.fill("#password", user["password"])
    page.click("button[type=submit]")
    page.wait_for_url("**/console/counter")


def _counter(info: dict[str, Any], decision: str) -> str:
    return f"{info['api_url']}/console/counter?q={urllib.parse.quote(decision)}"


def _status(info: dict[str, Any], decision: str, plate: str) -> str:
    query = urllib.parse.urlencode({"decision": decision, "plate": plate})
    return f"{info['api_url']}/status?{query}"


def _reload_until(page: Page, text: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while text not in page.inner_text("main"):
        if time.monotonic() > deadline:
            raise SystemExit(f"{text!r} did not appear on {page.url}")
        page.wait_for_timeout(500)
        page.reload()


def _walk(page: Page, info: dict[str, Any], shot: Any) -> None:
    page.goto(info["console_url"])
    shot("login")
    _log_in(page, info, "officer")
    shot("counter-empty")
    page.goto(_counter(info, STORY_DECISION))
    shot("counter-in-doubt")
    page.goto(_status(info, STORY_DECISION, STORY_PLATE))
    shot("status-verifying")
    request = urllib.request.Request(
        info["banks"]["sgbank"]["admin_url"] + "/faults", method="DELETE"
    )
    urllib.request.urlopen(request, timeout=10).close()  # the link comes back
    page.goto(_counter(info, STORY_DECISION))
    _reload_until(page, "In biên lai (PDF)")
    shot("counter-paid")
    page.goto(_counter(info, STORY_DECISION) + "&lang=en")
    shot("counter-paid-en")
    page.goto(_counter(info, "02002/QĐ-XPHC") + "&lang=vi")
    shot("counter-declined")
    page.goto(_status(info, STORY_DECISION, STORY_PLATE))
    _reload_until(page, "Tải biên lai của bạn (PDF)")
    shot("status-paid")
    page.goto(_status(info, STORY_DECISION, "30A-000.00"))
    shot("status-wrong-plate")
    _log_in(page, info, "officer")
    page.goto(_counter(info, "02001/QĐ-XPHC"))
    href = page.get_by_text("In biên lai (PDF)").get_attribute("href") or ""
    _log_in(page, info, "operator")  # reads fines, not receipts
    page.goto(info["api_url"] + href)
    shot("forbidden")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/console"))
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: run scripts/install-system-tools.sh")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        proc, info = _start(Path(tmp))
        try:
            with sync_playwright() as playwright:
                launch = ["--no-sandbox"] if os.geteuid() == 0 else []
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=launch)
                page = browser.new_page(viewport={"width": 1100, "height": 760}, locale="vi-VN")

                def shot(name: str) -> None:
                    path = args.out / f"{name}.png"
                    page.screenshot(path=str(path), full_page=True)
                    print(f"  {path}", flush=True)

                _walk(page, info, shot)
                browser.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
