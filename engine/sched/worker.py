"""Execute one recorded run: the engine's single door into the ledger.

`comma-tui run` and the scheduler's worker processes both come here. The run's record says what
to do (its spec); the result, or the reason it failed, goes back with one ledger call.
Progress goes to a sink (a terminal bar, or JSON lines for the pool) and the log to the run's
`log.txt`.

Run as `python -m engine.sched.worker --lab DIR --run ID` it is a pool worker: it lowers its own
CPU priority so the console stays responsive, prints
JSON-lines progress on stdout, and exits 0 when the run is done, 1 when it failed. With
`--job SUBMISSION_ID` it is a cluster job: it never opens the ledger, and reports progress and
its outcome as files in the run's folder (see `engine.sched.job_files`) for the scheduler to record.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

from engine.runs.pipeline import FloorLookup, rescore_spec, run_spec
from engine.runs.progress import Sink, json_lines_sink
from engine.runs.spec import RunSpec, lab_source, parse_spec
from engine.runs.submission import OFFICIAL_TIMEOUT, score_submission
from engine.sched.floors import ledger_floors, ticket_floors
from engine.sched.job_files import JobOutcome, progress_sink, read_ticket, write_outcome
from engine.sched.pool import LOG_NAME
from ledger import Lab, Ledger, RunRecord, RunResult
from ledger.errors import UserError, machine_fault
from ledger.records import Job

_LOG_TAIL_LINES = 20
WORKER_NICE = 10  # added to the scheduler's niceness: the console and shells come first


class RunTimeout(UserError):
    """The run went past its spec's run.timeout."""


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Raise RunTimeout after `seconds` (0 = never); only the main thread can take the alarm."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise RunTimeout(f"run went past its run.timeout of {seconds} s and was stopped")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


class RunLog:
    """Appends timestamped lines to the run's log.txt and remembers the last few.

    The log never stops a run: on a full disk or a vanished folder the line is kept in memory,
    and the run fails where its real work fails, with the reason.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tail: list[str] = []

    def __call__(self, line: str) -> None:
        stamped = f"{time.strftime('%H:%M:%S')} {line}"
        self._tail = [*self._tail, stamped][-_LOG_TAIL_LINES:]
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(stamped + "\n")

    def tail(self) -> str:
        """The last lines of the whole file (it may hold worker output too)."""
        try:
            return "\n".join(self.path.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:])
        except OSError:
            return "\n".join(self._tail)


@dataclass(frozen=True)
class Task:
    """What an attempt does: run its spec or only score its kept archive (`job`), and where it finds its floor."""

    job: str = Job.RUN
    floors: FloorLookup | None = None


def early_floors(lab: Lab, spec: RunSpec, task: Task) -> FloorLookup | None:
    """Where the run finds the floor it may be rejected early against; None: it is scored in full
    (a rescore, or early verdicts off by its spec, else by the lab's default)."""
    if task.job == Job.RESCORE or spec.score.early_mode(lab.early()) == "off":
        return None
    return task.floors


def _execute(
    spec: RunSpec, run_dir: Path, sink: Sink | None, log: RunLog, keep_raw: bool, lab: Lab, task: Task
) -> RunResult:
    cache_dir, rescore = lab.cache_dir, task.job == Job.RESCORE
    floor = early_floors(lab, spec, task)
    if spec.run.submission:
        timeout = spec.run.timeout or OFFICIAL_TIMEOUT
        submission = Path(spec.run.submission)
        return score_submission(submission, spec, run_dir, sink, log, timeout, cache_dir, floor, rescore)
    if rescore:
        return rescore_spec(spec, run_dir, sink, log, cache_dir)
    return run_spec(spec, run_dir, sink, log, keep_raw, cache_dir, floor)


@dataclass(frozen=True)
class Failure:
    """Why a run failed; `bug` is the exception to raise again once the failure is recorded (not a user error)."""

    reason: str
    bug: Exception | None = None


def _attempt(
    spec_doc: Mapping[str, Any], lab: Lab, run_dir: Path, sink: Sink | None, log: RunLog, keep_raw: bool, task: Task
) -> RunResult | Failure:
    """Measure a spec in `run_dir`: its result (with the log's tail), or why it failed (said in the log too).

    A user's mistake and a fault of the machine (a full disk...) are failures in one line; anything
    else is a bug, recorded as such and raised again by the caller.
    """
    try:
        spec = parse_spec(spec_doc, lab_source(lab))
        with _deadline(spec.run.timeout if not spec.run.submission else 0):
            result = _execute(spec, run_dir, sink, log, keep_raw, lab, task)
    except UserError as exc:
        log(f"failed: {exc}")
        return Failure(str(exc))
    except Exception as exc:
        fault = machine_fault(exc, run_dir) if isinstance(exc, OSError) else None
        if fault is not None:
            log(f"failed: {fault}")
            return Failure(str(fault))
        log(f"internal error: {exc!r}")
        return Failure(f"internal error: {exc!r} (a bug: see the log)", exc)
    return replace(result, log_tail=log.tail())


def execute_run(ledger: Ledger, run_id: str, sink: Sink | None = None, keep_raw: bool = False) -> RunRecord:
    """Run a recorded run and record how it ended; user errors come back as a failed record."""
    record = ledger.get(run_id)
    # Recording our pid lets a scheduler tell a live foreground run from one whose process died.
    if record.status != "running":
        record = ledger.update(record.id, status="running", started=time.time(), pid=os.getpid())
    elif record.pid is None:
        record = ledger.update(record.id, pid=os.getpid())
    log = RunLog(Path(record.artifacts) / LOG_NAME)
    task = Task(record.job, ledger_floors(ledger, record.track))
    try:
        outcome = _attempt(record.spec, ledger.lab, Path(record.artifacts), sink, log, keep_raw, task)
    except KeyboardInterrupt:
        log("interrupted")
        ledger.record_failure(record.id, "interrupted by the user", log.tail(), status="interrupted")
        raise
    if isinstance(outcome, Failure):
        ended = ledger.record_failure(record.id, outcome.reason, log.tail())
        if outcome.bug is not None:
            raise outcome.bug
        return ended
    done = ledger.record_result(record.id, outcome)
    log(f"verdict: {done.verdict} ({done.verdict_reason})")
    return done


def yield_to_people() -> None:
    """Make this worker give way to the person at the console: a lower CPU priority.

    A run keeps every core busy for minutes; at the same priority the console's keys wait
    behind it for seconds. Children (encoders, inflate.sh) inherit the priority. The torch
    thread count stays torch's own: it changes the networks' float sums, so a run scored by a
    worker with fewer threads differed in the last digits from the same archive scored by
    `comma-tui run` or `score`.
    """
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)


