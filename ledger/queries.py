"""Questions the console and the CLI ask of the runs: filters, sorts, floors, frontiers, counts.

Every function reads a `SummaryTable` (the runs' summaries, as `Ledger` holds them) with array
operations, so each costs milliseconds on 100,000 runs; lists come back as `RunView`s, whose
rows become `RunSummary` objects only when read. Scores are compared only within a comparison
group (see `ledger.promotion`). Where a question names no scorer, clip or device, it is asked
of the lab's current context: the one of the latest promotion in scope, else of the latest
measured run.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Generic, TypeVar

import numpy as np

from ledger.errors import LedgerError
from ledger.promotion import GROUP, floor_row, in_group, promotions
from ledger.records import STATUSES, VERDICTS, RunRecord, RunStatus, run_number
from ledger.summary import RunSummary
from ledger.table import RunView, SummaryTable

Context = tuple[str | None, str | None, str | None]  # scorer fingerprint, clip fingerprint, device kind
CONTEXT = GROUP[1:]
S = RunStatus


def _status_ranks(table: SummaryTable) -> np.ndarray:
    known = table.categories["status"]
    lut = np.array([STATUSES.index(s) if s in STATUSES else len(STATUSES) for s in known] + [0], np.float64)
    return lut[table.arrays["status"]]


def _label_ranks(table: SummaryTable) -> np.ndarray:
    labels = [label.lower() for label in table.texts["label"]]
    rank = {label: i for i, label in enumerate(sorted(set(labels)))}
    return np.fromiter((rank[label] for label in labels), np.float64, len(labels))


#: Each sort key's values for every row of a table, as floats (NaN: no value, sorted last).
SORT_KEYS: dict[str, Callable[[SummaryTable], np.ndarray]] = {
    "id": lambda t: t.values("number"),
    "created": lambda t: t.values("created"),
    "started": lambda t: t.values("started"),
    "finished": lambda t: t.values("finished"),
    "track": lambda t: t.ranks("track"),
    "label": _label_ranks,
    "status": _status_ranks,
    "priority": lambda t: t.values("priority"),
    "score": lambda t: t.values("score"),
    "bytes": lambda t: t.values("total_bytes"),
    "posenet": lambda t: t.values("posenet"),
    "segnet": lambda t: t.values("segnet"),
    "verdict": lambda t: t.ranks("verdict"),
    "elapsed": lambda t: t.values("finished") - t.values("started"),
}


def filter_runs(
    table: SummaryTable,
    status: str | Collection[str] | None = None,
    track: str | None = None,
    verdict: str | None = None,
    text: str | None = None,
    archived: bool | None = False,
) -> RunView:
    """Runs matching every filter given, by number; verdict "none" means runs without a verdict.

    `status` is one status or several (any of them). `text` matches, case-insensitively, a
    substring of the id, track, label, notes, changed axes, reasons or any `key=value` of the
    spec. Archived runs are left out, unless `archived` is True (only them) or None (all).
    """
    statuses = None if status is None else {status} if isinstance(status, str) else set(status)
    for name in sorted(statuses or ()):
        if name not in STATUSES:
            raise LedgerError(f"unknown status {name!r}: use one of {', '.join(STATUSES)}")
    if verdict is not None and verdict not in (*VERDICTS, "none"):
        raise LedgerError(f"unknown verdict {verdict!r}: use promoted, rejected or none")
    mask = np.ones(len(table), bool)
    if statuses is not None:
        mask &= np.logical_or.reduce([table.is_("status", name) for name in statuses], initial=False)
    if archived is not None:
        mask &= table.arrays["archived"] == archived
    if track is not None:
        mask &= table.is_("track", track)
    if verdict is not None:
        mask &= table.is_("verdict", None if verdict == "none" else verdict)
    needle = text.lower().strip() if text else ""
    if needle:
        mask &= table.matches(needle)
    return table.view(np.flatnonzero(mask))


def order(
    table: SummaryTable, rows: np.ndarray, values: np.ndarray, reverse: bool = False, empty_newest_first: bool = False
) -> np.ndarray:
    """`rows` sorted by `values` (one per row of the table), ties by number; rows without a value last."""
    rows = np.sort(rows)  # a table's rows are in number order: a stable sort keeps ties so
    picked = values[rows]
    valued = ~np.isnan(picked)
    kept = rows[valued][_stable_order(picked[valued])]
    empty = rows[~valued]
    return np.concatenate([kept[::-1] if reverse else kept, empty[::-1] if empty_newest_first else empty])


def _stable_order(keys: np.ndarray) -> np.ndarray:
    """`np.argsort(keys, kind="stable")`, several times faster for the keys a console sorts by."""
    if len(keys) and keys.min() >= 0 and keys.max() < 2**15 and bool(np.all(keys == np.floor(keys))):
        return np.argsort(keys.astype(np.int16), kind="stable")  # ranks of a few values: a radix sort
    quick = np.argsort(keys)
    ordered = keys[quick]
    return np.argsort(keys, kind="stable") if bool(np.any(ordered[1:] == ordered[:-1])) else quick


def sort_values(table: SummaryTable, key: str) -> np.ndarray:
    """The values a `SORT_KEYS` name sorts by, for every row of the table (worked out once per table)."""
    if key not in SORT_KEYS:
        raise LedgerError(f"cannot sort by {key!r}: use one of {', '.join(SORT_KEYS)}")
    return table.derived(f"sort {key}", SORT_KEYS[key])


def sort_runs(view: RunView, key: str = "id", reverse: bool = False) -> RunView:
    """Runs sorted by a `SORT_KEYS` name; runs without a value (no score yet) always come last."""
    return view.table.view(order(view.table, view.rows, sort_values(view.table, key), reverse))


def launch_order(table: SummaryTable) -> RunView:
    """Queued runs in the order they will start: priority high first, then queue position."""
    rows = np.flatnonzero(table.is_("status", RunStatus.QUEUED))
    arrays = table.arrays
    keys = (table.numbers[rows], arrays["position"][rows], -arrays["priority"][rows])
    return table.view(rows[np.lexsort(keys)])


def latest(table: SummaryTable, statuses: Iterable[RunStatus], count: int) -> RunView:
    """The last `count` runs to end (else to be made) in one of these statuses, most recent first."""
    mask = np.zeros(len(table), bool)
    for status in statuses:
        mask |= table.is_("status", status)
    rows = np.flatnonzero(mask)
    when = np.where(
        np.isnan(table.arrays["finished"][rows]), table.arrays["created"][rows], table.arrays["finished"][rows]
    )
    return table.view(rows[np.lexsort((table.numbers[rows], when))][::-1][:count])


def measured(table: SummaryTable) -> RunView:
    """The exact (not approximate) measured runs, by number."""
    return table.view(np.flatnonzero(table.measured & ~table.arrays["approximate"]))


def tracks(table: SummaryTable) -> list[str]:
    """Track names in the order their first run was made."""
    codes = table.arrays["track"]
    seen, first = np.unique(codes, return_index=True)
    names = table.categories["track"]
    return [names[c] for c in seen[np.argsort(first)].tolist()]


def _in_scope(table: SummaryTable, track: str | None, context: Context) -> np.ndarray:
    """Runs of the track (every track when None) whose context matches wherever `context` is given."""
    given = {name: want for name, want in zip(GROUP, (track, *context), strict=True) if want is not None}
    return table.where(**given)


def _context_of(table: SummaryTable, row: int) -> Context:
    return tuple(table.categories[n][table.arrays[n][row]] for n in CONTEXT)  # type: ignore[return-value]


def _latest_measured(table: SummaryTable, scope: np.ndarray) -> int | None:
    measured = np.flatnonzero(scope & table.measured)
    if not len(measured):
        return None
    finished = np.nan_to_num(table.arrays["finished"][measured], nan=0.0)
    return int(measured[np.lexsort((table.numbers[measured], finished))[-1]])


def latest_measured(table: SummaryTable) -> RunSummary | None:
    """The run measured last (by when it finished, then by number), or None."""
    row = _latest_measured(table, np.ones(len(table), bool))
    return None if row is None else table.row(row)


def current_context(table: SummaryTable, scope: np.ndarray | None = None) -> Context | None:
    """Scorer, clip and device of the latest promotion, else of the latest measured run, else None."""
    scope = np.ones(len(table), bool) if scope is None else scope
    row = floor_row(table, scope)
    if row is None:
        row = _latest_measured(table, scope)
    return None if row is None else _context_of(table, row)


def floor(
    table: SummaryTable,
    track: str,
    scorer_fingerprint: str | None = None,
    clip_fingerprint: str | None = None,
    device_kind: str | None = None,
) -> RunSummary | None:
    """The floor of a track: its latest promotion among runs matching the filters given."""
    row = floor_row(table, _in_scope(table, track, (scorer_fingerprint, clip_fingerprint, device_kind)))
    return None if row is None else table.row(row)


def group_floors(table: SummaryTable, track: str) -> list[RunSummary]:
    """The floor of each comparison group (scorer, clip, device) of a track, oldest group first."""
    rows = promotions(table, _in_scope(table, track, (None, None, None)))
    latest = dict(zip(group_ids(table)[rows].tolist(), rows.tolist(), strict=True))  # the last one wins
    return [table.row(row) for row in sorted(latest.values())]


def floors(table: SummaryTable) -> dict[str, RunSummary]:
    """The floor of every track that has one, tracks in order of their first run."""
    found = {name: floor(table, name) for name in tracks(table)}
    return {name: run for name, run in found.items() if run is not None}


class Deltas(Mapping[str, float]):
    """Each measured run's score minus its group's floor, by run id, read from a table's column."""

    def __init__(self, table: SummaryTable, column: np.ndarray) -> None:
        self.table = table
        self.column = column  # one per row of the table, NaN where there is none

    def __getitem__(self, run: str) -> float:
        row = self.table.index_of(run_number(run))
        if row is None or np.isnan(self.column[row]):
            raise KeyError(run)
        return float(self.column[row])

    def __iter__(self) -> Iterator[str]:
        return iter(self.table.view(np.flatnonzero(~np.isnan(self.column))).ids)

    def __len__(self) -> int:
        return int(np.count_nonzero(~np.isnan(self.column)))


