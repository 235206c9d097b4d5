"""Step logs with a size cap: a candidate printing 1 GB must not fill the disk.

Both sandboxes copy each stream into its log file through a `CappedLog`: bytes up to the
cap are written at once (unbuffered, so logs can be followed live), a marker line says
where the cap cut in, and the rest is counted but dropped.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import BinaryIO

DEFAULT_OUTPUT_CAP = 64 * 1024 * 1024  # per stream, per step


def truncation_marker(cap: int) -> bytes:
    return f"\n[executor: output capped at {cap} bytes; the rest was dropped]\n".encode()


class CappedLog:
    """A log file that keeps the first `cap` bytes written to it, then one marker line."""

    def __init__(self, path: Path, cap: int = DEFAULT_OUTPUT_CAP) -> None:
        self.path = path
        self.cap = cap
        self.written = 0
        self.dropped = 0
        self._file: BinaryIO = path.open("wb", buffering=0)

    def write(self, data: bytes) -> None:
        room = self.cap - self.written
        if room > 0:
            self._file.write(data[:room])
            self.written += min(room, len(data))
        if len(data) > room:
            if self.dropped == 0:
                self._file.write(truncation_marker(self.cap))
            self.dropped += len(data) - max(room, 0)

    @property
    def truncated(self) -> bool:
        return self.dropped > 0

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CappedLog:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
