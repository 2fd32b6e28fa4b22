"""Early verdicts through the worker: real encodes, a real lab, the floor read from the ledger.

The clip has 6 pairs, scored in batches of 1: six batches, so a run can be stopped after four.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.media.video import RawWriter, iter_frames
from engine.runs.spec import lab_source, parse_spec
from engine.sched.floors import group_floors, ledger_floors
from engine.sched.job_files import JobTicket, write_ticket
from engine.sched.pool import child_env, kill_run, run_tag
from engine.sched.scheduler import Scheduler
from engine.sched.worker import Task, early_floors, execute_job, execute_run
from engine.scoring.early import MIN_BATCHES
from ledger import Lab, Ledger, RunRecord, load_per_pair
from ledger.records import Job
from tests import polling

PAIRS = 6
LOSER = {"encode": {"crf": 63}, "preprocess": {"width": 96, "height": 72}}  # a clear loser


def _spec(lab: Lab, **sections: Any) -> dict[str, Any]:
    data = {
        "encode": {"codec": "libsvtav1", "preset": "12", "crf": 35},
        "preprocess": {"width": 524, "height": 394},
        "score": {"batch_size": 1},
    }
    for name, values in sections.items():
        data[name] = data.get(name, {}) | values
    return parse_spec(data, lab_source(lab)).to_dict()


def _run(ledger: Ledger, label: str, **sections: Any) -> RunRecord:
    record = ledger.add_run(_spec(ledger.lab, **sections), label=label, status="running")
    return execute_run(ledger, record.id)


def _log(record: RunRecord) -> str:
    return (Path(record.artifacts) / "log.txt").read_text()


@pytest.fixture(scope="module")
def lab(demo_assets, tmp_path_factory: pytest.TempPathFactory) -> Lab:
    """A lab whose first run (the floor) is measured already."""
    lab = Lab.create(tmp_path_factory.mktemp("early") / "lab", demo_assets.clip, demo_assets.models)
    _run(Ledger(lab), "first")
    return lab


def test_the_first_run_of_a_track_is_scored_in_full(lab: Lab) -> None:
    ledger = Ledger(lab)
    first = ledger.get(next(r.id for r in ledger.all() if r.label == "first"))
    assert first.verdict == "promoted" and first.exact
    assert "early verdict: on" not in _log(first)
    per_pair = load_per_pair(lab, first.id)
    assert per_pair is not None and not np.isnan(per_pair.segnet).any()


def test_a_clear_loser_is_rejected_early_then_scored_fully_on_request(lab: Lab) -> None:
    ledger = Ledger(lab)
    floor = ledger.floor("main")
    assert floor is not None
    loser = _run(ledger, "loser", **LOSER)
    m = loser.metrics
    assert m is not None and m.estimated and loser.verdict == "rejected" and loser.compared_with == floor.id
    assert m.pairs_scored == MIN_BATCHES and m.pairs == PAIRS and m.early_floor == floor.score
    assert loser.verdict_reason.startswith(f"rejected early: score ≥ {m.score_bound:.2f} with 99.9% confidence after")
    assert f"after {MIN_BATCHES} of {PAIRS} pairs (estimate {m.ranked_score:.2f}; floor {floor.score:.2f})" in (
        loser.verdict_reason
    )
    assert "early verdict: on, against floor" in _log(loser)
    per_pair = load_per_pair(lab, loser.id)
    assert per_pair is not None and int(np.isnan(per_pair.segnet).sum()) == PAIRS - MIN_BATCHES
    assert json.loads((Path(loser.artifacts) / "report.json").read_text())["estimated"] is True

    ledger.rescore(loser.id)
    events: list[Any] = []
    rescored = execute_run(ledger, loser.id, sink=events.append)
    assert events[0].stage == "inflate" and "encode" not in {e.stage for e in events}
    assert rescored.exact and rescored.job == Job.RUN and rescored.metrics is not None
    assert rescored.verdict == "rejected" and not rescored.verdict_reason.startswith("rejected early")
    assert rescored.metrics.ranked_score >= m.score_bound  # the bound held
    per_pair = load_per_pair(lab, loser.id)
    assert per_pair is not None and not np.isnan(per_pair.segnet).any()

    # The same spec with early verdicts off: the same archive, scored in full, the same digits.
    full = _run(ledger, "loser, early off", **LOSER, score={"early": "off"})
    assert full.exact and full.metrics == rescored.metrics


def test_a_cluster_job_is_judged_by_the_floors_its_ticket_carries_and_rescored_from_one(lab: Lab) -> None:
    ledger = Ledger(lab)
    found = ledger.floor("main")
    record = ledger.add_run(_spec(lab, **LOSER), label="loser on a cluster", status="running")
    floors = group_floors(ledger, record.track)  # what the Ray backend puts in the ticket at launch
    assert found is not None and [f.run_id for f in floors] == [found.id]
    run_dir = Path(record.artifacts)
    write_ticket(run_dir, JobTicket("lab-r-a1", record.id, 1, record.spec, record.job, floors))
    outcome = execute_job(lab, record.id, "lab-r-a1")  # a job never opens the ledger
    assert outcome.result is not None and outcome.result.metrics.estimated
    judged = ledger.record_result(record.id, outcome.result)  # as the scheduler records a job's outcome
    assert judged.verdict_reason.startswith("rejected early") and judged.compared_with == found.id

    queued = ledger.rescore(record.id)
    ledger.update(record.id, status="running")
    write_ticket(run_dir, JobTicket("lab-r-a2", record.id, 2, queued.spec, queued.job, ()))
    again = execute_job(lab, record.id, "lab-r-a2")
    assert again.result is not None and not again.result.metrics.estimated
    assert ledger.record_result(record.id, again.result).exact


def test_a_run_level_with_the_floor_is_scored_in_full_with_the_same_digits(lab: Lab) -> None:
    ledger = Ledger(lab)
    found = ledger.floor("main")
    assert found is not None
    floor = ledger.get(found.id)  # its metrics: a full record
    assert floor.metrics is not None
    again = _run(ledger, "the floor's spec again")  # random batch order now: there is a floor to beat
    assert "early verdict: on" in _log(again)
    assert again.exact and again.metrics is not None
    assert (again.metrics.posenet, again.metrics.segnet, again.score) == (
        floor.metrics.posenet,
        floor.metrics.segnet,
        floor.score,
    )
    assert again.verdict == "rejected" and "a tie does not lower the floor" in again.verdict_reason


def _blocky(clip: Path, raw: Path) -> None:
    """The clip at a sixteenth of its size, blown up again: plausible colours, lost detail."""
    with RawWriter(raw) as writer:
        for frame in iter_frames(clip):
            small = frame[::16, ::16]
            writer.write(np.repeat(np.repeat(small, 16, axis=0), 16, axis=1)[: frame.shape[0], : frame.shape[1]])


def test_a_submission_is_rejected_early_and_rescored_by_its_own_inflate(lab: Lab, tmp_path: Path) -> None:
    folder = tmp_path / "submission"
    folder.mkdir()
    with zipfile.ZipFile(folder / "archive.zip", "w") as zf:
        zf.writestr("payload.bin", b"\0" * 64)
    blocky = tmp_path / "blocky.raw"
    _blocky(Path(lab.source().clip), blocky)
    (folder / "inflate.sh").write_text(f'#!/bin/bash\necho run >> "{folder}/runs.txt"\ncp "{blocky}" "$2/0.raw"\n')
    ledger = Ledger(lab)
    spec = parse_spec({"run": {"submission": str(folder)}, "score": {"batch_size": 1}}, lab_source(lab))
    record = ledger.add_run(spec.to_dict(), label="blocky submission", status="running")
    early = execute_run(ledger, record.id)
    assert early.estimated and early.verdict == "rejected"
    ledger.rescore(early.id)
    full = execute_run(ledger, early.id)
    assert full.exact and (folder / "runs.txt").read_text().count("run") == 2


def test_early_verdicts_follow_the_spec_then_the_labs_default(lab: Lab, tmp_path: Path) -> None:
    ledger = Ledger(lab)
    record = ledger.add_run(_spec(lab))
    task = Task(record.job, ledger_floors(ledger, record.track))
    auto = parse_spec(record.spec, lab_source(lab))
    assert early_floors(lab, auto, task) is not None
    off = parse_spec(_spec(lab, score={"early": "off"}), lab_source(lab))
    assert early_floors(lab, off, task) is None
    assert early_floors(lab, auto, Task(Job.RESCORE, task.floors)) is None  # a rescore scores in full
    config = lab.config_path.read_text()
    try:
        lab.config_path.write_text(config.replace('early = "auto"', 'early = "off"'))
        assert early_floors(lab, auto, task) is None
        forced = parse_spec(_spec(lab, score={"early": "auto"}), lab_source(lab))
        assert early_floors(lab, forced, task) is not None  # the spec's own choice wins
    finally:
        lab.config_path.write_text(config)


def test_a_crash_while_scoring_early_is_requeued_with_nothing_recorded(lab: Lab) -> None:
    ledger = Ledger(lab)
    record = ledger.add_run(_spec(lab, **LOSER), label="crashes")
    record = ledger.update(record.id, status="running", slot=0)
    out = Path(record.artifacts) / "worker.out"
    env = child_env({"COMMA_TUI_RUN": run_tag(lab.root, record.id)})
    with open(out, "wb") as stdout:
        worker = subprocess.Popen(
            [sys.executable, "-m", "engine.sched.worker", "--lab", str(lab.root), "--run", record.id],
            stdout=stdout,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    try:
        ledger.update(record.id, pid=worker.pid)
        polling.wait_until(lambda: '"stage": "score"' in out.read_text(), 600, "the worker to start scoring")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        kill_run(run_tag(lab.root, record.id), worker.pid, grace=1.0)
    Scheduler(lab).recover()  # the next scheduler finds the run's worker gone
    after = ledger.get(record.id)
    assert after.status == "queued" and after.requeued == 1
    assert after.metrics is None and after.verdict is None
    assert not (Path(after.artifacts) / "work").exists() and not (Path(after.artifacts) / "report.json").exists()
