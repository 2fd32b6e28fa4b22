"""The floor a run may be rejected early against: read from the ledger, or carried by a job's ticket.

A worker on this machine asks the ledger just before scoring, so a floor promoted while the run
encoded counts. A cluster job never opens the ledger (see `engine.sched.job_files`): the scheduler
puts the floors of the run's track in its ticket at launch, one per comparison group (scorer,
clip, device), and the job takes its own group's once it knows its scorer and device. Either way
the floor's per-pair distortions are read from its run folder, for the rule to weigh each batch
by (`engine.scoring.early`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ledger import Lab, Ledger, RunRecord, load_per_pair
from ledger.errors import UserError

if TYPE_CHECKING:  # the scheduler writes tickets without loading the scoring engine
    from engine.runs.pipeline import FloorLookup
    from engine.scoring.early import Floor


@dataclass(frozen=True)
class GroupFloor:
    """A comparison group's floor as a ticket carries it: the group, the run, its score and folder."""

    scorer_fingerprint: str
    clip_fingerprint: str
    device_kind: str
    run_id: str
    score: float
    epsilon: float
    artifacts: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupFloor:
        """Read back what `asdict` wrote into a ticket."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for the ticket's JSON."""
        return asdict(self)


def load_floor(lab: Lab, run_id: str, score: float, epsilon: float, artifacts: str | None) -> Floor:
    """A measured run as the floor a run is judged against, with its per-pair values when they can be read."""
    from engine.scoring.early import Floor

    try:
        per_pair = load_per_pair(lab, run_id, artifacts)
    except UserError:
        per_pair = None  # a damaged file: the rule does without the floor's per-pair values
    if per_pair is None:
        return Floor(run_id, score, epsilon)
    return Floor(run_id, score, epsilon, tuple(per_pair.posenet), tuple(per_pair.segnet))


def as_floor(ledger: Ledger, record: RunRecord) -> Floor | None:
    """A measured run of the ledger as a floor (None when it has no score)."""
    if record.score is None:
        return None
    return load_floor(ledger.lab, record.id, record.score, ledger.epsilon, record.artifacts)


def ledger_floors(ledger: Ledger, track: str) -> FloorLookup:
    """The floors of `track` as the ledger holds them when asked (a worker on this machine)."""

    def lookup(scorer_fingerprint: str, clip_fingerprint: str, device_kind: str) -> Floor | None:
        found = ledger.floor(
            track, scorer_fingerprint=scorer_fingerprint, clip_fingerprint=clip_fingerprint, device_kind=device_kind
        )
        # None: the first run of its group, scored in full: it may become the floor.
        return None if found is None else as_floor(ledger, ledger.get(found.id))

    return lookup


def group_floors(ledger: Ledger, track: str) -> tuple[GroupFloor, ...]:
    """The floors of `track`'s comparison groups now, for a job's ticket."""
    found = []
    for summary in ledger.group_floors(track):
        if summary.score is None:
            continue
        record = ledger.get(summary.id)
        group = (record.scorer_fingerprint or "", record.clip_fingerprint or "", record.device_kind or "")
        found.append(GroupFloor(*group, record.id, summary.score, ledger.epsilon, record.artifacts or ""))
    return tuple(found)


def ticket_floors(lab: Lab, floors: Iterable[GroupFloor]) -> FloorLookup:
    """The floors a ticket carries, as a job looks its group's up (without the ledger)."""
    by_group = {(f.scorer_fingerprint, f.clip_fingerprint, f.device_kind): f for f in floors}

    def lookup(scorer_fingerprint: str, clip_fingerprint: str, device_kind: str) -> Floor | None:
        found = by_group.get((scorer_fingerprint, clip_fingerprint, device_kind))
        if found is None:
            return None
        return load_floor(lab, found.run_id, found.score, found.epsilon, found.artifacts or None)

    return lookup
