"""Execution backends: the seam between the scheduler's queue and what executes its runs.

The scheduler (`engine.sched.scheduler`) owns the queue: launch order, slots, pause, cancel,
timeouts, progress, and every ledger write that ends a run. A backend owns executions: it
starts a run, follows it, stops it, finds what an earlier scheduler left running, and says what
an ended run left behind.

    local   worker processes on this machine, one per slot (`engine.sched.local`)
    ray     one Ray job per attempt, through the cluster's Jobs REST API (`engine.sched.ray_backend`)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ledger import Ledger, RunRecord

Say = Callable[[str], None]


@dataclass(frozen=True)
class Ending:
    """How an execution ended: a line for the scheduler's log, and the failure reason when no result came.

    `lost`: the run did not fail, its execution vanished (a cluster that forgot the job): the run is
    interrupted and requeued once, as after a crash.
    """

    text: str
    reason: str = ""
    lost: bool = False


@dataclass(frozen=True)
class Published:
    """What the scheduler's state file says about its backend, for `sched status` and the console."""

    backend: str = "local"
    gpus: tuple[str, ...] = ()  # the GPUs local slots take in turn
    address: str = ""  # the Ray dashboard, for the ray backend
    resources: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # {"GPU": (busy, total)}
    jobs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # run id -> job, state, note


class Execution(Protocol):
    """One run being executed, as the scheduler follows it (a worker process, a Ray job)."""

    run_id: str
    slot: int | None
    started: float  # wall-clock time the run started (for its timeout)
    timeout: int
    run_dir: Path
    progress: dict[str, Any] | None  # the latest progress event not yet written to the ledger
    written: float
    killed: bool

    @property
    def where(self) -> str:
        """What executes it, for the scheduler's log: `worker pid 123 on slot 0`, `Ray job ... on slot 1`."""

    def follow(self, final: bool = False) -> None:
        """Take in what the run reported since last time (progress, output)."""

    def ended(self) -> bool:
        """Whether the execution is over (the process exited, the job reached a final state)."""

    def kill(self) -> None:
        """Stop it (cancel, timeout, stop --now); `ended` tells when it is over."""

    def wait(self, timeout: float) -> None:
        """Wait up to `timeout` s for a killed execution to be over."""

    def settle(self, ledger: Ledger) -> Ending:
        """Record what the ended run left for the ledger (if anything), and say how it ended."""

    def forget(self) -> None:
        """Remove the execution's own files once the ledger holds what they said."""


class Backend(Protocol):
    """How runs are executed: started, adopted after a restart, followed as a group."""

    name: str

    def open(self, say: Say) -> None:
        """Check that runs can be executed at all (a probe job on a cluster); SchedulerError when not."""

    def default_slots(self) -> int:
        """Runs at a time when `--slots` is not given."""

    def describe(self) -> str:
        """Where runs go, for the scheduler's log: `GPUs 0,1`, `ray http://127.0.0.1:8265 (... 8 GPUs)`."""

    def launch(self, ledger: Ledger, record: RunRecord, slot: int) -> Execution:
        """Start a queued run on `slot` and mark it running; LaunchError when it could not be started."""

    def adopt(self, record: RunRecord) -> Execution | str | None:
        """What an earlier scheduler started for `record`: its execution (live or ended); else, for a
        running run, the reason it is lost, and for a queued one None (never started)."""

    def sweep(self, executions: Iterable[Execution]) -> None:
        """After recovery: stop what runs for this lab on behalf of no followed execution."""

    def poll(self, executions: Iterable[Execution]) -> None:
        """Refresh what the executions' `ended` and `follow` read (called once per tick)."""

    def published(self, executions: Iterable[Execution]) -> Published:
        """What `sched status` and the console should know about the backend now."""


class LaunchError(Exception):
    """A run could not be started (the backend recorded what it had to); `retry_later`: the run is
    still queued and the backend cannot launch anything just now (a cluster out of reach)."""

    def __init__(self, message: str, retry_later: bool = False) -> None:
        super().__init__(message)
        self.retry_later = retry_later
