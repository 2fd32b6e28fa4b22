"""The autopilot with real Optuna and a real journal file: seeding, proposals, results told, budget, stop, restart.

Its duty is driven pass by pass in-process, except across a restart, where a real scheduler
process runs it (with the queue paused, so that proposals wait and no worker is needed).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from engine.sched import autopilot, control
from engine.sched.autopilot import AutopilotRunning
from engine.sched.autopilot_duty import AutopilotDuty
from engine.sched.hooks import HookRunner
from engine.sched.pool import alive
from engine.sched.state import SchedulerPaths
from ledger import Lab, Ledger
from tests.engine.sched.autopilot_lab import (
    finish,
    finish_early,
    make_lab,
    measure,
    proposals,
    spec_with,
    state,
    write_search,
)
from tests.polling import wait_until


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    lab = make_lab(tmp_path)
    ledger = Ledger(lab)
    measure(ledger, spec_with(lab, crf=34, film_grain=0), 1.5)  # the floor
    measure(ledger, spec_with(lab, crf=30, film_grain=0), 1.9)  # a known point
    measure(ledger, spec_with(lab, crf=32, preset="4"), 2.2)  # outside the space: another preset
    return lab


def duty(lab: Lab, log: list[str] | None = None) -> AutopilotDuty:
    said = log if log is not None else []
    return AutopilotDuty(lab, Ledger(lab), 1, HookRunner(lab, said.append), said.append)


def trials(lab: Lab, track: str = "main") -> list[optuna.trial.FrozenTrial]:
    journal = autopilot.folder(lab, track) / "journal.log"
    storage = JournalStorage(JournalFileBackend(str(journal)))
    return optuna.load_study(study_name=state(lab, track).study, storage=storage).get_trials()


def point(record_spec: dict) -> tuple[int, int]:
    return record_spec["encode"]["crf"], record_spec["encode"]["film_grain"]


def test_seeded_from_the_ledger_proposals_queued_as_runs_and_the_budget_respected(lab: Lab, tmp_path: Path) -> None:
    ledger = Ledger(lab)
    floor = ledger.floors()["main"]
    autopilot.start(lab, write_search(tmp_path, budget=4, parallel=2))
    pilot = duty(lab)
    pilot.advance(state(lab))

    seeded = {t.user_attrs["seeded"] for t in trials(lab) if "seeded" in t.user_attrs}
    assert seeded == {"r0001", "r0002"}  # r0003 used another preset: not a point of the space
    first = proposals(ledger)
    assert len(first) == 2  # parallel
    for record in first:
        assert record.status == "queued" and record.parent == floor.id
        crf, grain = point(record.spec)
        assert record.label == f"auto: crf={crf} fg={grain}"
        assert record.notes.startswith("autopilot trial ") and state(lab).study in record.notes
    # The floor's neighbours come first: one axis moved one choice from (34, 0).
    assert {point(r.spec) for r in first} <= {(32, 0), (36, 0), (34, 10)}

    most_waiting = 0
    for _ in range(30):
        waiting = proposals(ledger, "queued")
        most_waiting = max(most_waiting, len(waiting))
        if waiting:
            finish(ledger, waiting[0])
        if pilot.advance(state(lab)).state == "done":
            break
    made = proposals(ledger)
    assert state(lab).state == "done" and len(made) == 4 and most_waiting <= 2
    points = [point(r.spec) for r in made]
    assert len(set(points)) == 4 and not {(34, 0), (30, 0)} & set(points)  # known runs are not re-run
    best = min([*made, floor], key=lambda r: r.score or 99)
    assert (state(lab).best, state(lab).best_run) == (best.score, best.id)
    assert state(lab).line() == f"autopilot 4/4 · best {best.score:.3f} ({best.id}) · done"


def test_results_are_told_complete_with_score_and_bytes_or_fail(lab: Lab, tmp_path: Path) -> None:
    text = write_search(tmp_path).read_text().replace("seed = 3", 'seed = 3\nobjective = ["score", "bytes"]')
    (tmp_path / "pareto.toml").write_text(text)
    autopilot.start(lab, tmp_path / "pareto.toml")
    ledger, pilot = Ledger(lab), duty(lab)
    pilot.advance(state(lab))
    good, bad = proposals(ledger)
    done = finish(ledger, good)
    ledger.update(bad.id, status="running", pid=os.getpid(), slot=0)
    ledger.record_failure(bad.id, "the encoder crashed")
    pilot.advance(state(lab))

    by_run = {t.user_attrs.get("run"): t for t in trials(lab)}
    assert by_run[good.id].state == TrialState.COMPLETE
    assert by_run[good.id].values == [done.score, float(done.total_bytes or 0)]
    assert by_run[bad.id].state == TrialState.FAIL
    assert state(lab).finished == 2 and len(proposals(ledger, "queued")) == 2  # two more took their place


def test_a_run_rejected_early_is_told_pruned_and_its_point_is_not_run_again(lab: Lab, tmp_path: Path) -> None:
    ledger = Ledger(lab)
    seeded = finish_early(ledger, ledger.add_run(spec_with(lab, crf=36, film_grain=10)), 9.0)
    autopilot.start(lab, write_search(tmp_path, budget=5, parallel=1))  # 5 points of the space are left
    pilot = duty(lab)
    pilot.advance(state(lab))
    (first,) = proposals(ledger)
    finish_early(ledger, first, 4.0)
    pilot.advance(state(lab))

    by_run = {t.user_attrs.get("run") or t.user_attrs.get("seeded"): t for t in trials(lab)}
    for loser in (seeded, first):
        assert by_run[loser.id].state == TrialState.PRUNED and by_run[loser.id].values is None
    for _ in range(30):
        waiting = proposals(ledger, "queued")
        if waiting:
            finish(ledger, waiting[0])
        if pilot.advance(state(lab)).state == "done":
            break
    points = [point(r.spec) for r in proposals(ledger)]
    assert state(lab).state == "done" and len(points) == len(set(points)) == 5
    assert point(seeded.spec) not in points  # a point rejected early is not proposed again
    assert state(lab).best_run != first.id  # an estimate is never the study's best


def test_stop_cancels_queued_proposals_runs_the_hook_and_a_second_start_is_refused(lab: Lab, tmp_path: Path) -> None:
    news = tmp_path / "news.txt"
    with open(lab.config_path, "a") as f:
        f.write(f'\n[hooks]\non_autopilot_done = "echo $COMMA_TUI_TRACK $COMMA_TUI_REASON >> {news}"\n')
    search = write_search(tmp_path)
    autopilot.start(lab, search)
    ledger, log = Ledger(lab), []
    pilot = duty(lab, log)
    pilot.advance(state(lab))
    with pytest.raises(AutopilotRunning, match=r"already runs on track 'main' \(autopilot 0/4"):
        autopilot.start(lab, search)

    assert autopilot.stop(lab, "main").state == "stopping"
    ended = pilot.advance(state(lab))
    assert ended.state == "stopped" and "autopilot stop" in ended.reason
    assert {r.status for r in proposals(ledger)} == {"cancelled"}
    assert {t.state for t in trials(lab) if "run" in t.user_attrs} == {TrialState.FAIL}
    pilot.hooks.close()
    assert news.read_text().strip() == "main stopped by comma-tui autopilot stop"
    autopilot.start(lab, search)  # a stopped one may be started again: a new study
    assert state(lab).state == "running"


@pytest.fixture
def scheduler(lab: Lab) -> Iterator[None]:
    """Stop the lab's scheduler after the test, whatever happened."""
    try:
        yield
    finally:
        pid = control.stop(lab, now=True, wait=True, timeout=30)
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGKILL)
        log = SchedulerPaths.of(lab).log
        print(log.read_text() if log.exists() else "no scheduler log")


