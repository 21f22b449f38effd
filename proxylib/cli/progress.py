"""A progress bar on a terminal, silence when piped or asked to be quiet."""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


class Progress:
    """Call with ``(done, total, label)``; draws on ``stream`` only if it is a TTY."""

    WIDTH = 30

    def __init__(self, quiet: bool = False, stream: Optional[TextIO] = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = not quiet and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int, label: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        filled = int(self.WIDTH * done / total) if total else self.WIDTH
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self._drawn = True
        self.stream.write(f"\r[{bar}] {done}/{total} {label[:50]:50s}")
        if done >= total:
            self.stream.write("\n")
            self._drawn = False
        self.stream.flush()

    def clear(self) -> None:
        """Erase the bar, so a line printed next does not land on top of it."""
        if self.enabled and self._drawn:
            self.stream.write("\r" + " " * (self.WIDTH + 60) + "\r")
            self.stream.flush()
            self._drawn = False
