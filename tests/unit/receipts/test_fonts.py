"""Font lookup for receipt PDFs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.receipts import fonts
from ledger.receipts.fonts import FontNotFound, candidate_paths, find_dejavu_sans


def test_explicit_path_wins(tmp_path: Path) -> None:
    regular = tmp_path / "MyFont.ttf"
    regular.write_bytes(b"ttf")
    assert find_dejavu_sans(regular) == fonts.FontFiles(regular=regular, bold=None)
    bold = tmp_path / "MyFont-Bold.ttf"
    bold.write_bytes(b"ttf")
    assert find_dejavu_sans(regular) == fonts.FontFiles(regular=regular, bold=bold)


def test_missing_explicit_path_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    missing = tmp_path / "nope.ttf"
    with pytest.raises(FontNotFound, match=r"nope\.ttf"):
        find_dejavu_sans(missing)


def test_system_font_comes_before_matplotlibs(tmp_path: Path) -> None:
    paths = candidate_paths()
    system = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    assert paths[0] == system
    mpl = [p for p in paths if "mpl-data" in p.parts]
    assert mpl, "matplotlib (a dev dependency) should be found"
    assert paths.index(system) < paths.index(mpl[0])


def test_matplotlib_copy_is_used_without_system_fonts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(fonts, "SYSTEM_FONT_DIRS", (tmp_path / "none",))
    found = find_dejavu_sans()
    assert "mpl-data" in found.regular.parts
    assert found.regular.is_file()
    assert found.bold is not None
    assert found.bold.name == "DejaVuSans-Bold.ttf"


def test_nothing_found_names_every_path_tried(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(fonts, "SYSTEM_FONT_DIRS", (tmp_path / "a", tmp_path / "b"))
    monkeypatch.setattr(fonts, "_matplotlib_font_dir", lambda: tmp_path / "mpl")
    with pytest.raises(FontNotFound) as caught:
        find_dejavu_sans()
    message = str(caught.value)
    assert "fonts-dejavu-core" in message
    for where in ("a", "b", "mpl"):
        assert str(tmp_path / where / "DejaVuSans.ttf") in message
