"""One writer per collection at a time, across processes: an advisory lock file (flock).

Readers never take it: SQLite in WAL mode and atomically replaced FAISS files let them read while a
writer works. The lock dies with its process, so a killed run never leaves a stale lock behind.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

try:
    import fcntl
except ImportError:  # not POSIX: no cross-process lock, one writer is the user's responsibility
    fcntl = None


class WriteLock:
    def __init__(self, directory: Path, name: str):
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:100]
        self.path = Path(directory) / ".locks" / f"{safe}.lock"
        self._fd: int | None = None

    def acquire(self, wait: bool = True, on_wait: Callable[[], None] | None = None) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:
            self._fd = fd
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                os.close(fd)
                return False
            if on_wait:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