def floor_deltas(table: SummaryTable) -> np.ndarray:
    """Score minus the current floor of its comparison group, for every measured run (else NaN)."""
    groups = group_ids(table)
    floor_scores = np.full(int(groups.max(initial=-1)) + 1, np.nan)
    promoted = promotions(table, np.ones(len(table), bool))[::-1]  # the latest promotion of a group first
    found, first = np.unique(groups[promoted], return_index=True)
    floor_scores[found] = table.arrays["score"][promoted[first]]
    return np.where(table.measured, table.arrays["score"] - floor_scores[groups], np.nan)


def group_ids(table: SummaryTable) -> np.ndarray:
    """A number per row naming its comparison group (track, scorer, clip, device): 0, 1, 2..."""
    groups, size = np.zeros(len(table), np.int64), 1
    for name in GROUP:
        width = len(table.categories[name]) + 1
        if size * width >= 2**62:  # renumber before the product of the widths overflows
            groups = np.unique(groups, return_inverse=True)[1].reshape(-1)
            size = int(groups.max(initial=0)) + 1
        groups, size = groups * width + table.arrays[name], size * width
    return np.unique(groups, return_inverse=True)[1].reshape(-1)


@dataclass(frozen=True)
class TurningPoint:
    """A promotion, with how far it moved the floor from the one before it."""

    run: RunSummary
    previous: RunSummary | None
    delta_score: float | None
    delta_bytes: int | None


