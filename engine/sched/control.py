"""The scheduler's client: what the CLI and the console call to run, watch and steer a lab's queue.

    from engine.sched import control
    control.ensure_running(lab)                       # the console: start one unless one runs
    control.queue_sweep(lab, spec, {"crf": ["32..36"]})
    control.status(lab).running                       # stage, progress, ETA, slot, GPU per run

`lab` is a lab folder, a `Lab`, or an open `Ledger`: pass the console's own `Ledger` so each call
reuses its cache instead of reading the run history again. Queue changes go through the ledger,
and the scheduler notices them within a tick; only start and stop talk to its process (a signal).
`start`, `stop` and `cancel` wait for processes (up to seconds): call them from a thread worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.runs.spec import RunSpec, lab_source, parse_spec
from engine.runs.sweep import grid, neighbours, parse_sweep
from engine.sched.pool import (
    alive,
    carry_checkpoint,
    child_env,
    kill_run,
    log_tail,
    python_command,
    remove_partial,
    run_tag,
)
from engine.sched.ray_backend import PROBE_TIMEOUT
from engine.sched.ray_client import connect
from engine.sched.state import (
    SchedulerError,
    SchedulerPaths,
    SchedulerRunning,
    SchedulerState,
    holder,
    lock_held,
    read_state,
    slot_gpu,
)
from ledger import Lab, Ledger, RunRecord, RunStatus
from ledger.errors import UserError

__all__ = [
    "FailedRun",
    "FloorRun",
    "Glance",
    "QueuedRun",
    "RunningRun",
    "SchedulerError",
    "SchedulerRunning",
    "SchedulerStatus",
    "around_floor",
    "around_floor_axes",
    "bump",
    "cancel",
    "ensure_running",
    "glance",
    "parse_sweep",
    "pause",
    "queue_sweep",
    "resume",
    "retry",
    "start",
    "status",
    "stop",
]

LabLike = Lab | Ledger | str | Path
START_TIMEOUT = 30.0
RETRYABLE = ("failed", "cancelled", "interrupted")


def _ledger(lab: LabLike) -> Ledger:
    return lab if isinstance(lab, Ledger) else Ledger(lab if isinstance(lab, Lab) else Lab.open(lab))


def _lab(lab: LabLike) -> Lab:
    if isinstance(lab, Ledger):
        return lab.lab
    return lab if isinstance(lab, Lab) else Lab.open(lab)


# The scheduler process.


def start(
    lab: LabLike,
    slots: int | None = None,
    timeout: float = START_TIMEOUT,
    backend: str | None = None,
    ray_address: str | None = None,
) -> int:
    """Start a detached scheduler for `lab` and return its pid once it holds the lab.

    Raises SchedulerRunning (a UserError) if one already runs, SchedulerError if it fails to start.
    `slots`: runs at a time (default: one per visible GPU, else 1; on Ray, from the cluster).
    `backend`, `ray_address`: override lab.toml's `[scheduler]`. A Ray cluster out of reach is
    refused here, at once; its probe job runs in the scheduler, so a Ray start may take longer.
    """
    lab = _lab(lab)
    if slots is not None and slots < 1:
        raise SchedulerError(f"--slots {slots} must be at least 1")
    settings = lab.scheduler_settings().overridden(backend, ray_address)
    running = holder(lab)
    if running is not None:
        raise SchedulerRunning(running, lab)
    if settings.backend == "ray":
        connect(settings).resources()
        timeout += PROBE_TIMEOUT
    args = ["--lab", str(lab.root), "--spawn"] + ([] if slots is None else ["--slots", str(slots)])
    args += [] if backend is None else ["--backend", settings.backend]
    args += [] if ray_address is None else ["--ray-address", settings.ray_address]
    launcher = subprocess.run(
        python_command("engine.sched.scheduler", *args),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    if launcher.returncode != 0 or not launcher.stdout.strip().isdigit():
        said = (launcher.stderr.strip().splitlines() or ["no message"])[-1]
        raise SchedulerError(f"could not start the scheduler for lab {lab.root}: {said}")
    return _wait_started(lab, int(launcher.stdout.strip()), timeout)


def _wait_started(lab: Lab, pid: int, timeout: float) -> int:
    log = SchedulerPaths.of(lab).log
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(lab)
        if state is not None and state.pid == pid and state.state in ("running", "stopping") and lock_held(lab):
            return pid
        if not alive(pid):
            other = holder(lab)
            if other is not None:
                raise SchedulerRunning(other, lab)  # another start won the race
            said = (log_tail(log, 1) or "no message").strip()
            raise SchedulerError(f"the scheduler stopped as it started: {said} (see {log})")
        time.sleep(0.05)
    raise SchedulerError(f"the scheduler (pid {pid}) did not come up within {timeout:.0f} s: see {log}")


def ensure_running(lab: LabLike, slots: int | None = None) -> int:
    """The pid of the lab's scheduler, starting one only if none runs (never a second one)."""
    running = holder(_lab(lab))
    if running is not None:
        return running.pid
    try:
        return start(lab, slots)
    except SchedulerRunning as exc:
        return exc.state.pid


