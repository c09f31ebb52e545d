"""The citizen's signed PDF link holds only as minted, and only until it
expires."""

from __future__ import annotations

import re

import pytest

from reconciler.citizen_links import CitizenLinks

NOW = 1_800_000_000.0
SERIES = "DCSGTS1CAQHK-2025"


@pytest.fixture
def links() -> CitizenLinks:
    return CitizenLinks.from_secret("s" * 40, "https://bienlai.example.vn/", 3600)


def parts(path: str) -> tuple[str, str]:
    found = re.fullmatch(rf"/receipts/{SERIES}/12\.pdf\?exp=(\d+)&sig=([\w-]+)", path)
    assert found is not None, path
    return found.group(1), found.group(2)


def test_a_minted_link_holds_until_it_expires(links: CitizenLinks) -> None:
    exp, sig = parts(links.path(SERIES, 12, NOW))
    assert int(exp) == NOW + 3600
    assert links.holds(SERIES, 12, exp, sig, NOW)
    assert links.holds(SERIES, 12, exp, sig, NOW + 3599)
    assert not links.holds(SERIES, 12, exp, sig, NOW + 3600)
    assert links.url(SERIES, 12, NOW).startswith("https://bienlai.example.vn/receipts/")


def test_a_changed_link_does_not_hold(links: CitizenLinks) -> None:
    exp, sig = parts(links.path(SERIES, 12, NOW))
    other = CitizenLinks.from_secret("t" * 40, "https://x", 3600)
    flipped = ("B" if sig[0] == "A" else "A") + sig[1:]
    for args in (
        (SERIES, 13, exp, sig),
        ("DCSGTS1CAQHK-2024", 12, exp, sig),
        (SERIES, 12, str(int(exp) + 1), sig),
        (SERIES, 12, exp, flipped),
        (SERIES, 12, exp, sig[:-1]),
        (SERIES, 12, exp, ""),
        (SERIES, 12, "", sig),
        (SERIES, 12, "１２", sig),
        (SERIES, 12, "9" * 5000, sig),
        (SERIES, 12, exp, "\ud800" * 43),
    ):
        assert not links.holds(*args, now=NOW), args
    assert not other.holds(SERIES, 12, exp, sig, NOW)


def test_without_a_secret_each_process_has_its_own_key() -> None:
    one = CitizenLinks.from_secret("", "https://x", 60)
    two = CitizenLinks.from_secret("", "https://x", 60)
    exp, sig = parts(one.path(SERIES, 12, NOW))
    assert one.holds(SERIES, 12, exp, sig, NOW)
    assert not two.holds(SERIES, 12, exp, sig, NOW)