def test_a_restarted_scheduler_resumes_the_study(lab: Lab, tmp_path: Path, scheduler: None) -> None:
    ledger = Ledger(lab)
    ledger.set_paused(True)  # proposals wait in the queue: no worker runs in this test
    autopilot.start(lab, write_search(tmp_path, budget=3, parallel=2))
    control.start(lab, slots=1)
    wait_until(lambda: len(proposals(ledger)) == 2, 60, "two proposals")
    control.stop(lab, wait=True, timeout=30)
    name = state(lab).study

    finish(ledger, proposals(ledger)[0])  # a run ends while no scheduler runs
    control.start(lab, slots=1)
    wait_until(lambda: len(proposals(ledger)) == 3 and state(lab).finished == 1, 60, "the third proposal")
    made = proposals(ledger)
    assert state(lab).study == name and len({point(r.spec) for r in made}) == 3
    assert len([t for t in trials(lab) if "run" in t.user_attrs]) == 3
    for record in proposals(ledger, "queued"):
        finish(ledger, record)
    wait_until(lambda: state(lab).state == "done", 60, "the autopilot to finish its budget")
    assert len(proposals(ledger)) == 3 and state(lab).finished == 3


def test_proposals_follow_the_floor_as_it_moves_while_the_space_keeps_its_base(lab: Lab, tmp_path: Path) -> None:
    ledger = Ledger(lab)
    base = ledger.floors()["main"].id
    autopilot.start(lab, write_search(tmp_path, budget=4, parallel=1))
    duty(lab).advance(state(lab))
    better = finish(ledger, proposals(ledger)[0], score=1.0)
    assert better.verdict == "promoted"

    restarted = duty(lab)  # a new scheduler: the study and its search are opened again
    restarted.advance(state(lab))
    assert restarted.open["main"].search.base == base == state(lab).base
    assert proposals(ledger, "queued")[0].parent == better.id
