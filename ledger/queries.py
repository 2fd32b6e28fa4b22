"""Questions the console and the CLI ask of the runs: filters, sorts, floors, frontiers, counts.

Every function takes the runs (a list of `RunRecord`, as `Ledger` holds them) and reads only;
`Ledger` calls these on its cached records. Scores are compared only within a comparison group
(see `ledger.promotion`). Where a question names no scorer, clip or device, it is asked of the
lab's current context: the one of the latest promotion in scope, else of the latest measured run.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from ledger.errors import LedgerError
from ledger.promotion import floor_among, promotion_key
from ledger.records import STATUSES, VERDICTS, RunRecord, run_number

Context = tuple[str | None, str | None, str | None]  # scorer fingerprint, clip fingerprint, device kind

SORT_KEYS: dict[str, Callable[[RunRecord], Any]] = {
    "id": lambda r: r.number,
    "created": lambda r: r.created,
    "started": lambda r: r.started,
    "finished": lambda r: r.finished,
    "track": lambda r: r.track,
    "label": lambda r: r.label.lower(),
    "status": lambda r: STATUSES.index(r.status) if r.status in STATUSES else len(STATUSES),
    "priority": lambda r: r.priority,
    "score": lambda r: r.score,
    "bytes": lambda r: r.total_bytes,
    "posenet": lambda r: r.metrics.posenet if r.metrics else None,
    "segnet": lambda r: r.metrics.segnet if r.metrics else None,
    "verdict": lambda r: r.verdict,
    "elapsed": lambda r: r.elapsed,
}


def filter_runs(
    runs: Iterable[RunRecord],
    status: str | Collection[str] | None = None,
    track: str | None = None,
    verdict: str | None = None,
    text: str | None = None,
    archived: bool | None = False,
) -> list[RunRecord]:
    """Runs matching every filter given; verdict "none" means runs without a verdict.

    `status` is one status or several (any of them). `text` matches, case-insensitively, a
    substring of the id, track, label, notes, changed axes, reasons or any `key=value` of the
    spec. Archived runs are left out, unless `archived` is True (only them) or None (all).
    """
    statuses = {status} if isinstance(status, str) else set(status or ())
    for name in sorted(statuses):
        if name not in STATUSES:
            raise LedgerError(f"unknown status {name!r}: use one of {', '.join(STATUSES)}")
    if verdict is not None and verdict not in (*VERDICTS, "none"):
        raise LedgerError(f"unknown verdict {verdict!r}: use promoted, rejected or none")
    wanted_verdict = None if verdict == "none" else verdict
    needle = text.lower().strip() if text else ""
    return [
        r
        for r in runs
        if (not statuses or r.status in statuses)
        and (track is None or r.track == track)
        and (verdict is None or r.verdict == wanted_verdict)
        and (archived is None or r.archived == archived)
        and (not needle or needle in r.search_text)
    ]


def sort_runs(runs: Iterable[RunRecord], key: str = "id", reverse: bool = False) -> list[RunRecord]:
    """Runs sorted by a `SORT_KEYS` name; runs without a value (no score yet) always come last."""
    getter = SORT_KEYS.get(key)
    if getter is None:
        raise LedgerError(f"cannot sort by {key!r}: use one of {', '.join(SORT_KEYS)}")
    valued: list[RunRecord] = []
    empty: list[RunRecord] = []
    for r in runs:
        (empty if getter(r) is None else valued).append(r)
    valued.sort(key=lambda r: (getter(r), r.number), reverse=reverse)
    empty.sort(key=lambda r: r.number)
    return valued + empty


def launch_order(runs: Iterable[RunRecord]) -> list[RunRecord]:
    """Queued runs in the order they will start: priority high first, then queue position."""
    return sorted((r for r in runs if r.status == "queued"), key=lambda r: (-r.priority, r.position, r.number))


def tracks(runs: Iterable[RunRecord]) -> list[str]:
    """Track names in the order their first run was made."""
    return list(dict.fromkeys(r.track for r in runs))


def _context(record: RunRecord) -> Context:
    return (record.scorer_fingerprint, record.clip_fingerprint, record.device_kind)


def _matches(record: RunRecord, track: str | None, context: Context) -> bool:
    if track is not None and record.track != track:
        return False
    return all(want is None or have == want for want, have in zip(context, _context(record), strict=True))


def current_context(runs: Iterable[RunRecord]) -> Context | None:
    """Scorer, clip and device of the latest promotion, else of the latest measured run, else None."""
    measured = [r for r in runs if r.measured]
    promoted = [r for r in measured if r.verdict == "promoted"]
    if promoted:
        return _context(max(promoted, key=promotion_key))
    if measured:
        return _context(max(measured, key=lambda r: (r.finished or 0.0, r.number)))
    return None


def floor(
    runs: Iterable[RunRecord],
    track: str,
    scorer_fingerprint: str | None = None,
    clip_fingerprint: str | None = None,
    device_kind: str | None = None,
) -> RunRecord | None:
    """The floor of a track: its latest promotion among runs matching the filters given."""
    context = (scorer_fingerprint, clip_fingerprint, device_kind)
    return floor_among(r for r in runs if _matches(r, track, context))


def floors(runs: Sequence[RunRecord]) -> dict[str, RunRecord]:
    """The floor of every track that has one, tracks in order of their first run."""
    result = {}
    for name in tracks(runs):
        found = floor(runs, name)
        if found is not None:
            result[name] = found
    return result


def floor_deltas(runs: Iterable[RunRecord]) -> dict[str, float]:
    """Score minus the current floor of its comparison group, for every measured run."""
    by_group: dict[tuple[Any, ...], list[RunRecord]] = {}
    for r in runs:
        if r.measured:
            by_group.setdefault(r.group, []).append(r)
    deltas: dict[str, float] = {}
    for members in by_group.values():
        best = floor_among(members)
        if best is None or best.score is None:
            continue
        for r in members:
            if r.score is not None:
                deltas[r.id] = r.score - best.score
    return deltas


@dataclass(frozen=True)
class TurningPoint:
    """A promotion, with how far it moved the floor from the one before it."""

    run: RunRecord
    previous: RunRecord | None
    delta_score: float | None
    delta_bytes: int | None


def turning_points(
    runs: Sequence[RunRecord],
    track: str,
    scorer_fingerprint: str | None = None,
    clip_fingerprint: str | None = None,
    device_kind: str | None = None,
) -> list[TurningPoint]:
    """The promotions of a track's comparison group in order, each with its deltas.

    The group is the current floor's unless scorer, clip and device are all given.
    """
    given = (scorer_fingerprint, clip_fingerprint, device_kind)
    if None in given:
        current = floor(runs, track, *given)
        if current is None:
            return []
        given = _context(current)
    promoted = sorted(
        (r for r in runs if _matches(r, track, given) and r.measured and r.verdict == "promoted"),
        key=promotion_key,
    )
    points, previous = [], None
    for r in promoted:
        delta_score = delta_bytes = None
        if previous is not None and previous.score is not None and r.score is not None:
            delta_score = r.score - previous.score
            delta_bytes = (r.total_bytes or 0) - (previous.total_bytes or 0)
        points.append(TurningPoint(r, previous, delta_score, delta_bytes))
        previous = r
    return points


def pareto(
    runs: Sequence[RunRecord],
    track: str | None = None,
    scorer_fingerprint: str | None = None,
    clip_fingerprint: str | None = None,
    device_kind: str | None = None,
) -> list[RunRecord]:
    """The runs no other run beats on both bytes and score, by bytes ascending.

    Exact (not approximate) measured runs of the track (every track when None), of the context
    given, filling what is not given from the current context.
    """
    scope = [r for r in runs if r.measured and not r.approximate and (track is None or r.track == track)]
    context = current_context(scope)
    if context is None:
        return []
    wanted = tuple(
        g if g is not None else c
        for g, c in zip((scorer_fingerprint, clip_fingerprint, device_kind), context, strict=True)
    )
    candidates = sorted(
        (r for r in scope if _context(r) == wanted),
        key=lambda r: (r.total_bytes, r.score, r.number),
    )
    frontier: list[RunRecord] = []
    for r in candidates:
        if not frontier or (r.score is not None and frontier[-1].score is not None and r.score < frontier[-1].score):
            frontier.append(r)
    return frontier


@dataclass(frozen=True)
class NeighbourRow:
    """One child of a run, as a lab notebook's table shows it."""

    run: RunRecord
    delta_score: float | None
    delta_bytes: int | None
    changed: list[str]
    verdict: str | None
    comparable: bool


