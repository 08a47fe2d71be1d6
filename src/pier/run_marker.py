"""Whether the previous `pier up` on a data dir stopped cleanly.

`pier up` writes its pid to ``<data dir>/pier.running`` before it starts anything and
removes the file once it has stopped everything it started. Finding the file at start
(under the data dir's lock, so its writer is gone) means the previous `pier up` was
killed or crashed: its instances and gateway may still run, and are adopted.
"""

from __future__ import annotations

import os
from pathlib import Path


class RunMarker:
    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / "pier.running"

    def unclean_pid(self) -> int | None:
        """The pid of a previous `pier up` that did not stop cleanly, or None."""
        try:
            return int(self._path.read_text().strip())
        except (OSError, ValueError):
            return None

    def begin(self) -> None:
        """This process is about to start instances and the gateway."""
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(f"{os.getpid()}\n")
        os.replace(tmp, self._path)

    def end(self) -> None:
        """Everything this process started is stopped."""
        self._path.unlink(missing_ok=True)
