"""The plain frozen values the console draws, as `LabClient` hands them over.

Kept apart from the client so that widgets and screens can name these types without importing
the engine behind the client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ledger import Counts, Deltas, Progress, RunRecord, RunSummary, RunView, SummaryTable, run_number
from ledger.previews import PreviewEntry
from ledger.queries import Prior


@dataclass(frozen=True)
class Snapshot:
    """Everything the main screen draws from the history, read at one revision: the runs' summaries.

    `newest_only` marks the first page, read from the newest runs alone so that the first screen
    of rows paints before the rest of a long history is read: its other fields are left empty.
    """

    revision: Any
    table: SummaryTable
    deltas: Deltas
    floors: dict[str, RunSummary]
    counts: Counts
    tracks: list[str]
    paused: bool
    queued: Sequence[RunSummary]
    running: Sequence[RunSummary]
    stages: dict[str, tuple[str, ...]] = field(default_factory=dict)  # of the running runs
    scorer: str | None = None
    scorer_demo: bool = False
    latest_track: str = ""  # the track of the run measured last
    newest_only: bool = False

    @property
    def runs(self) -> RunView:
        """Every run, by id."""
        return self.table.view()

    def find(self, run_id: str | None) -> RunSummary | None:
        """A run's summary, or None when it is not in this snapshot."""
        row = self.table.index_of(run_number(run_id)) if run_id else None
        return None if row is None else self.table.row(row)

    @property
    def floor_ids(self) -> set[str]:
        """Ids of the runs that are the floor of their track now."""
        return {r.id for r in self.floors.values()}


@dataclass(frozen=True)
class SchedulerInfo:
    """The scheduler as the status line shows it, and the Ray cluster when its queue runs on one."""

    state: str = "unknown"  # running, paused, stopping, stopped, unknown
    slots: int | None = None
    address: str = ""  # the Ray dashboard; empty when runs are local processes
    resources: dict[str, list[float]] = field(default_factory=dict)  # {"GPU": [busy, total]} of the cluster
    jobs: dict[str, tuple[str, str]] = field(default_factory=dict)  # run id -> (Ray state, why it waits)
    autopilots: tuple[str, ...] = ()  # each running autopilot's line: "autopilot 7/40 · best 1.731 (r0123)"
    held: bool = False  # stopped by a person (`sched stop`): the console does not start it


@dataclass(frozen=True)
class Live:
    """What changes several times a second: per-run progress and the scheduler's state."""

    scheduler: SchedulerInfo
    progress: dict[str, Progress] = field(default_factory=dict)


@dataclass(frozen=True)
class PerPairSeries:
    """PoseNet and SegNet distortion per frame pair, as plain lists for plotting."""

    posenet: list[float]
    segnet: list[float]


@dataclass(frozen=True)
class RunDetail:
    """One run with what the detail screen compares it against."""

    run: RunRecord
    prior: Prior[RunRecord] | None
    parent: RunRecord | None
    per_pair: PerPairSeries | None
    prior_per_pair: PerPairSeries | None
    log_tail: str
    artifacts: str
    curve: tuple[dict[str, float], ...] = ()  # a training run's curve.jsonl, by step


@dataclass(frozen=True)
class PreviewPair:
    """One previewed pair, decoded: the frame SegNet saw on each side (384x512x3) and its class maps (384x512)."""

    entry: PreviewEntry
    reference: np.ndarray
    candidate: np.ndarray
    reference_classes: np.ndarray
    candidate_classes: np.ndarray
    floor: np.ndarray | None  # the floor run's candidate frame of this pair, when it previews the pair


@dataclass(frozen=True)
class Compare:
    """What the compare view draws for a run: its previewed pairs, or one line saying why there are none."""

    run: RunRecord
    pairs: tuple[PreviewPair, ...] = ()
    clip_pairs: int = 0
    segnet_per_pair: tuple[float, ...] = ()  # NaN for pairs an early verdict never scored
    floor_id: str | None = None
    missing: str = ""
