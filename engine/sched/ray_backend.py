"""The Ray backend: each attempt of a run is one Ray job, submitted through the head's Jobs REST API.

- `submission_id` = `comma-tui-<lab id>-<run id>-a<attempt>` (attempt = times requeued + 1), so a
  second submission of an attempt is refused by Ray: a scheduler that dies between submitting and
  recording is harmless, and no attempt ever runs twice.
- The entrypoint is this installation's own interpreter running `engine.sched.worker --job`; each
  job asks for `cpus_per_run` / `gpus_per_run` (Ray then sets CUDA_VISIBLE_DEVICES) and carries the
  lab, run, track and label as metadata. Nothing is uploaded: every node has comma-tui installed
  and sees the lab at the same path, which a probe job checks when the scheduler starts.
- A job reports through files in its run folder (`engine.sched.job_files`); the scheduler records
  them, so jobs never open the ledger.
- On start, the cluster's jobs of this lab are matched with the ledger: running ones are adopted,
  finished ones recorded, lost ones requeued once, and jobs of no current attempt are stopped.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.sched.backend import Ending, Execution, LaunchError, Published, Say
from engine.sched.floors import group_floors
from engine.sched.job_files import (
    PROGRESS_NAME,
    RESULT_NAME,
    JobOutcome,
    JobTicket,
    read_outcome,
    read_progress,
    remove_job_files,
    write_ticket,
)
from engine.sched.pool import ENGINE_ROOT, LOG_NAME, append_log
from engine.sched.probe import leave_word, probe_file
from engine.sched.ray_client import (
    FINAL_STATES,
    JobInfo,
    RayError,
    RayJobsClient,
    RayUnreachable,
    Resources,
    connect,
)
from engine.sched.state import SchedulerError
from ledger import Lab, Ledger, LedgerError, RunRecord, RunStatus
from ledger.errors import UserError
from ledger.records import Job
from ledger.scheduler_settings import SchedulerSettings

JOB_POLL = 1.0  # seconds between status requests for a job
RESOURCES_POLL = 5.0
PROBE_TIMEOUT = 180.0
LOST = "LOST"  # our word for a job the cluster no longer knows


def submission_id(lab_id: str, run_id: str, attempt: int) -> str:
    """The Ray submission id of one attempt of one run of one lab."""
    return f"comma-tui-{lab_id}-{run_id}-a{attempt}"


def attempt_of(record: RunRecord) -> int:
    """The attempt a run is on: 1, then one more each time it was requeued."""
    return record.requeued + 1


def _first_line(message: str) -> str:
    line = (message.strip().splitlines() or ["no message"])[0]
    return line.split(", last available logs")[0].rstrip(":")


@dataclass
class RayJob:
    """One attempt of a run as a Ray job, and what the scheduler follows of it (an `Execution`)."""

    run_id: str
    slot: int | None
    started: float
    timeout: int
    run_dir: Path
    submission_id: str
    client: RayJobsClient
    status: str = "PENDING"
    message: str = ""
    checked: float = 0.0  # monotonic time of the last status request
    progress: dict[str, Any] | None = None
    written: float = 0.0
    killed: bool = False
    outcome: JobOutcome | None = None
    _seen: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    @property
    def where(self) -> str:
        """The job, for the scheduler's log."""
        return f"Ray job {self.submission_id} on slot {self.slot}"

    @property
    def log(self) -> Path:
        """The run's log."""
        return self.run_dir / LOG_NAME

    def follow(self, final: bool = False) -> None:
        """Take in the job's latest progress, and its outcome once written, when their files changed."""
        if self._changed(PROGRESS_NAME):
            self.progress = read_progress(self.run_dir, self.submission_id) or self.progress
        if self.outcome is None and self._changed(RESULT_NAME):
            # The outcome ends the run for us at once: the job's process may take seconds more to exit.
            with contextlib.suppress(UserError):  # a damaged outcome is reported by `settle`
                self.outcome = read_outcome(self.run_dir, self.submission_id)

    def _changed(self, name: str) -> bool:
        try:
            stat = (self.run_dir / name).stat()
        except OSError:
            return False
        seen = (stat.st_mtime_ns, stat.st_size)
        if self._seen.get(name) == seen:
            return False
        self._seen[name] = seen
        return True

    def refresh(self) -> None:
        """Ask the cluster for the job's state (RayError when it cannot be asked)."""
        self.checked = time.monotonic()
        info = self.client.job(self.submission_id)
        if self.status == "PENDING" and info is not None and info.status == "RUNNING":
            self.started = time.time()  # its run.timeout counts from here, not from a wait for a free GPU
        self.status, self.message = (LOST, "") if info is None else (info.status, info.message)

    def ended(self) -> bool:
        """Whether the job wrote its outcome, reached a final state, or was forgotten by the cluster."""
        return self.outcome is not None or self.status in FINAL_STATES or self.status == LOST

    def kill(self) -> None:
        """Ask the cluster to stop the job (RayError when it cannot be asked); status requests see it end."""
        if not self.ended():
            self.client.stop(self.submission_id)
            if self.status == "PENDING":
                # Ray stops a job through its supervisor, which a job that waits for resources does
                # not have yet: the stop takes effect if it is ever placed. For us it is over now.
                self.status = "STOPPED"
        self.killed = True

    def wait(self, timeout: float) -> None:
        """Poll the job until it has ended, for up to `timeout` s."""
        deadline = time.monotonic() + timeout
        while not self.ended() and time.monotonic() < deadline:
            try:
                self.refresh()
            except RayError:
                return
            time.sleep(0.2)

    def settle(self, ledger: Ledger) -> Ending:
        """Record the outcome the job wrote; without one, the run fails with Ray's message and log tail."""
        text = f"Ray job {self.submission_id} " + ("wrote its outcome" if self.outcome else self.status.lower())
        try:
            outcome = self.outcome or read_outcome(self.run_dir, self.submission_id)
        except UserError as exc:
            return Ending(text, str(exc))
        if outcome is not None and outcome.result is not None:
            # A ledger that refuses (locked, full disk) raises: the scheduler tries again next tick.
            if ledger.get(self.run_id).status != RunStatus.DONE:
                done = ledger.record_result(self.run_id, outcome.result)
                append_log(self.log, [f"verdict: {done.verdict} ({done.verdict_reason})"])
            return Ending(f"{text}; its result is recorded")
        if outcome is not None:
            return Ending(text, outcome.reason)
        if self.status == LOST:
            reason = f"interrupted: its Ray job {self.submission_id} is gone from the cluster (the head restarted?)"
            return Ending(text, reason, lost=True)
        if self.status == "FAILED":
            self._log_ray_tail()
            return Ending(text, f"Ray job {self.submission_id} failed: {_first_line(self.message)}")
        return Ending(text, f"Ray job {self.submission_id} ended ({self.status.lower()}) without recording a result")

    def _log_ray_tail(self, lines: int = 20) -> None:
        try:
            said = self.client.logs(self.submission_id).splitlines()[-lines:]
        except RayError:
            return
        append_log(self.log, [f"[ray] {line}" for line in said if line.strip()])

    def forget(self) -> None:
        """Remove the job's ticket, progress and outcome files: the ledger holds what they said."""
        remove_job_files(self.run_dir)


