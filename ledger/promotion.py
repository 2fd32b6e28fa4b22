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

from collections.abc import Iterable
from dataclasses import dataclass

from ledger.records import RunRecord, Verdict

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


def in_group(record: RunRecord, group: Group) -> bool:
    """Whether a record's score is comparable with the group's."""
    return record.group == group


def promotion_key(record: RunRecord) -> tuple[float, int]:
    """Order of promotions: when the promoting verdict was given, then run number."""
    return (record.verdict_at or 0.0, record.number)


def floor_among(runs: Iterable[RunRecord]) -> RunRecord | None:
    """The floor of a set of comparable runs: the most recently promoted measured run."""
    promoted = [r for r in runs if r.verdict == Verdict.PROMOTED and r.measured]
    return max(promoted, key=promotion_key, default=None)


def describe_group(record: RunRecord) -> str:
    """The comparison group in words, for reasons: `track main, scorer demo-1a2b3c4d, cpu`."""
    clip = (record.clip_fingerprint or "unknown")[:12]
    scorer = record.scorer or "unknown scorer"
    return f"track {record.track}, scorer {scorer}, clip {clip}, {record.device_kind or 'unknown device'}"


def _changes(record: RunRecord, floor: RunRecord) -> str:
    if not record.changed:
        return ""
    source = "" if record.parent == floor.id or record.parent is None else f" from {record.parent}"
    return f"; changed {', '.join(record.changed)}{source}"


def review(record: RunRecord, runs: Iterable[RunRecord], epsilon: float, now: float) -> Review:
    """The verdict on a freshly measured `record` against the floor of its group in `runs`.

    `runs` may include `record` itself; it is ignored.
    """
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
    floor = floor_among(r for r in runs if r.id != record.id and in_group(r, record.group))
    if floor is None:
        return Review(
            Verdict.PROMOTED, f"first measured run of {describe_group(record)}: it is the first floor", None, now
        )
    floor_score = floor.metrics.ranked_score if floor.metrics else float("nan")
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
