"""Progress bars on stderr for CLI commands; silent when stderr is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from engine.runs.progress import ProgressEvent, StageClock

_WIDTH = 30


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return f"{minutes:02d}:{secs:02d}"


class ProgressBar:
    """Draws one line per stage, rewritten in place, finished with a newline."""

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        # sys.stderr as it is now, not as it was at import (a test's captured stream, closed since).
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._stage: str | None = None

    def __call__(self, event: ProgressEvent) -> None:
        if not self.enabled or event.total <= 0:
            return  # a stage that has begun but not counted yet: its bar comes with its first count
        if self._stage not in (None, event.stage):
            self.stream.write("\n")
        self._stage = event.stage
        frac = event.done / event.total if event.total else 1.0
        filled = int(frac * _WIDTH)
        bar = "#" * filled + "-" * (_WIDTH - filled)
        detail = f" {event.detail}" if event.detail else ""  # e.g. `batches · bound 23.91 vs floor 23.08`
        self.stream.write(
            f"\r{event.stage:<10} [{bar}] {event.done}/{event.total}{detail} "
            f"elapsed {_clock(event.elapsed)} eta {_clock(event.eta)}\x1b[K"  # clear what a longer line left
        )
        if event.done >= event.total:
            self.stream.write("\n")
            self._stage = None
        self.stream.flush()


def stage_progress(bar: ProgressBar) -> Callable[[str, int, int], None]:
    """A `progress(stage, done, total)` callback that draws each stage on `bar`, timed with its own ETA."""
    clocks: dict[str, StageClock] = {}

    def report(stage: str, done: int, total: int) -> None:
        clocks.setdefault(stage, StageClock(stage, bar))(done, total)

    return report