class RayBackend:
    """Runs as jobs on a Ray cluster; slots default from the cluster's GPUs (else CPUs)."""

    name = "ray"

    def __init__(self, lab: Lab, settings: SchedulerSettings) -> None:
        self.lab = lab
        self.settings = settings
        self.client = connect(settings)
        self.lab_id = ""
        self.resources = Resources(())
        self._known: dict[str, JobInfo] = {}  # the lab's jobs when the scheduler started
        self._resources_at = 0.0
        self._say: Say = print
        self._trouble = ""

    # Starting.

    def open(self, say: Say) -> None:
        """Reach the cluster, read its resources, run the probe job, and list this lab's jobs."""
        self._say = say
        self.lab_id = self.lab.ensure_id()
        self.resources = self.client.resources()
        self._resources_at = time.monotonic()
        self._probe()
        self._known = {j.submission_id: j for j in self.client.jobs() if j.metadata.get("lab_id") == self.lab_id}
        if not self._fits():
            say(f"warning: {self._unplaceable()}")

    def _probe(self) -> None:
        word = leave_word(self.lab.root)
        job = f"comma-tui-{self.lab_id}-probe-{word}"
        entry = [sys.executable, "-m", "engine.sched.probe", "--lab", str(self.lab.root), "--word", word]
        # No resources asked: Ray runs it on the head at once, even when every GPU is busy.
        self.client.submit(job, shlex.join(entry), {"comma_tui": "probe", "lab_id": self.lab_id}, 0, 0, self._env())
        deadline = time.monotonic() + PROBE_TIMEOUT
        info = self.client.job(job)
        while (info is None or not info.final) and time.monotonic() < deadline:
            time.sleep(0.2)
            info = self.client.job(job)
        probe_file(self.lab.root).unlink(missing_ok=True)
        if info is None or not info.final:
            self.client.stop(job)
            raise SchedulerError(
                f"the probe job on the Ray cluster at {self.settings.ray_address} did not finish within "
                f"{PROBE_TIMEOUT:.0f} s: see its state with ray job status {job}"
            )
        said = (self.client.logs(job).strip().splitlines() or [_first_line(info.message)])[-1]
        self.client.delete(job)
        if info.status != "SUCCEEDED":
            raise SchedulerError(
                f"the Ray cluster at {self.settings.ray_address} cannot run this lab's jobs ({said}): every node "
                f"needs the lab at {self.lab.root} (a shared filesystem) and comma-tui at {sys.executable}"
            )

    def default_slots(self) -> int:
        """The cluster's GPUs / gpus_per_run, else its CPUs / cpus_per_run."""
        s, r = self.settings, self.resources
        if s.gpus_per_run and r.total("GPU"):
            return max(1, int(r.total("GPU") // s.gpus_per_run))
        return max(1, int(r.total("CPU") // (s.cpus_per_run or 1)))

    def describe(self) -> str:
        """The cluster and what it holds."""
        r = self.resources
        held = f"{len(r.nodes)} node(s), {r.total('CPU'):g} CPUs, {r.total('GPU'):g} GPUs"
        return f"ray {self.settings.ray_address} ({held})"

    def _fits(self) -> bool:
        return self.resources.fits(self.settings.cpus_per_run, self.settings.gpus_per_run)

    def _unplaceable(self) -> str:
        s, r = self.settings, self.resources
        return (
            f"cannot be placed: each run asks for {s.gpus_per_run:g} GPU and {s.cpus_per_run:g} CPU, and no node of "
            f"the cluster has that ({r.total('GPU'):g} GPUs, {r.total('CPU'):g} CPUs in all): add a node that has, "
            "or lower gpus_per_run / cpus_per_run in lab.toml"
        )

    def _env(self) -> dict[str, str]:
        env = {"PYTHONPATH": ENGINE_ROOT}  # this very engine, as for local workers
        if not self.settings.gpus_per_run:
            env["CUDA_VISIBLE_DEVICES"] = ""  # a run that asked for no GPU must not take one from a run that did
        return env

    # Launching and adopting.

    def _job(self, record: RunRecord, sid: str, slot: int | None, status: str = "PENDING") -> RayJob:
        meta = record.spec.get("run")
        timeout = meta.get("timeout", 0) if isinstance(meta, dict) else 0
        run_dir = Path(record.artifacts or self.lab.run_dir(record.id))
        started = record.started or time.time()
        return RayJob(record.id, slot, started, int(timeout or 0), run_dir, sid, self.client, status)

    def launch(self, ledger: Ledger, record: RunRecord, slot: int) -> RayJob:
        """Submit the run's current attempt, then mark it running (a crash in between is harmless)."""
        attempt = attempt_of(record)
        sid = submission_id(self.lab_id, record.id, attempt)
        job = self._job(record, sid, slot)
        job.run_dir.mkdir(parents=True, exist_ok=True)
        floors = group_floors(ledger, record.track) if record.job == Job.RUN else ()
        write_ticket(job.run_dir, JobTicket(sid, record.id, attempt, record.spec, record.job, floors))
        s = self.settings
        entry = [sys.executable, "-m", "engine.sched.worker", "--lab", str(self.lab.root), "--run", record.id]
        command = shlex.join([*entry, "--job", sid])
        meta = {"comma_tui": "run", "lab": str(self.lab.root), "lab_id": self.lab_id, "run": record.id}
        meta |= {"attempt": str(attempt), "track": record.track, "label": record.label}
        try:
            fresh = self.client.submit(sid, command, meta, s.cpus_per_run, s.gpus_per_run, self._env())
        except RayUnreachable as exc:
            raise LaunchError(str(exc), retry_later=True) from None
        except RayError as exc:
            reason = f"Ray refused the job {sid}: {exc}"
            ledger.record_failure(record.id, reason)
            raise LaunchError(reason) from None
        said = "submitted" if fresh else "found already submitted"
        append_log(job.log, [f"scheduler: {said} Ray job {sid} (attempt {attempt}) on slot {slot}"])
        try:
            ledger.update(record.id, status="running", slot=slot)
        except LedgerError as exc:
            self._say(f"{record.id}: its job {sid} runs, but the ledger did not take it as running ({exc})")
        return job

    def adopt(self, record: RunRecord) -> RayJob | str | None:
        """The job of the run's current attempt, live or ended; a running run without one is lost."""
        sid = submission_id(self.lab_id, record.id, attempt_of(record))
        info = self._known.get(sid)
        job = self._job(record, sid, record.slot, LOST if info is None else info.status)
        if info is not None:
            job.message = info.message
            return job
        if record.status != RunStatus.RUNNING:
            return None
        if read_outcome(job.run_dir, sid) is not None:
            return job  # the cluster forgot it, but it finished: its outcome is recorded
        return f"interrupted: its Ray job {sid} was not on the cluster when the scheduler started again"

    def sweep(self, executions: Iterable[Execution]) -> None:
        """Stop this lab's jobs that belong to no followed attempt (a run cancelled while no scheduler ran)."""
        followed = {getattr(e, "submission_id", None) for e in executions}
        for sid, info in self._known.items():
            if info.final or sid in followed:
                continue
            self._say(f"stopping Ray job {sid}: its run is no longer running here")
            try:
                self.client.stop(sid)
            except RayError as exc:
                self._say(f"could not stop Ray job {sid}: {exc}")
        self._known = {}

    # Following.

    def poll(self, executions: Iterable[Execution]) -> None:
        """Refresh job states (each second, or at once when a job wrote its outcome) and the cluster's resources."""
        now = time.monotonic()
        try:
            for job in executions:
                assert isinstance(job, RayJob)
                if not job.ended() and now - job.checked >= JOB_POLL:
                    job.refresh()
            if now - self._resources_at >= RESOURCES_POLL:
                self._resources_at = now
                self.resources = self.client.resources()
        except RayError as exc:
            if str(exc) != self._trouble:
                self._say(f"error: {exc}")
            self._trouble = str(exc)
        else:
            self._trouble = ""

    def published(self, executions: Iterable[Execution]) -> Published:
        """The cluster's address and resources, and each followed job's state."""
        r = self.resources
        resources = {kind: ((r.busy or {}).get(kind, 0.0), r.total(kind)) for kind in ("CPU", "GPU")}
        stuck = "" if self._fits() else self._unplaceable()
        jobs = {
            e.run_id: {"job": e.submission_id, "state": e.status, "note": stuck if e.status == "PENDING" else ""}
            for e in executions
            if isinstance(e, RayJob)
        }
        return Published("ray", address=self.settings.ray_address, resources=resources, jobs=jobs)
