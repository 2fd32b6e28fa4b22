"""A detached job's files in its run folder: how a run on another machine reports without the ledger.

    runs/<id>/job.json           the ticket: which attempt this is and the spec to run (the scheduler writes it)
    runs/<id>/job-progress.json  the job's latest progress event, rewritten as it goes
    runs/<id>/job-result.json    how the attempt ended: its RunResult, or the reason it failed

A job on a cluster never opens the ledger's TinyDB files (file locks over a network filesystem are
not to be trusted): it writes these, and the scheduler, the ledger's only writer, records them.
Each file is replaced whole (`ledger.files.atomic_write`), so a reader sees the old content or the
new, never a mix; each names its attempt's submission id, so a late word from an older attempt is
told apart from the current one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.runs.progress import ProgressEvent, Sink
from engine.sched.floors import GroupFloor
from ledger.errors import UserError
from ledger.files import atomic_write
from ledger.records import Job
from ledger.results import RunResult

TICKET_NAME = "job.json"
PROGRESS_NAME = "job-progress.json"
RESULT_NAME = "job-result.json"
PROGRESS_INTERVAL = 0.5  # seconds between progress writes (a stage's last event is always written)


@dataclass(frozen=True)
class JobTicket:
    """What the scheduler hands a job: its submission id, its run and attempt, and the run's spec.

    `job` says whether it runs the spec or only scores its kept archive (`Job.RESCORE`); `floors`
    are the floors it may be rejected early against (none: it is scored in full).
    """

    submission_id: str
    run_id: str
    attempt: int
    spec: Mapping[str, Any]
    job: str = Job.RUN
    floors: tuple[GroupFloor, ...] = ()


@dataclass(frozen=True)
class JobOutcome:
    """How an attempt ended: a result, or the reason it failed (with the end of its log)."""

    submission_id: str
    result: RunResult | None
    reason: str = ""
    log_tail: str = ""


def _write(path: Path, data: Mapping[str, Any], durable: bool = True) -> None:
    atomic_write(path, (json.dumps(data, ensure_ascii=False) + "\n").encode(), durable=durable)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is damaged ({exc}): delete it and retry the run") from None
    return data if isinstance(data, dict) else None


def write_ticket(run_dir: Path, ticket: JobTicket) -> None:
    """Leave the ticket for the job (before it is submitted), and forget what an older attempt said."""
    for name in (PROGRESS_NAME, RESULT_NAME):
        (run_dir / name).unlink(missing_ok=True)
    data = {"submission_id": ticket.submission_id, "run": ticket.run_id, "attempt": ticket.attempt}
    data |= {"job": ticket.job, "floors": [f.to_dict() for f in ticket.floors]}
    _write(run_dir / TICKET_NAME, data | {"spec": dict(ticket.spec)})


def read_ticket(run_dir: Path, submission_id: str) -> JobTicket:
    """The ticket of `submission_id`; UserError when it is missing or belongs to another attempt."""
    data = _read(run_dir / TICKET_NAME)
    if data is None:
        raise UserError(f"no job ticket {run_dir / TICKET_NAME}: this job was not submitted by a comma-tui scheduler")
    if data.get("submission_id") != submission_id:
        raise UserError(f"job {submission_id} was superseded by {data.get('submission_id')}: nothing to do")
    floors = tuple(GroupFloor.from_dict(f) for f in data.get("floors", ()))
    job = str(data.get("job", Job.RUN))
    return JobTicket(submission_id, str(data["run"]), int(data["attempt"]), dict(data["spec"]), job, floors)


def progress_sink(run_dir: Path, submission_id: str, interval: float = PROGRESS_INTERVAL) -> Sink:
    """A sink that keeps the latest event in `job-progress.json`, at most one write per `interval`."""
    last = 0.0

    def emit(event: ProgressEvent) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < interval and event.done < event.total:
            return
        last = now
        data = {"event": "progress", **asdict(event), "job": submission_id}
        _write(run_dir / PROGRESS_NAME, data, durable=False)  # ephemeral, like the ledger's progress

    return emit


def read_progress(run_dir: Path, submission_id: str) -> dict[str, Any] | None:
    """The job's latest progress event (None before its first, or when it is an older attempt's)."""
    try:
        data = _read(run_dir / PROGRESS_NAME)
    except UserError:
        return None  # a torn progress file is replaced by the next write; not worth a word
    return data if data is not None and data.get("job") == submission_id else None


def write_outcome(run_dir: Path, outcome: JobOutcome) -> None:
    """Say how the attempt ended, durably: this file is what makes a finished run survive any crash."""
    data: dict[str, Any] = {"submission_id": outcome.submission_id, "reason": outcome.reason}
    data |= {"log_tail": outcome.log_tail, "result": None if outcome.result is None else outcome.result.to_dict()}
    _write(run_dir / RESULT_NAME, data)


def read_outcome(run_dir: Path, submission_id: str) -> JobOutcome | None:
    """How attempt `submission_id` ended, or None when it has not said (or the file is another attempt's)."""
    data = _read(run_dir / RESULT_NAME)
    if data is None or data.get("submission_id") != submission_id:
        return None
    try:
        result = None if data.get("result") is None else RunResult.from_dict(data["result"])
    except ValueError as exc:
        raise UserError(f"{run_dir / RESULT_NAME} holds no valid result ({exc})") from None
    return JobOutcome(submission_id, result, str(data.get("reason", "")), str(data.get("log_tail", "")))


def remove_job_files(run_dir: Path) -> None:
    """Delete the ticket, progress and outcome once the ledger holds what they said."""
    for name in (TICKET_NAME, PROGRESS_NAME, RESULT_NAME):
        (run_dir / name).unlink(missing_ok=True)