def turning_points(
    table: SummaryTable,
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
        current = floor(table, track, *given)
        if current is None:
            return []
        given = (current.scorer_fingerprint, current.clip_fingerprint, current.device_kind)
    points, previous = [], None
    for row in promotions(table, in_group(table, (track, *given))).tolist():
        r = table.row(row)
        delta_score = delta_bytes = None
        if previous is not None and previous.score is not None and r.score is not None:
            delta_score = r.score - previous.score
            delta_bytes = (r.total_bytes or 0) - (previous.total_bytes or 0)
        points.append(TurningPoint(r, previous, delta_score, delta_bytes))
        previous = r
    return points


def pareto(
    table: SummaryTable,
    track: str | None = None,
    scorer_fingerprint: str | None = None,
    clip_fingerprint: str | None = None,
    device_kind: str | None = None,
) -> list[RunSummary]:
    """The runs no other run beats on both bytes and score, by bytes ascending.

    Exact (neither approximate nor early estimates) measured runs of the track (every track when
    None), of the context given, filling what is not given from the current context.
    """
    scope = table.exact & _in_scope(table, track, (None, None, None))
    context = current_context(table, scope)
    if context is None:
        return []
    given = (scorer_fingerprint, clip_fingerprint, device_kind)
    wanted = tuple(g if g is not None else c for g, c in zip(given, context, strict=True))
    rows = np.flatnonzero(scope & table.where(**dict(zip(CONTEXT, wanted, strict=True))))
    scores, sizes = table.arrays["score"][rows], table.arrays["total_bytes"][rows]
    rows = rows[np.lexsort((table.numbers[rows], scores, sizes))]
    scores = table.arrays["score"][rows]
    best_before = np.minimum.accumulate(np.concatenate([[np.inf], scores])[:-1])
    return [table.row(r) for r in rows[scores < best_before].tolist()]


def children(table: SummaryTable, parent: int) -> RunView:
    """The runs whose parent is run number `parent`, by number."""
    return table.view(np.flatnonzero(table.arrays["parent"] == parent))


@dataclass(frozen=True)
class NeighbourRow:
    """One child of a run, as a lab notebook's table shows it."""

    run: RunRecord
    delta_score: float | None
    delta_bytes: int | None
    changed: list[str]
    verdict: str | None
    comparable: bool


def _context(record: RunRecord) -> Context:
    return (record.scorer_fingerprint, record.clip_fingerprint, record.device_kind)


def neighbourhood(runs: Iterable[RunRecord], center: RunRecord) -> list[NeighbourRow]:
    """The runs whose parent is `center` (full records: its `children`), by id, with Δscore and Δbytes."""
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


def counts(table: SummaryTable, track: str | None = None) -> Counts:
    """Counts of runs (of one track when given): measured, promoted, rejected, failed, queued..."""
    scope = np.ones(len(table), bool) if track is None else table.is_("track", track)
    tally = {"total": int(scope.sum()), "measured": int((scope & table.measured).sum())}
    for verdict in VERDICTS:
        tally[verdict] = int((scope & table.is_("verdict", verdict)).sum())
    for status in (S.FAILED, S.QUEUED, S.RUNNING, S.CANCELLED, S.INTERRUPTED):
        tally[status] = int((scope & table.is_("status", status)).sum())
    return Counts(**tally)


R = TypeVar("R", RunRecord, RunSummary)


@dataclass(frozen=True)
class Prior(Generic[R]):
    """The run another is measured against, and why: the floor it faces, or (with none) its parent."""

    run: R
    kind: str  # "floor" or "parent"


def prior_of(table: SummaryTable, run: RunRecord | RunSummary) -> Prior[RunSummary] | None:
    """What `run` is compared with; `ledger show` and the console's detail screen both ask this.

    The floor it was reviewed against; a run not reviewed yet (queued, running, failed) faces the
    current floor of its track; with neither (or being that floor itself), its parent. Looks up
    only those runs' rows.
    """
    reviewed = _row_of(table, run.compared_with)
    if reviewed is not None:
        return Prior(reviewed, "floor")
    if run.verdict is None:
        facing = floor(table, run.track)
        if facing is not None and facing.id != run.id:
            return Prior(facing, "floor")
    parent = _row_of(table, run.parent)
    return Prior(parent, "parent") if parent is not None else None


def _row_of(table: SummaryTable, run: str | None) -> RunSummary | None:
    row = None if not run else table.index_of(run_number(run))
    return None if row is None else table.row(row)
