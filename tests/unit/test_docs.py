"""The project's documents stand alone and name only what exists: every
repository path they mention is there, and none points outside the
repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted([REPO / "README.md", REPO / "CONTRIBUTING.md", *(REPO / "docs").glob("*.md")])
TOP_LEVEL = (
    "bank_adapters",
    "bench",
    "docs",
    "domain",
    "ledger",
    "observability",
    "reconciler",
    "scripts",
    "tests",
    "workflows",
    "requirements",
)
# `ledger/core/postings.py`, `tests/integration/payments/`, `bench/recon.py` ...
_TOP = "|".join(TOP_LEVEL)
_PATH = re.compile(rf"`((?:{_TOP})/[A-Za-z0-9_./-]*)`")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_path_a_document_names_exists(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    missing = [
        path
        for path in _PATH.findall(text)
        if not (REPO / path.split("::")[0].rstrip(".")).exists()
    ]
    assert missing == [], f"{document.name} names paths that do not exist"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_no_document_points_outside_the_repository(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    assert "../shared" not in text
    assert "DESIGN §" not in text
