"""Progress as events: a stage, how much of it is done, and when it should end.

The engine emits these; the CLI draws them as bars, the worker pool forwards them as JSON
lines, and the console draws them in its queue pane.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TextIO


@dataclass(frozen=True)
class ProgressEvent:
    """`done` of `total` units of `stage`, `elapsed` seconds in, `eta` seconds to go (None: unknown).

    `detail` says a few more words where a stage has them: the scoring stage's unit and where its
    early verdict stands (`batches · bound 23.91 vs floor 23.08`). `metrics` are a stage's live
    figures, e.g. a training step's loss terms and score estimate.
    """

    stage: str
    done: int
    total: int
    elapsed: float
    eta: float | None
    detail: str = ""
    metrics: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        """One JSON line, tagged so a reader can tell it from other output."""
        data = asdict(self)
        if not self.metrics:
            del data["metrics"]
        return json.dumps({"event": "progress", **data})


Sink = Callable[[ProgressEvent], None]


class StageClock:
    """Turns (done, total) counts of one stage into events with an ETA."""

    def __init__(self, stage: str, sink: Sink | None) -> None:
        self.stage = stage
        self.sink = sink
        self.start = time.monotonic()

    def __call__(self, done: int, total: int, detail: str = "", metrics: dict[str, float] | None = None) -> None:
        if self.sink is None:
            return
        elapsed = time.monotonic() - self.start
        eta = elapsed / done * (total - done) if done else None
        self.sink(ProgressEvent(self.stage, done, total, elapsed, eta, detail, dict(metrics or {})))


Log = Callable[[str], None]


class Stages:
    """Times each stage of a run and turns its counts into progress events."""

    def __init__(self, sink: Sink | None, log: Log) -> None:
        self.sink = sink
        self.log = log
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[StageClock]:
        """Run one stage: logged, timed, and reported through the clock it yields."""
        self.log(f"stage {name}: start")
        if self.sink is not None:
            # Said at once (0 of an unknown total): the console shows the stage that runs, not the last one's 60/60.
            self.sink(ProgressEvent(name, 0, 0, 0.0, None))
        clock = StageClock(name, self.sink)
        start = time.monotonic()
        yield clock
        self.timings[name] = round(time.monotonic() - start, 3)
        self.log(f"stage {name}: done in {self.timings[name]:.1f} s")


def json_lines_sink(stream: TextIO = sys.stdout) -> Sink:
    """A sink that writes each event as a JSON line and flushes, for a pool to follow."""

    def emit(event: ProgressEvent) -> None:
        stream.write(event.to_json() + "\n")
        stream.flush()

    return emit