def stop(lab: LabLike, now: bool = False, wait: bool = True, timeout: float | None = None) -> int | None:
    """Stop the lab's scheduler; returns its pid, or None when none was running.

    Gracefully by default: it launches nothing more and exits when its running runs finish.
    `now`: it kills its workers, marks their runs interrupted and requeues them. `wait`: return
    once it has exited (at most `timeout` seconds, then SchedulerError).
    """
    lab = _lab(lab)
    state = holder(lab)
    if state is None or not state.pid:
        return None
    try:
        os.kill(state.pid, signal.SIGUSR1 if now else signal.SIGTERM)
    except ProcessLookupError:
        return None
    deadline = None if timeout is None else time.monotonic() + timeout
    while wait and (lock_held(lab) or alive(state.pid)):
        if deadline is not None and time.monotonic() > deadline:
            raise SchedulerError(
                f"the scheduler (pid {state.pid}) is still stopping after {timeout:.0f} s, waiting for its "
                "running runs: stop it with --now to interrupt them (they are requeued)"
            )
        time.sleep(0.05)
    return state.pid


# What it is doing.


@dataclass(frozen=True)
class RunningRun:
    """A running run: where it is (stage, done of total, ETA of the stage) and where it runs."""

    id: str
    track: str
    label: str
    pid: int | None
    slot: int | None
    gpu: str | None
    started: float | None
    elapsed: float | None  # seconds since the run started
    stage: str | None
    done: int
    total: int
    fraction: float
    eta: float | None  # seconds left in the current stage, when known
    updated: float | None  # when the progress was last reported
    job: str | None = None  # its Ray job (submission id), on a Ray cluster
    job_state: str | None = None  # PENDING, RUNNING... as Ray says
    job_note: str = ""  # why a pending job waits, when it cannot be placed


@dataclass(frozen=True)
class QueuedRun:
    """A queued run, in launch order."""

    id: str
    track: str
    label: str
    priority: int
    position: int
    requeued: int


@dataclass(frozen=True)
class FloorRun:
    """The floor of a track: its latest promotion."""

    track: str
    id: str
    label: str
    score: float | None
    total_bytes: int | None


@dataclass(frozen=True)
class FailedRun:
    """A run that failed or was interrupted, with the reason and the end of its log."""

    id: str
    track: str
    label: str
    status: str
    reason: str
    finished: float | None
    log_tail: str


