"""The one clock every time-dependent rule reads, so tests can move time.

(Normalising a stored timestamp to UTC is `models.as_utc`, beside the column type.)

The sandbox (`resolvemeq sandbox`) moves this clock forward for its "skip ahead" button
through `SANDBOX_CLOCK_FILE`: a file holding an offset in seconds, added to the real
time. `use_offset_file` is called once per process from the settings; without that
setting the clock is the real time and costs nothing more. The file is re-read only
when it changes (a new file, or a new modification time), so a skip is seen by every process at once.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

_lock = threading.Lock()
_offset_file: Path | None = None
_seen: tuple[int, int, int] | None = None  # (inode, mtime_ns, size) of the file last read
_offset = timedelta(0)


def now() -> datetime:
    """The current time, tz-aware UTC (plus the sandbox's offset when one is set)."""
    if _offset_file is None:
        return datetime.now(UTC)
    return datetime.now(UTC) + offset()


def use_offset_file(path: Path | None) -> None:
    """Add the offset (seconds, a number) written in `path` to every `now()`; None: none.

    A missing, empty or unreadable file is an offset of zero.
    """
    global _offset_file, _seen, _offset
    with _lock:
        _offset_file, _seen, _offset = path, None, timedelta(0)


def offset() -> timedelta:
    """The offset `now()` adds: zero unless an offset file is in use."""
    global _seen, _offset
    path = _offset_file
    if path is None:
        return timedelta(0)
    try:
        stat = os.stat(path)
    except OSError:
        return timedelta(0)
    key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)  # write_offset makes a new inode
    if key == _seen:
        return _offset
    with _lock:
        try:
            text = path.read_text(encoding="ascii").strip()
            _offset = timedelta(seconds=float(text or 0))
        except (OSError, ValueError, UnicodeDecodeError, OverflowError):
            _offset = timedelta(0)
        _seen = key
        return _offset


def write_offset(path: Path, seconds: float) -> None:
    """Set the offset in `path` (atomically: a reader never sees half a number)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(f"{seconds:.0f}\n", encoding="ascii")
    os.replace(temporary, path)
