"""Where the UI's files are: templates and pier's own CSS/JS in the package, the
browser libraries (htmx, uPlot) in static/vendor, built from npm by
scripts/build-ui-assets.sh (``make install``) and shipped in the wheel."""

from __future__ import annotations

from pathlib import Path
from typing import Final

UI_DIR: Final = Path(__file__).parent
TEMPLATES_DIR: Final = UI_DIR / "templates"
STATIC_DIR: Final = UI_DIR / "static"
VENDOR_FILES: Final = ("htmx.min.js", "uPlot.iife.min.js", "uPlot.min.css")
"""What the pages load from static/vendor; their LICENSE files sit beside them."""


def missing_assets(static_dir: Path = STATIC_DIR) -> list[str]:
    """The vendor files the pages need that are not there (empty: all present)."""
    return [name for name in VENDOR_FILES if not (static_dir / "vendor" / name).is_file()]
