"""Progress bars on stderr for CLI commands; silent when stderr is not a terminal."""

from __future__ import annotations

import sys
from typing import TextIO

from engine.progress import ProgressEvent

_WIDTH = 30


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return f"{minutes:02d}:{secs:02d}"


class ProgressBar:
    """Draws one line per stage, rewritten in place, finished with a newline."""

    def __init__(self, stream: TextIO = sys.stderr, enabled: bool | None = None) -> None:
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self._stage: str | None = None

    def __call__(self, event: ProgressEvent) -> None:
        if not self.enabled:
            return
        if self._stage not in (None, event.stage):
            self.stream.write("\n")
        self._stage = event.stage
        frac = event.done / event.total if event.total else 1.0
        filled = int(frac * _WIDTH)
        bar = "#" * filled + "-" * (_WIDTH - filled)
        self.stream.write(
            f"\r{event.stage:<10} [{bar}] {event.done}/{event.total} "
            f"elapsed {_clock(event.elapsed)} eta {_clock(event.eta)}"
        )
        if event.done >= event.total:
            self.stream.write("\n")
            self._stage = None
        self.stream.flush()
