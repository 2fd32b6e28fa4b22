"""A cluster job's files (ticket, progress, outcome) and the worker's job mode, without a cluster."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.runs.progress import ProgressEvent
from engine.sched.job_files import (
    PROGRESS_NAME,
    RESULT_NAME,
    JobOutcome,
    JobTicket,
    progress_sink,
    read_outcome,
    read_progress,
    read_ticket,
    remove_job_files,
    write_outcome,
    write_ticket,
)
from engine.sched.worker import execute_job
from ledger import Ledger
from ledger.errors import UserError
from tests.ledger.fixtures import make_lab, result


def test_ticket_and_outcome_round_trip_and_name_their_attempt(tmp_path: Path) -> None:
    spec = {"run": {"label": "x"}, "encode": {"crf": 33}}
    write_ticket(tmp_path, JobTicket("lab-r0001-a2", "r0001", 2, spec))
    assert read_ticket(tmp_path, "lab-r0001-a2") == JobTicket("lab-r0001-a2", "r0001", 2, spec)
    with pytest.raises(UserError, match="job lab-r0001-a1 was superseded by lab-r0001-a2"):
        read_ticket(tmp_path, "lab-r0001-a1")

    done = JobOutcome("lab-r0001-a2", result(1.25, host="node-7", log_tail="last words"))
    write_outcome(tmp_path, done)
    assert read_outcome(tmp_path, "lab-r0001-a2") == done
    assert read_outcome(tmp_path, "lab-r0001-a1") is None  # another attempt's word is not this one's
    failed = JobOutcome("lab-r0001-a3", None, "inflate.sh failed", "tail")
    write_outcome(tmp_path, failed)
    assert read_outcome(tmp_path, "lab-r0001-a3") == failed

    remove_job_files(tmp_path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match="no job ticket .*not submitted by a comma-tui scheduler"):
        read_ticket(tmp_path, "lab-r0001-a2")


def test_a_damaged_outcome_is_a_user_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / RESULT_NAME).write_text('{"submission_id": "j", "result": {"metrics": {}}}')
    with pytest.raises(UserError, match=f"{tmp_path / RESULT_NAME} holds no valid result"):
        read_outcome(tmp_path, "j")
    (tmp_path / RESULT_NAME).write_text('{"submission_id": "j", "res')
    with pytest.raises(UserError, match="is damaged"):
        read_outcome(tmp_path, "j")


def test_progress_is_written_at_a_bounded_rate_and_read_for_its_own_attempt(tmp_path: Path) -> None:
    sink = progress_sink(tmp_path, "job-1", interval=3600.0)
    sink(ProgressEvent("encode", 1, 100, 0.5, 49.5))
    first = (tmp_path / PROGRESS_NAME).read_bytes()
    for done in range(2, 100):
        sink(ProgressEvent("encode", done, 100, 0.5, 1.0))
    assert (tmp_path / PROGRESS_NAME).read_bytes() == first  # within the interval: not rewritten
    sink(ProgressEvent("encode", 100, 100, 9.0, 0.0))  # a stage's end is always said
    assert read_progress(tmp_path, "job-1") == {
        "event": "progress",
        "stage": "encode",
        "done": 100,
        "total": 100,
        "elapsed": 9.0,
        "eta": 0.0,
        "detail": "",  # where a score stage's early verdict stands travels with it too
        "metrics": {},  # a training run's figures (loss terms, estimate) travel with its progress
        "job": "job-1",
    }
    assert read_progress(tmp_path, "job-0") is None
    (tmp_path / PROGRESS_NAME).write_text("{torn")
    assert read_progress(tmp_path, "job-1") is None


def test_a_job_reports_its_failure_through_files_and_never_opens_the_ledger(tmp_path: Path) -> None:
    lab = make_lab(tmp_path)
    record = Ledger(lab).add_run({"run": {"submission": str(tmp_path / "missing"), "label": "x"}})
    run_dir = lab.run_dir(record.id)
    write_ticket(run_dir, JobTicket("job-a1", record.id, 1, record.spec))
    away = tmp_path / "ledger-away"
    shutil.move(lab.ledger_dir, away)  # a job that opened the ledger would make its folder again
    try:
        outcome = execute_job(lab, record.id, "job-a1")
        with pytest.raises(UserError, match="superseded"):
            execute_job(lab, record.id, "job-a0")
        assert not lab.ledger_dir.exists()
    finally:
        shutil.move(away, lab.ledger_dir)
    assert outcome.result is None and outcome.reason.startswith(f"submission {tmp_path / 'missing'} is not a folder")
    written = read_outcome(run_dir, "job-a1")
    assert written is not None and written.reason == outcome.reason and "failed: submission" in written.log_tail
    assert "job job-a1 (attempt 1) started on" in (run_dir / "log.txt").read_text()
    assert Ledger(lab).get(record.id).status == "queued"  # the scheduler records it, not the job
