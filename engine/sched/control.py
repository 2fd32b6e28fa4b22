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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.runs.sweep import parse_sweep
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
from engine.sched.queueing import (
    LabLike,
    Point,
    around_floor,
    around_floor_axes,
    floor_points,
    queue_points,
    queue_sweep,
    sweep_points,
    the_floor,
)
from engine.sched.queueing import ledger_of as _ledger
from engine.sched.ray_backend import PROBE_TIMEOUT
from engine.sched.ray_client import connect
from engine.sched.state import (
    SchedulerError,
    SchedulerPaths,
    SchedulerRunning,
    SchedulerState,
    held_since,
    hold,
    holder,
    lock_held,
    read_state,
    slot_gpu,
)
from ledger import Lab, Ledger, RunRecord, RunStatus, RunSummary
from ledger.errors import UserError

__all__ = [
    "CANCELLABLE",
    "RETRYABLE",
    "FailedRun",
    "FloorRun",
    "Glance",
    "Point",
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
    "floor_points",
    "glance",
    "parse_sweep",
    "pause",
    "queue_points",
    "queue_sweep",
    "resume",
    "retry",
    "start",
    "status",
    "stop",
    "sweep_points",
    "the_floor",
    "why_not_bump",
    "why_not_cancel",
    "why_not_retry",
]

START_TIMEOUT = 30.0
CANCELLABLE = ("queued", "running", "interrupted")
RETRYABLE = ("failed", "cancelled", "interrupted")


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
    hold(lab, False)  # a start by hand lifts an earlier stop by hand
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


def ensure_running(lab: LabLike, slots: int | None = None) -> int | None:
    """The pid of the lab's scheduler, starting one only if none runs (never a second one).

    None, starting nothing, when a person stopped it (`sched stop`) and has not started it since.
    """
    running = holder(_lab(lab))
    if running is not None:
        return running.pid
    if held_since(_lab(lab)) is not None:
        return None
    try:
        return start(lab, slots)
    except SchedulerRunning as exc:
        return exc.state.pid


def stop(lab: LabLike, now: bool = False, wait: bool = True, timeout: float | None = None) -> int | None:
    """Stop the lab's scheduler; returns its pid, or None when none was running.

    Gracefully by default: it launches nothing more and exits when its running runs finish.
    `now`: it kills its workers, marks their runs interrupted and requeues them. `wait`: return
    once it has exited (at most `timeout` seconds, then SchedulerError). The stop is remembered:
    `ensure_running` (the console opening) starts none until `start` is called.
    """
    lab = _lab(lab)
    hold(lab, True)
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
    detail: str = ""  # e.g. `batches · bound 23.91 vs floor 23.08` while scoring
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
    held: bool = False  # stopped by a person: nothing starts it until they do


def _state(running: SchedulerState | None, paused: bool) -> str:
    return "stopped" if running is None else ("paused" if paused else "running")


def glance(lab: LabLike) -> Glance:
    """The scheduler's state without reading the history: its lock, its state file, the queue's paused flag."""
    ledger = _ledger(lab)
    running = holder(ledger.lab)
    stopping = running is not None and running.state == "stopping"
    state = "stopping" if stopping else _state(running, ledger.paused())
    if running is None:
        return Glance(state, None, held=held_since(ledger.lab) is not None)
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
                detail=p.detail if p else "",
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


def why_not_cancel(record: RunRecord | RunSummary) -> str | None:
    """Why `record` cannot be cancelled (None: it can)."""
    if record.status in CANCELLABLE:
        return None
    return f"{record.id} is {record.status}: only queued, running or interrupted runs can be cancelled"


def why_not_retry(record: RunRecord | RunSummary) -> str | None:
    """Why `record` cannot be retried (None: it can)."""
    if record.status in RETRYABLE:
        return None
    return (
        f"{record.id} is {record.status}: only failed, cancelled or interrupted runs are retried "
        "(to run a finished one again, clone it)"
    )


def why_not_bump(record: RunRecord | RunSummary) -> str | None:
    """Why `record`'s priority cannot change (None: it can)."""
    return None if record.status == "queued" else f"{record.id} is {record.status}: only queued runs have a priority"


def _checked(record: RunRecord, why_not: Callable[[RunRecord], str | None]) -> RunRecord:
    reason = why_not(record)
    if reason is not None:
        raise UserError(reason)
    return record


def cancel(lab: LabLike, *run_ids: str) -> list[RunRecord]:
    """Cancel queued, running or interrupted runs; a running one's processes are killed first.

    Every run is checked before any is cancelled. Its partial artifacts go (all but its log). A
    run that finished meanwhile keeps its result.
    """
    ledger = _ledger(lab)
    records = [_checked(ledger.get(run), why_not_cancel) for run in run_ids]
    return [_cancel(ledger, record) for record in records]


def _cancel(ledger: Ledger, record: RunRecord) -> RunRecord:
    # Marked first, so the scheduler reads the worker's death as a cancel and not as a crash.
    ended = ledger.record_failure(record.id, "cancelled by the user", status="cancelled")
    if ended.status != "cancelled":
        return ended
    if record.status == "running":
        kill_run(run_tag(ledger.lab.root, record.id), record.pid)
    remove_partial(Path(ended.artifacts or ledger.lab.run_dir(ended.id)))
    return ended


def retry(lab: LabLike, *run_ids: str) -> list[RunRecord]:
    """Queue failed, cancelled or interrupted runs again, each as a new run whose parent is the old one.

    Every run is checked before any is queued. A new run starts from its parent's checkpoint, when
    its codec left one (a neural run resumes at that step).
    """
    ledger = _ledger(lab)
    return [_again(ledger, record) for record in [_checked(ledger.get(run), why_not_retry) for run in run_ids]]


def _again(ledger: Ledger, record: RunRecord) -> RunRecord:
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
    record = _checked(ledger.get(run_id), why_not_bump)
    return ledger.update(record.id, priority=record.priority + int(delta))
