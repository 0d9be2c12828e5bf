"""The commands' progress line on stderr: rewritten in place on a terminal; where stderr is
a log file or a pipe, a line of its own for the first step, then at most one every
`LOG_EVERY_S` seconds, and the last one (a log then reads "predicted 1/120 … predicted
120/120", not 120 updates run together on one line)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

#: Where the progress goes to a log, the least time between two of its lines.
LOG_EVERY_S = 10.0


class ProgressLine:
    """`show(text)` for each step, `end()` once the work is done."""

    def __init__(self, stream: TextIO | None = None, *, every_s: float = LOG_EVERY_S):
        self._stream = stream if stream is not None else sys.stderr
        self._live = self._stream.isatty()
        self._every = every_s
        self._last = ""
        self._written = ""
        self._written_at = -float("inf")

    def show(self, text: str) -> None:
        self._last = text
        if self._live:
            print(f"\r{text}".ljust(60), end="", file=self._stream, flush=True)
        elif time.monotonic() - self._written_at >= self._every:
            self._write(text)

    def end(self) -> None:
        """Finish the line (a terminal) or write the last step unless it was (a log)."""
        if self._live:
            print(file=self._stream, flush=True)
        elif self._last and self._last != self._written:
            self._write(self._last)
        self._last = self._written = ""

    def _write(self, text: str) -> None:
        print(text, file=self._stream, flush=True)
        self._written, self._written_at = text, time.monotonic()