@dataclass(frozen=True)
class SchedulerStatus:
    """The scheduler and its queue at a glance: `state` is running, paused or stopped."""

    lab: str
    state: str
    pid: int | None
    slots: int | None
    gpus: tuple[str, ...]
    since: float | None  # when the running scheduler started
    stopping: bool  # it was asked to stop and waits for its running runs
    paused: bool
    paused_since: float | None
    running: tuple[RunningRun, ...]
    queued: tuple[QueuedRun, ...]
    floors: tuple[FloorRun, ...]
    failures: tuple[FailedRun, ...]
    log: str  # the scheduler's log file
    backend: str = "local"
    address: str = ""  # the Ray dashboard, for backend ray
    resources: dict[str, list[float]] = field(default_factory=dict)  # {"GPU": [busy, total]} of the cluster

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of everything above."""
        return asdict(self)


@dataclass(frozen=True)
class Glance:
    """The scheduler at a glance, for a status line polled every half second."""

    state: str  # running, paused, stopping or stopped
    slots: int | None
    backend: str = "local"
    address: str = ""  # the Ray dashboard, for backend ray
    resources: dict[str, list[float]] = field(default_factory=dict)  # {"GPU": [busy, total]} of the cluster
    jobs: dict[str, dict[str, str]] = field(default_factory=dict)  # run id -> {job, state, note}


def _state(running: SchedulerState | None, paused: bool) -> str:
    return "stopped" if running is None else ("paused" if paused else "running")


def glance(lab: LabLike) -> Glance:
    """The scheduler's state without reading the history: its lock, its state file, the queue's paused flag."""
    ledger = _ledger(lab)
    running = holder(ledger.lab)
    stopping = running is not None and running.state == "stopping"
    state = "stopping" if stopping else _state(running, ledger.paused())
    if running is None:
        return Glance(state, None)
    return Glance(state, running.slots, running.backend, running.address, running.resources, running.jobs)


def status(lab: LabLike, failures: int = 5) -> SchedulerStatus:
    """The scheduler's state, its running and queued runs, the floors, and the latest failures."""
    ledger = _ledger(lab)
    running = holder(ledger.lab)
    last = running or read_state(ledger.lab)  # a dead scheduler's GPUs still name its orphans' GPUs
    gpus = last.gpus if last is not None else ()
    paused = ledger.paused()
    progress = ledger.progress()
    now = time.time()
    runs = []
    jobs = running.jobs if running else {}
    for r in ledger.running():
        p = progress.get(r.id)
        job = jobs.get(r.id, {})
        runs.append(
            RunningRun(
                id=r.id,
                track=r.track,
                label=r.label,
                pid=r.pid,
                slot=r.slot,
                gpu=slot_gpu(gpus, r.slot),
                started=r.started,
                elapsed=None if r.started is None else max(0.0, now - r.started),
                stage=p.stage if p else None,
                done=p.done if p else 0,
                total=p.total if p else 0,
                fraction=p.fraction if p else 0.0,
                eta=p.eta if p else None,
                updated=p.updated if p else None,
                job=job.get("job"),
                job_state=job.get("state"),
                job_note=job.get("note", ""),
            )
        )
    ended = ledger.latest((RunStatus.FAILED, RunStatus.INTERRUPTED), failures)
    return SchedulerStatus(
        lab=str(ledger.lab.root),
        state=_state(running, paused),
        pid=running.pid if running else None,
        slots=running.slots if running else None,
        gpus=tuple(gpus),
        since=running.started if running else None,
        stopping=bool(running and running.state == "stopping"),
        paused=paused,
        paused_since=ledger.paused_since(),
        running=tuple(runs),
        queued=tuple(QueuedRun(r.id, r.track, r.label, r.priority, r.position, r.requeued) for r in ledger.queued()),
        floors=tuple(FloorRun(t, r.id, r.label, r.score, r.total_bytes) for t, r in ledger.floors().items()),
        failures=tuple(
            FailedRun(r.id, r.track, r.label, r.status, r.failure_reason, r.finished, r.log_tail) for r in ended
        ),
        log=str(SchedulerPaths.of(ledger.lab).log),
        backend=running.backend if running else "local",
        address=running.address if running else "",
        resources=running.resources if running else {},
    )


# Steering the queue.


def pause(lab: LabLike) -> None:
    """Pause the queue: running runs finish, nothing new starts."""
    _ledger(lab).set_paused(True)


def resume(lab: LabLike) -> None:
    """Resume the queue."""
    _ledger(lab).set_paused(False)


def cancel(lab: LabLike, run_id: str) -> RunRecord:
    """Cancel a queued, running or interrupted run; a running one's processes are killed first.

    Its partial artifacts go (all but its log). A run that finished meanwhile keeps its result.
    """
    ledger = _ledger(lab)
    record = ledger.get(run_id)
    if record.status not in ("queued", "running", "interrupted"):
        raise UserError(f"{record.id} is {record.status}: only queued, running or interrupted runs can be cancelled")
    # Marked first, so the scheduler reads the worker's death as a cancel and not as a crash.
    ended = ledger.record_failure(record.id, "cancelled by the user", status="cancelled")
    if ended.status != "cancelled":
        return ended
    if record.status == "running":
        kill_run(run_tag(ledger.lab.root, record.id), record.pid)
    remove_partial(Path(ended.artifacts or ledger.lab.run_dir(ended.id)))
    return ended


