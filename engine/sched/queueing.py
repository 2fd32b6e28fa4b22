"""Putting runs in the queue: a sweep's grid, a floor's neighbours, each point checked first.

Planning and queueing are two steps. `sweep_points` and `floor_points` validate every point
and say which ones a finished run has measured already (`Point.measured_by`); `queue_points`
queues the chosen ones. `queue_sweep` and `around_floor_axes` do both in one call, skipping the
measured points when `again` is False. `engine.sched.control` re-exports these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.runs.measured import measure_key, measured_index
from engine.runs.spec import RunSpec, lab_source, parse_spec
from engine.runs.sweep import grid, neighbours, parse_sweep
from ledger import Lab, Ledger, RunRecord
from ledger.errors import UserError

LabLike = Lab | Ledger | str | Path


def ledger_of(lab: LabLike) -> Ledger:
    """The ledger of a lab folder, a `Lab`, or the open `Ledger` itself (reusing its cache)."""
    return lab if isinstance(lab, Ledger) else Ledger(lab if isinstance(lab, Lab) else Lab.open(lab))


@dataclass(frozen=True)
class Point:
    """One run to queue: its label, its validated spec, and the finished run that measured it already."""

    label: str
    spec: RunSpec
    measured_by: RunRecord | None = None


def _expand(axis: str, values: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        out.extend(parse_sweep(f"{axis}={value}")[1] if isinstance(value, str) and ".." in value else [value])
    return out


def _points(ledger: Ledger, labelled: Sequence[tuple[str, RunSpec]], prefix: str = "") -> list[Point]:
    index = measured_index(ledger.records(ledger.measured()), lab_source(ledger.lab))
    return [
        Point(" ".join(part for part in (prefix, label) if part), spec, index.get(measure_key(spec)))
        for label, spec in labelled
    ]


def sweep_points(lab: LabLike, spec: RunSpec, sweeps: Mapping[str, Sequence[Any]]) -> list[Point]:
    """One point per point of the crossed sweeps (none: the spec itself), every one validated.

    `sweeps` maps an axis to its values: typed values, text (`"35"`, `"true"`) or range text
    (`"32..36"`). Labels say the point ("crf=34 film_grain=22"), after the spec's own label if it
    has one. An invalid axis or value raises SpecError.
    """
    expanded = {axis: _expand(axis, values) for axis, values in sweeps.items()}
    return _points(ledger_of(lab), grid(spec, expanded), spec.run.label)


def the_floor(lab: LabLike, track: str) -> RunRecord:
    """The floor of `track`; a track without one is a UserError naming the tracks that have one."""
    ledger = ledger_of(lab)
    floors = ledger.floors()
    if track not in floors:
        known = ", ".join(floors) or "none yet"
        raise UserError(f"track {track!r} has no floor yet (tracks with a floor: {known}): measure a run on it first")
    return ledger.get(floors[track].id)


def floor_points(lab: LabLike, track: str, axes: Mapping[str, Sequence[Any]]) -> list[Point]:
    """The neighbours of `track`'s floor, one axis moved by each offset at a time, every one validated."""
    ledger = ledger_of(lab)
    floor = the_floor(ledger, track)
    base = parse_spec(floor.spec, lab_source(ledger.lab))
    return _points(ledger, neighbours(base, {axis: _expand(axis, offsets) for axis, offsets in axes.items()}))


def queue_points(
    lab: LabLike,
    points: Sequence[Point],
    priority: int = 0,
    parent: str | None = None,
    notes: str | None = None,
    track: str | None = None,
) -> list[RunRecord]:
    """Queue each point as a run (of its spec's track unless `track` is given), child of `parent`.

    The parent is checked before anything is queued.
    """
    ledger = ledger_of(lab)
    if parent is not None:
        parent = ledger.get(parent).id  # an unknown parent fails here, before anything is queued
    return [
        ledger.add_run(
            p.spec.to_dict(),
            track=p.spec.run.track if track is None else track,
            label=p.label,
            notes=p.spec.run.notes if notes is None else notes,
            parent=parent,
            priority=priority,
        )
        for p in points
    ]


def queue_sweep(
    lab: LabLike,
    spec: RunSpec,
    sweeps: Mapping[str, Sequence[Any]],
    priority: int = 0,
    parent: str | None = None,
    again: bool = True,
) -> list[RunRecord]:
    """Queue one run per point of the crossed sweeps (see `sweep_points`), all or nothing.

    The parent is `parent`, else the spec's run.parent; passing it here keeps it out of the
    children's specs, where it would show among their changed axes. `again=False` leaves out
    the points a finished run measured already.
    """
    ledger = ledger_of(lab)
    points = [p for p in sweep_points(ledger, spec, sweeps) if again or p.measured_by is None]
    return queue_points(ledger, points, priority, parent or spec.run.parent or None)


def around_floor(lab: LabLike, track: str, axis: str, offsets: Sequence[Any], priority: int = 0) -> list[RunRecord]:
    """Queue the neighbours of `track`'s floor on one axis (floor's value + each offset); parent = the floor."""
    return around_floor_axes(lab, track, {axis: offsets}, priority)


def around_floor_axes(
    lab: LabLike, track: str, axes: Mapping[str, Sequence[Any]], priority: int = 0, again: bool = True
) -> list[RunRecord]:
    """`around_floor` on several axes, still one axis changed per run; all validated, then queued.

    `again=False` leaves out the neighbours a finished run measured already.
    """
    ledger = ledger_of(lab)
    floor = the_floor(ledger, track)
    points = [p for p in floor_points(ledger, track, axes) if again or p.measured_by is None]
    return queue_points(ledger, points, priority, floor.id, notes=f"around the floor {floor.id}", track=floor.track)
