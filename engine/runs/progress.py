"""Progress as events: a stage, how much of it is done, and when it should end.

The engine emits these; the CLI draws them as bars, the worker pool forwards them as JSON
lines, and the console draws them in its queue pane.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TextIO


@dataclass(frozen=True)
class ProgressEvent:
    """`done` of `total` units of `stage`, `elapsed` seconds in, `eta` seconds to go (None: unknown).

    `detail` says a few more words where a stage has them: the scoring stage's unit and where its
    early verdict stands (`batches · bound 23.91 vs floor 23.08`).
    """

    stage: str
    done: int
    total: int
    elapsed: float
    eta: float | None
    detail: str = ""

    def to_json(self) -> str:
        """One JSON line, tagged so a reader can tell it from other output."""
        return json.dumps({"event": "progress", **asdict(self)})


Sink = Callable[[ProgressEvent], None]


class StageClock:
    """Turns (done, total) counts of one stage into events with an ETA."""

    def __init__(self, stage: str, sink: Sink | None) -> None:
        self.stage = stage
        self.sink = sink
        self.start = time.monotonic()

    def __call__(self, done: int, total: int, detail: str = "") -> None:
        if self.sink is None:
            return
        elapsed = time.monotonic() - self.start
        eta = elapsed / done * (total - done) if done else None
        self.sink(ProgressEvent(self.stage, done, total, elapsed, eta, detail))


def json_lines_sink(stream: TextIO = sys.stdout) -> Sink:
    """A sink that writes each event as a JSON line and flushes, for a pool to follow."""

    def emit(event: ProgressEvent) -> None:
        stream.write(event.to_json() + "\n")
        stream.flush()

    return emit
