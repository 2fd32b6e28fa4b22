"""Where a lab's scheduler is: its lock, state file and log, whether one runs, and starting one.

    <lab>/scheduler/lock        flocked by the running scheduler for its whole life
    <lab>/scheduler/state.json  pid, slots, GPUs, since when, starting/running/stopping/stopped, and
                                its backend's news (a Ray cluster's address, resources and job states)
    <lab>/scheduler/log.txt     what it did (launches, ends, recoveries), for a person to read
    <lab>/scheduler/held        a person stopped it (`sched stop`): nothing restarts it on its own

The lock answers "is one running?" (the kernel frees a flock however its holder dies, so a
crashed scheduler never blocks the next); the state file answers "which one, since when?".
Light on purpose: `engine.sched.control` and the TUI read this often, and it imports no engine code.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.sched.pool import alive, child_env, python_command
from ledger import Lab
from ledger.errors import UserError
from ledger.files import atomic_write

_LOG_ROTATE_BYTES = 2 * 1024 * 1024


class SchedulerError(UserError):
    """The scheduler could not be started, stopped or reached; the message says why and what to do."""


class SchedulerRunning(SchedulerError):
    """A scheduler already runs for this lab."""

    def __init__(self, state: SchedulerState, lab: Lab) -> None:
        super().__init__(
            f"the scheduler is already running (pid {state.pid}, since {when(state.started)}) for lab {lab.root}: "
            f"see comma-tui sched status --lab {lab.root}, or stop it with comma-tui sched stop"
        )
        self.state = state


def when(stamp: float | None) -> str:
    """A timestamp as local time, as people read it in a status line."""
    return "-" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


@dataclass(frozen=True)
class SchedulerPaths:
    """Where a lab's scheduler keeps its lock, state and log (`<lab>/scheduler/`)."""

    folder: Path

    @classmethod
    def of(cls, lab: Lab) -> SchedulerPaths:
        """The scheduler files of `lab`."""
        return cls(lab.root / "scheduler")

    @property
    def lock(self) -> Path:
        return self.folder / "lock"

    @property
    def state(self) -> Path:
        return self.folder / "state.json"

    @property
    def log(self) -> Path:
        return self.folder / "log.txt"

    @property
    def held(self) -> Path:
        return self.folder / "held"


def hold(lab: Lab, held: bool) -> None:
    """Remember that a person stopped the scheduler (True), or that one started it again (False)."""
    paths = SchedulerPaths.of(lab)
    if held:
        paths.folder.mkdir(parents=True, exist_ok=True)
        paths.held.write_text(f"{time.time()}\n")
    else:
        paths.held.unlink(missing_ok=True)


def held_since(lab: Lab) -> float | None:
    """When a person stopped the scheduler, if it is still held stopped; else None."""
    try:
        return float(SchedulerPaths.of(lab).held.read_text().strip() or 0)
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class SchedulerState:
    """What `state.json` says: who runs the lab's queue, with how many slots, since when."""

    pid: int
    slots: int
    gpus: tuple[str, ...]
    started: float
    state: str  # starting (recovering), running, stopping or stopped
    host: str = ""
    stopped: float | None = None
    backend: str = "local"
    address: str = ""  # the Ray dashboard the queue runs on, for backend ray
    resources: dict[str, list[float]] = field(default_factory=dict)  # {"GPU": [busy, total]} of the cluster
    jobs: dict[str, dict[str, str]] = field(default_factory=dict)  # run id -> {job, state, note}


def slot_gpu(gpus: tuple[str, ...], slot: int | None) -> str | None:
    """The GPU of a slot: slots take the visible GPUs in turn (None without GPUs)."""
    return None if slot is None or not gpus else gpus[slot % len(gpus)]


def read_state(lab: Lab) -> SchedulerState | None:
    """The last state a scheduler of `lab` wrote (it may have died since), or None."""
    try:
        data: dict[str, Any] = json.loads(SchedulerPaths.of(lab).state.read_text())
        known = {f.name for f in fields(SchedulerState)}  # a newer scheduler's extra keys are let be
        return SchedulerState(**{k: v for k, v in data.items() if k in known} | {"gpus": tuple(data.get("gpus", ()))})
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def write_state(lab: Lab, state: SchedulerState) -> None:
    """Replace `state.json` atomically."""
    path = SchedulerPaths.of(lab).state
    atomic_write(path, (json.dumps(asdict(state)) + "\n").encode())  # readers see the old state or the new one


def lock_held(lab: Lab) -> bool:
    """Whether some process holds `lab`'s scheduler lock (a shared probe, released at once)."""
    try:
        fd = os.open(SchedulerPaths.of(lab).lock, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's lock, if it got one
    return False


def holder(lab: Lab, settle: float = 2.0) -> SchedulerState | None:
    """The state of the scheduler running for `lab` now, or None when none runs.

    The lock says whether one runs; `state.json` says which. A scheduler writes its state just
    after taking the lock, so a stale state is read again for up to `settle` seconds.
    """
    deadline = time.monotonic() + settle
    while lock_held(lab):
        state = read_state(lab)
        if state is not None and state.state != "stopped" and alive(state.pid):
            return state
        if time.monotonic() > deadline:
            return state or SchedulerState(pid=0, slots=0, gpus=(), started=time.time(), state="running")
        time.sleep(0.05)
    return None


def spawn(lab: Lab, slots: int | None = None, backend: str | None = None, ray_address: str | None = None) -> int:
    """Start a detached scheduler for `lab` (its own session, output to its log); returns its pid.

    Called in a short-lived launcher process (`--spawn`) so that the scheduler's parent exits at
    once and it is adopted by init: no terminal, no SIGHUP, and never a zombie of the TUI.
    """
    paths = SchedulerPaths.of(lab)
    paths.folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        if paths.log.stat().st_size > _LOG_ROTATE_BYTES:
            os.replace(paths.log, paths.log.with_suffix(".1.txt"))
    args = ["--lab", str(lab.root)] + ([] if slots is None else ["--slots", str(slots)])
    args += ([] if backend is None else ["--backend", backend]) + (
        [] if ray_address is None else ["--ray-address", ray_address]
    )
    with open(paths.log, "ab") as log:
        proc = subprocess.Popen(
            python_command("engine.sched.scheduler", *args),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=lab.root,
            env=child_env(),
            start_new_session=True,
        )
    return proc.pid


def acquire_lock(lab: Lab, patience: float = 1.0) -> int:
    """Take `lab`'s scheduler lock for this process's life; returns its fd. Raises SchedulerRunning."""
    paths = SchedulerPaths.of(lab)
    paths.folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + patience  # rides over a status probe holding the lock shared
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() < deadline:
                time.sleep(0.02)
                continue
            os.close(fd)
            state = holder(lab) or SchedulerState(0, 0, (), time.time(), "running")
            raise SchedulerRunning(state, lab) from None
