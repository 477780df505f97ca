"""How a long operation reports: progress, log lines, plot points, partial results, and cancellation.

The UI's background jobs pass their JobContext; the CLI passes SILENT (its progress bars live in the
libraries). Cancellation is an exception raised by `check()` between small units of work.
"""
from __future__ import annotations

from typing import Protocol


class Cancelled(Exception):
    """Raised inside an operation when the user asked to cancel it."""


class Reporter(Protocol):
    def check(self) -> None: ...  # raises Cancelled when the user asked to stop
    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None: ...
    def log(self, line: str) -> None: ...
    def point(self, **values) -> None: ...
    def result(self, **values) -> None: ...


class Silent:
    """A Reporter that reports nothing and is never cancelled."""

    def check(self) -> None:
        pass

    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        pass

    def log(self, line: str) -> None:
        pass

    def point(self, **values) -> None:
        pass

    def result(self, **values) -> None:
        pass


SILENT = Silent()