def retry(lab: LabLike, run_id: str) -> RunRecord:
    """Queue a failed, cancelled or interrupted run again, as a new run whose parent is the old one.

    The new run starts from the old one's checkpoint, when its codec left one (a neural run resumes
    at that step).
    """
    ledger = _ledger(lab)
    record = ledger.get(run_id)
    if record.status not in RETRYABLE:
        raise UserError(
            f"{record.id} is {record.status}: only failed, cancelled or interrupted runs are retried "
            "(to run a finished one again, clone it)"
        )
    again = ledger.add_run(
        record.spec,
        track=record.track,
        label=record.label,
        notes=f"retry of {record.id}",
        parent=record.id,
        priority=record.priority,
    )
    # Carried once queued (the folder is named by the new id): a codec looks for its checkpoint
    # once its stages run, seconds after a worker starts; sooner, it would start over, never wrongly.
    carry_checkpoint(Path(record.artifacts or ledger.lab.run_dir(record.id)), Path(again.artifacts))
    return again


def bump(lab: LabLike, run_id: str, delta: int) -> RunRecord:
    """Raise (delta > 0) or lower a queued run's priority; higher priorities start first."""
    ledger = _ledger(lab)
    record = ledger.get(run_id)
    if record.status != "queued":
        raise UserError(f"{record.id} is {record.status}: only queued runs have a priority to change")
    return ledger.update(record.id, priority=record.priority + int(delta))


def queue_sweep(
    lab: LabLike,
    spec: RunSpec,
    sweeps: Mapping[str, Sequence[Any]],
    priority: int = 0,
    parent: str | None = None,
) -> list[RunRecord]:
    """Queue one run per point of the crossed sweeps (none: the spec itself), all or nothing.

    `sweeps` maps an axis to its values: typed values, text (`"35"`, `"true"`) or range text
    (`"32..36"`). Labels say the point ("crf=34 film_grain=22"), after the spec's own label if
    it has one. The parent is `parent`, else the spec's run.parent; passing it here keeps it
    out of the children's specs, where it would show among their changed axes. An invalid axis
    or value raises SpecError and queues nothing.
    """
    ledger = _ledger(lab)
    expanded = {axis: _expand(axis, values) for axis, values in sweeps.items()}
    points = grid(spec, expanded)
    parent = parent or spec.run.parent or None
    if parent is not None:
        parent = ledger.get(parent).id  # an unknown parent fails here, before anything is queued
    base = spec.run.label
    return [
        ledger.add_run(
            point.to_dict(),
            track=point.run.track,
            label=" ".join(part for part in (base, label) if part),
            notes=point.run.notes,
            parent=parent,
            priority=priority,
        )
        for label, point in points
    ]


def _expand(axis: str, values: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        out.extend(parse_sweep(f"{axis}={value}")[1] if isinstance(value, str) and ".." in value else [value])
    return out


def around_floor(lab: LabLike, track: str, axis: str, offsets: Sequence[Any], priority: int = 0) -> list[RunRecord]:
    """Queue the neighbours of `track`'s floor on one axis (floor's value + each offset); parent = the floor."""
    return around_floor_axes(lab, track, {axis: offsets}, priority)


def around_floor_axes(
    lab: LabLike, track: str, axes: Mapping[str, Sequence[Any]], priority: int = 0
) -> list[RunRecord]:
    """`around_floor` on several axes, still one axis changed per run; all validated, then queued."""
    ledger = _ledger(lab)
    floors = ledger.floors()
    if track not in floors:
        known = ", ".join(floors) or "none yet"
        raise UserError(f"track {track!r} has no floor yet (tracks with a floor: {known}): measure a run on it first")
    floor = ledger.get(floors[track].id)
    base = parse_spec(floor.spec, lab_source(ledger.lab))
    points = neighbours(base, {axis: _expand(axis, offsets) for axis, offsets in axes.items()})
    return [
        ledger.add_run(
            point.to_dict(),
            track=floor.track,
            label=label,
            notes=f"around the floor {floor.id}",
            parent=floor.id,
            priority=priority,
        )
        for label, point in points
    ]
