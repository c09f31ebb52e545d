"""Where the Unicode TrueType font for receipts comes from (DejaVu Sans).

Lookup order, first hit wins:

1. an explicit path given by the caller (from settings);
2. system locations: Debian/Ubuntu ``fonts-dejavu-core``
   (``/usr/share/fonts/truetype/dejavu``), then Fedora and Arch layouts;
3. the copy bundled with matplotlib (``mpl-data/fonts/ttf``), found without
   importing matplotlib; matplotlib is only a dev dependency, so production
   images should install ``fonts-dejavu-core`` or pass a path.

The bold face is ``<stem>-Bold.ttf`` next to the regular one; without it,
headings use the regular face.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

REGULAR_FILENAME = "DejaVuSans.ttf"
SYSTEM_FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu-sans-fonts"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
)


class FontNotFound(Exception):
    """No usable DejaVu Sans; the message names every path tried."""


@dataclass(frozen=True)
class FontFiles:
    regular: Path
    bold: Path | None


def _matplotlib_font_dir() -> Path | None:
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf"


def candidate_paths(explicit: Path | None = None) -> list[Path]:
    """Regular-face paths in lookup order."""
    paths = [] if explicit is None else [explicit]
    paths += [d / REGULAR_FILENAME for d in SYSTEM_FONT_DIRS]
    mpl_dir = _matplotlib_font_dir()
    if mpl_dir is not None:
        paths.append(mpl_dir / REGULAR_FILENAME)
    return paths


def find_dejavu_sans(explicit: Path | None = None) -> FontFiles:
    """The first existing font file in lookup order (see module doc).

    An explicit path that does not exist is an error, not a reason to fall
    back silently: the operator asked for that file.
    """
    if explicit is not None and not explicit.is_file():
        raise FontNotFound(f"receipt font {explicit} (given explicitly) does not exist")
    tried = candidate_paths(explicit)
    for path in tried:
        if path.is_file():
            bold = path.with_name(f"{path.stem}-Bold{path.suffix}")
            return FontFiles(regular=path, bold=bold if bold.is_file() else None)
    raise FontNotFound(
        "DejaVu Sans not found for receipt PDFs; install the Debian package "
        "fonts-dejavu-core or set the receipt font path. Tried: " + ", ".join(str(p) for p in tried)
    )