def neighbourhood(runs: Iterable[RunRecord], center: RunRecord) -> list[NeighbourRow]:
    """The runs whose parent is `center`, by id, with their Δscore and Δbytes against it."""
    rows = []
    for r in sorted((r for r in runs if r.parent == center.id), key=lambda r: r.number):
        comparable = r.measured and center.measured and _context(r) == _context(center)
        delta_score = delta_bytes = None
        if r.score is not None and center.score is not None:
            delta_score = r.score - center.score
            delta_bytes = (r.total_bytes or 0) - (center.total_bytes or 0)
        rows.append(NeighbourRow(r, delta_score, delta_bytes, list(r.changed), r.verdict, comparable))
    return rows


@dataclass(frozen=True)
class Counts:
    """How many runs are in each state; also readable as `counts["promoted"]`."""

    total: int = 0
    measured: int = 0
    promoted: int = 0
    rejected: int = 0
    failed: int = 0
    queued: int = 0
    running: int = 0
    cancelled: int = 0
    interrupted: int = 0

    def __getitem__(self, name: str) -> int:
        if name not in self.as_dict():
            raise KeyError(name)
        return int(getattr(self, name))

    def as_dict(self) -> dict[str, int]:
        """The counts by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def counts(runs: Iterable[RunRecord], track: str | None = None) -> Counts:
    """Counts of runs (of one track when given): measured, promoted, rejected, failed, queued..."""
    tally = dict.fromkeys(Counts().as_dict(), 0)
    for r in runs:
        if track is not None and r.track != track:
            continue
        tally["total"] += 1
        tally["measured"] += r.measured
        if r.verdict in VERDICTS:
            tally[r.verdict] += 1
        if r.status in tally and r.status != "done":
            tally[r.status] += 1
    return Counts(**tally)


@dataclass(frozen=True)
class Prior:
    """The run another is measured against, and why: the floor it faces, or (with none) its parent."""

    run: RunRecord
    kind: str  # "floor" or "parent"


def prior_of(runs: Sequence[RunRecord], run: RunRecord) -> Prior | None:
    """What `run` is compared with; `ledger show` and the console's detail screen both ask this.

    The floor it was reviewed against; a run not reviewed yet (queued, running, failed) faces the
    current floor of its track; with neither (or being that floor itself), its parent.
    """
    by_id = {r.id: r for r in runs}
    reviewed = by_id.get(run.compared_with or "")
    if reviewed is not None:
        return Prior(reviewed, "floor")
    if run.verdict is None:
        facing = floor(runs, run.track)
        if facing is not None and facing.id != run.id:
            return Prior(facing, "floor")
    parent = by_id.get(run.parent or "")
    return Prior(parent, "parent") if parent is not None else None


def find(runs: Iterable[RunRecord], run_id: str) -> RunRecord | None:
    """The run with this id (any spelling `run_number` accepts), or None."""
    number = run_number(run_id)
    return next((r for r in runs if r.number == number), None)
