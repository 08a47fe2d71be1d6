"""A local instance's log file: reading the last lines, then new lines as they come; and
keeping it bounded (a task of the runtime's own looks every LOG_ROTATE_PERIOD_S).

Rotation is copy-truncate: the instance writes through a file descriptor opened with
O_APPEND that pier cannot make it reopen, so a log past ``max_bytes`` is copied to
``<name>.1`` (replacing the previous copy) and truncated, and the instance's next write
lands at the new end. At most about twice ``max_bytes`` stays on disk per instance; lines
written between the copy and the truncation (microseconds) are lost, as with logrotate's
copytruncate.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Final

LOG_POLL_PERIOD_S: Final = 0.2
"""How often ``logs(follow=True)`` looks for new lines."""
LOG_CHUNK_BYTES: Final = 1 << 20
LOG_MAX_BYTES: Final = 16 << 20
"""A log file bigger than this is rotated (one older copy is kept)."""
LOG_ROTATE_PERIOD_S: Final = 5.0
"""How often the local runtime's rotation task looks at the log sizes."""


def rotated_path(path: Path) -> Path:
    return path.with_name(path.name + ".1")


def rotate_if_large(path: Path, max_bytes: int) -> bool:
    """Copy ``path`` to its ``.1`` and truncate it when it is over ``max_bytes``."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    rotated = rotated_path(path)
    partial = rotated.with_name(rotated.name + ".partial")
    shutil.copyfile(path, partial)
    os.replace(partial, rotated)
    os.truncate(path, 0)
    return True


def read_all_lines(path: Path) -> list[str]:
    """Every complete or final line of a (rotated, no longer written) log file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return [_decode(line) for line in data.removesuffix(b"\n").split(b"\n")] if data else []


class LogReader:
    """Reads a log file forward from an offset, one complete line at a time."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._partial = b""

    def read_tail(self, count: int) -> list[str]:
        """The last ``count`` lines; later reads continue after them."""
        try:
            with open(self._path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                start, data = size, b""
                while start > 0 and data.count(b"\n") <= count:
                    step = min(LOG_CHUNK_BYTES, start)
                    start -= step
                    f.seek(start)
                    data = f.read(step) + data
        except FileNotFoundError:  # removed by remove_logs
            return []
        self._offset = size
        complete, newline, partial = data.rpartition(b"\n")
        lines = complete.split(b"\n") if newline else []
        self._partial = partial if count > 0 else b""
        keep = count - 1 if partial else count
        return [_decode(line) for line in lines[-keep:]] if keep > 0 else []

    def read_lines(self) -> tuple[list[str], bool]:
        """Complete lines written since the last read, and whether the end was reached."""
        try:
            with open(self._path, "rb") as f:
                if f.seek(0, os.SEEK_END) < self._offset:  # truncated: start over
                    self._offset, self._partial = 0, b""
                f.seek(self._offset)
                data = f.read(LOG_CHUNK_BYTES)
        except FileNotFoundError:  # removed by remove_logs
            return [], True
        self._offset += len(data)
        *complete, self._partial = (self._partial + data).split(b"\n")
        return [_decode(line) for line in complete], len(data) < LOG_CHUNK_BYTES

    def flush(self) -> str | None:
        """The last line when it has no newline at its end."""
        rest, self._partial = self._partial, b""
        return _decode(rest) if rest else None


def _decode(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").removesuffix("\r")
