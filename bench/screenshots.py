"""Screenshots of each console page, for docs/console.md:

    python -m bench.screenshots [--out docs/console]

Starts a seeded ``reconciler dev`` in a temporary directory, walks every
console page as the role that uses it (the seed story's pages first, in
its order; the operator's while ``sgbank``'s link is still down) in
Debian's chromium (``/usr/bin/chromium``, scripts/install-system-tools.sh;
nothing is downloaded), saves one PNG per page and stops the stack. The
tests take no screenshots: pictures are made here, on purpose, by a person
who then looks at them.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from playwright.sync_api import Page, sync_playwright

from bench.devstack_client import DevStartError, start_dev, wait_for_dev_json
from domain.business_time import business_date

CHROMIUM: Final = Path("/usr/bin/chromium")
# A long page is cut here: the picture shows what a person sees first.
SHOT_HEIGHT_MAX: Final = 1400
START_SECONDS: Final = 180.0
STORY_DECISION: Final = "02003/QĐ-XPHC"
STORY_PLATE: Final = "29A-888.99"


def _start(data_dir: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    proc = start_dev(data_dir, seed=True)
    try:
        return proc, wait_for_dev_json(proc, data_dir, timeout=START_SECONDS)
    except DevStartError as err:
        raise SystemExit(f"reconciler dev did not start: {err}") from None


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


def _first_link(page: Page, pattern: str) -> str:
    """The first link on the page whose path matches ``pattern`` (a regex)."""
    hrefs: list[str] = page.eval_on_selector_all("main a[href]", "els => els.map(e => e.href)")
    found = next((h for h in hrefs if re.search(pattern, urllib.parse.urlsplit(h).path)), None)
    if found is None:
        raise SystemExit(f"no link like {pattern} on {page.url}")
    return found


def _visit(page: Page, info: dict[str, Any], shot: Any, shots: tuple[tuple[str, str], ...]) -> None:
    for name, path in shots:
        page.goto(info["api_url"] + path)
        shot(name)


def _operator_and_admin(page: Page, info: dict[str, Any], shot: Any) -> None:
    """While ``sgbank``'s link is still down (the seed story's state)."""
    _log_in(page, info, "operator")
    _visit(
        page,
        info,
        shot,
        (
            ("operator-links", "/console/operator/links"),
            ("operator-in-doubt", "/console/operator/in-doubt"),
            ("operator-alerts", "/console/operator/alerts"),
        ),
    )
    _log_in(page, info, "admin")
    page.goto(info["api_url"] + "/console/admin/users")
    shot("admin-users")
    page.goto(info["api_url"] + "/console/admin/users/demo-admin/tokens")
    shot("admin-tokens")


def _finance(page: Page, info: dict[str, Any], shot: Any) -> None:
    _log_in(page, info, "finance")
    today = business_date(datetime.now(UTC)).isoformat()
    _visit(
        page,
        info,
        shot,
        (
            ("finance-approvals-own", "/console/approvals"),
            ("finance-disputes", "/console/disputes"),
        ),
    )
    page.goto(_first_link(page, r"^/console/disputes/\d+$"))
    shot("finance-dispute")
    page.goto(info["api_url"] + "/console/reconciliations")
    shot("finance-runs")
    page.goto(_first_link(page, r"^/console/reconciliations/\d+$"))
    shot("finance-run")
    page.goto(info["api_url"] + "/console/discrepancies")
    shot("finance-discrepancies")
    page.goto(_first_link(page, r"^/console/discrepancies/\d+$"))
    shot("finance-discrepancy")
    _visit(
        page,
        info,
        shot,
        (("finance-closing", f"/console/closing?day={today}"),),
    )
    page.locator("details").filter(has=page.locator("caption")).last.locator("summary").click()
    shot("finance-closing-chart", "section.card:has(figure.chart)")
    _visit(
        page,
        info,
        shot,
        (
            ("finance-audit", "/console/audit"),
            ("finance-audit-verification", "/console/audit/verification"),
            ("fines-import", "/console/fines/import"),
        ),
    )
    _log_in(page, info, "approver")
    page.goto(info["api_url"] + "/console/approvals")
    shot("approver-approvals")


def _officer_pages(page: Page, info: dict[str, Any], shot: Any) -> None:
    _log_in(page, info, "officer")
    plate = urllib.parse.quote(STORY_PLATE)
    _visit(
        page,
        info,
        shot,
        (
            ("counter-search", f"/console/counter?plate={plate}"),
            ("receipts-today", "/console/receipts/today"),
            ("dispute-new", "/console/disputes/new?decision=" + urllib.parse.quote(STORY_DECISION)),
        ),
    )


def _walk(page: Page, info: dict[str, Any], shot: Any) -> None:
    page.goto(info["console_url"])
    shot("login")
    _log_in(page, info, "officer")
    shot("counter-empty")
    page.goto(_counter(info, STORY_DECISION))
    shot("counter-in-doubt")
    page.goto(_status(info, STORY_DECISION, STORY_PLATE))
    shot("status-verifying")
    _operator_and_admin(page, info, shot)
    _finance(page, info, shot)
    _log_in(page, info, "officer")
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
    _officer_pages(page, info, shot)


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

                def shot(name: str, part: str | None = None) -> None:
                    """The page from its top (at most SHOT_HEIGHT_MAX), or
                    only the element ``part`` (a CSS selector) names."""
                    path = args.out / f"{name}.png"
                    if part is not None:
                        page.locator(part).first.screenshot(path=str(path))
                    else:
                        height = page.evaluate("document.documentElement.scrollHeight")
                        clip = {
                            "x": 0,
                            "y": 0,
                            "width": 1100,
                            "height": min(height, SHOT_HEIGHT_MAX),
                        }
                        page.screenshot(path=str(path), full_page=True, clip=clip)  # type: ignore[arg-type]
                    print(f"  {path}", flush=True)

                _walk(page, info, shot)
                browser.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