def execute_job(lab: Lab, run_id: str, submission_id: str) -> JobOutcome:
    """Run the attempt `submission_id` of a run as a cluster job: it reports through files, never the ledger.

    The spec comes from the ticket the scheduler left in the run's folder; progress and the outcome
    go back beside it (see `engine.sched.job_files`), and the scheduler records them.
    """
    run_dir = lab.run_dir(run_id)
    ticket = read_ticket(run_dir, submission_id)
    began = time.time()
    log = RunLog(run_dir / LOG_NAME)
    log(f"job {submission_id} (attempt {ticket.attempt}) started on {socket.gethostname()}, pid {os.getpid()}")
    try:
        task = Task(ticket.job, ticket_floors(lab, ticket.floors))
        outcome = _attempt(ticket.spec, lab, run_dir, progress_sink(run_dir, submission_id), log, False, task)
    except KeyboardInterrupt:
        log("stopped: the job was stopped from outside")
        raise
    if isinstance(outcome, Failure):
        write_outcome(run_dir, JobOutcome(submission_id, None, outcome.reason, log.tail()))
        if outcome.bug is not None:
            raise outcome.bug
        return JobOutcome(submission_id, None, outcome.reason)
    # The run's own times, not the scheduler's: a job may wait on the cluster before it starts.
    job = JobOutcome(submission_id, replace(outcome, started=began, finished=time.time()))
    write_outcome(run_dir, job)
    return job


def _stop_on_sigterm() -> None:
    # A cluster stops a job with SIGTERM: unwind as for Ctrl-C, so that a submission's scripts
    # (in sessions of their own) are killed on the way out rather than left running.
    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def main(argv: list[str] | None = None) -> int:
    """Worker entry point: `python -m engine.sched.worker --lab DIR --run ID [--job SUBMISSION_ID]`."""
    parser = argparse.ArgumentParser(description="Execute one queued comma-tui run.")
    parser.add_argument("--lab", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--keep-raw", action="store_true")
    parser.add_argument("--job", metavar="SUBMISSION_ID", help="run as this cluster job: report through files")
    args = parser.parse_args(argv)
    yield_to_people()
    try:
        if args.job:
            _stop_on_sigterm()
            job = execute_job(Lab.open(args.lab), args.run, args.job)
            return 0 if job.result is not None else 1
        ledger = Ledger(Lab(args.lab))
        record = execute_run(ledger, args.run, json_lines_sink(sys.stdout), args.keep_raw)
    except UserError as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        fault = machine_fault(exc)
        if fault is None:
            raise
        print(f"worker: {fault}", file=sys.stderr)
        return fault.exit_code
    return 0 if record.status == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
