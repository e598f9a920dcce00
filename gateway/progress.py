"""Progress of long command-line work, on one line of standard error rewritten in place.

Only for a person watching: when standard error is not a terminal (a log file, a pipe, a
test) nothing at all is written, so logs and scripts see exactly what they saw before.
The line is redrawn with ``\\r`` at most ``INTERVAL`` apart: by the caller's updates when
they come often, and by a ticker thread when they do not, so a single long step (storing
50,000 lines in one transaction) still shows its seconds going by. Anything else written
to the same terminal goes through ``note`` (or follows ``clear``), which wipes the line
first, so progress never mixes into messages.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from gateway.textwidth import clip, width

INTERVAL = 0.25  # seconds between redraws at most: four a second


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):  # closed, or not a real stream
        return False


def _columns(stream: TextIO) -> int:
    """The terminal's width; 80 when it does not say (a terminal of no size set)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


class Progress:
    """A status line: ``update(text)`` as work goes on, ``note(line)`` to say something
    that stays, ``clear()`` before other output; a context manager that starts the ticker
    and wipes the line at the end.

    ``enabled``: None decides by whether ``stream`` is a terminal; tests pass True or False.
    ``ticker``: redraw from a thread while no update comes (off in tests of the timing).
    """

    def __init__(self, stream: TextIO, *, enabled: bool | None = None,
                 interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic,
                 ticker: bool = True) -> None:
        self.stream = stream
        self.enabled = is_terminal(stream) if enabled is None else enabled
        self.interval = interval
        self.clock = clock
        self._use_ticker = ticker
        self._lock = threading.Lock()
        self._text = ""  # what the caller last said
        self._since = clock()  # when that text was first given (for its seconds)
        self._shown = ""  # what the terminal line holds now
        self._drawn_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if self.enabled and self._use_ticker:
            self._thread = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.clear()

    def update(self, text: str) -> None:
        """Say what is being done now; drawn at once unless a draw was very recent."""
        if not self.enabled:
            return
        with self._lock:
            if text != self._text:
                self._text, self._since = text, self.clock()
            now = self.clock()
            if self._drawn_at is None or now - self._drawn_at >= self.interval:
                self._draw(now)

    def note(self, line: str) -> None:
        """Write a line that stays (an error, a result): the status line is wiped first and
        comes back with the next redraw."""
        with self._lock:
            self._wipe()
            self.stream.write(line if line.endswith("\n") else line + "\n")
            self.stream.flush()

    def clear(self) -> None:
        """Wipe the status line (before output to the same terminal, and at the end)."""
        with self._lock:
            self._wipe()
            self._text = ""

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                if self._text:
                    try:
                        self._draw(self.clock())
                    except (OSError, ValueError):  # the terminal went away: stop drawing
                        return

    def _draw(self, now: float) -> None:
        seconds = int(now - self._since)
        text = self._text + (f" ({seconds} s)" if seconds >= 2 else "")
        text = clip(text, max(10, _columns(self.stream) - 1))  # a wrapped line cannot be redrawn
        if text != self._shown:
            spill = max(0, width(self._shown) - width(text))
            self.stream.write("\r" + text + " " * spill)
            self.stream.flush()
            self._shown = text
        self._drawn_at = now

    def _wipe(self) -> None:
        if self._shown:
            self.stream.write("\r" + " " * width(self._shown) + "\r")
            self.stream.flush()
            self._shown = ""
