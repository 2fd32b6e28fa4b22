"""Promotion review: does a finished run lower the floor of its track?

Scores are only comparable within a *comparison group*: the same track, scorer fingerprint,
source clip fingerprint and scoring device kind (cpu, cuda and mps scores of one archive differ
measurably, PoseNet most of all). Within its group:

- the **floor** is the run promoted most recently (by the time of its promoting verdict, a
  person's override included), so a person who promotes a run makes it the floor, and one who
  rejects the floor hands the floor back to the promotion before it;
- the first measured run of a group is its first floor;
- a run is promoted when its score is below the floor's by more than epsilon (default 0.005,
  `[promotion] epsilon` in lab.toml); a tie, or a gain of epsilon or less, is rejected;
- a run whose score is approximate (a subset of pairs, a fast path) is never promoted.

The score compared is `Metrics.ranked_score`: the charged score when the run has one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ledger.records import RunRecord, Verdict
from ledger.summary import RunSummary
from ledger.table import SummaryTable

DEFAULT_EPSILON = 0.005
#: Float noise allowed when a gain equals epsilon exactly (2.190 - 2.185 is 0.00499999...).
TOLERANCE = 1e-9

Group = tuple[str, str | None, str | None, str | None]


@dataclass(frozen=True)
class Review:
    """The automatic verdict on one run, with the floor it was compared with."""

    verdict: Verdict
    reason: str
    floor: str | None
    at: float

    def to_doc(self) -> dict[str, object]:
        """The stored form, kept in the run's document as `review`."""
        return {"verdict": self.verdict, "reason": self.reason, "floor": self.floor, "at": self.at}


def promotions(table: SummaryTable, among: np.ndarray) -> np.ndarray:
    """The rows of promoted measured runs in `among` (a mask), in the order of their promotions.

    Promotions are ordered by when the promoting verdict was given, then by run number; the
    last is the floor of a group of comparable runs.
    """
    rows = np.flatnonzero(among & table.is_("verdict", Verdict.PROMOTED) & table.measured)
    when = np.nan_to_num(table.arrays["verdict_at"][rows], nan=0.0)
    return rows[np.lexsort((table.numbers[rows], when))]


def floor_row(table: SummaryTable, among: np.ndarray) -> int | None:
    """The floor of the comparable runs in `among` (a mask): the row of the latest promotion, or None."""
    rows = promotions(table, among)
    return int(rows[-1]) if len(rows) else None


GROUP = ("track", "scorer_fingerprint", "clip_fingerprint", "device_kind")


def in_group(table: SummaryTable, group: Group) -> np.ndarray:
    """Which runs' scores are comparable with the group's (exactly its track, scorer, clip and device)."""
    return table.where(**dict(zip(GROUP, group, strict=True)))


def describe_group(record: RunRecord) -> str:
    """The comparison group in words, for reasons: `track main, scorer demo-1a2b3c4d, cpu`."""
    clip = (record.clip_fingerprint or "unknown")[:12]
    scorer = record.scorer or "unknown scorer"
    return f"track {record.track}, scorer {scorer}, clip {clip}, {record.device_kind or 'unknown device'}"


def _changes(record: RunRecord, floor: RunSummary) -> str:
    if not record.changed:
        return ""
    source = "" if record.parent == floor.id or record.parent is None else f" from {record.parent}"
    return f"; changed {', '.join(record.changed)}{source}"


def group_floor(table: SummaryTable, record: RunRecord) -> RunSummary | None:
    """The floor `record` is reviewed against: that of its group among the other runs of `table`."""
    row = floor_row(table, in_group(table, record.group) & (table.numbers != record.number))
    return None if row is None else table.row(row)


def review(record: RunRecord, floor: RunSummary | None, epsilon: float, now: float) -> Review:
    """The verdict on a freshly measured `record` against the floor of its group (`group_floor`)."""
    if record.metrics is None:
        raise ValueError(f"{record.id} has no metrics to review")
    score = record.metrics.ranked_score
    if record.approximate:
        return Review(
            Verdict.REJECTED,
            f"approximate score {score:.3f}: approximate scores are never promoted; rerun it exactly to review it",
            None,
            now,
        )
    if floor is None:
        return Review(
            Verdict.PROMOTED, f"first measured run of {describe_group(record)}: it is the first floor", None, now
        )
    floor_score = floor.score if floor.score is not None else float("nan")
    delta = score - floor_score
    versus = f"{_signed(delta)} vs floor {floor_score:.3f} ({floor.id})"
    changes = _changes(record, floor)
    if -delta > epsilon + TOLERANCE:
        return Review(Verdict.PROMOTED, f"{versus}: new floor{changes}", floor.id, now)
    if abs(delta) <= TOLERANCE:
        why = ": a tie does not lower the floor"
    elif delta < 0:
        why = f": lowers the floor by no more than epsilon {epsilon:g}"
    else:
        why = ""
    return Review(Verdict.REJECTED, f"{versus}{why}{changes}", floor.id, now)


def _signed(delta: float) -> str:
    if abs(delta) <= TOLERANCE:
        return "±0.000"
    text = f"{delta:+.3f}"
    if text in ("+0.000", "-0.000"):
        text = f"{delta:+.2g}"
    return text
