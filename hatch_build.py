"""Wheel build hook: the web UI's browser libraries come from npm at build time
(scripts/build-ui-assets.sh) and go into the wheel although git ignores them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

VENDOR = Path("src/pier/ui/static/vendor")
FILES = ("htmx.min.js", "htmx.LICENSE", "uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE")


class UiAssetsHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return  # an editable install reads them from the tree (`make install` builds them)
        root = Path(self.root)
        subprocess.run([str(root / "scripts/build-ui-assets.sh")], check=True)
        for name in FILES:
            source = VENDOR / name
            build_data["force_include"][str(root / source)] = str(source.relative_to("src"))
