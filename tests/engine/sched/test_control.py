"""engine.sched.control without a scheduler: sweeps, around-floor, cancel, retry, bump, pause, status.

The lab's clip and models are stand-ins (queueing validates specs but reads no video); the one
process test kills a stand-in "worker" group, as a cancel of a running run does.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from engine.runs.spec import RunSpec, SpecError
from engine.runs.sweep import MAX_POINTS
from engine.sched import control
from engine.sched.pool import TAG_VAR, alive, child_env, run_tag
from engine.sched.state import hold
from ledger import Lab, Ledger, RunRecord
from ledger.errors import UserError
from tests.ledger.fixtures import result
from tests.polling import group_exists, wait_until


def measure(ledger: Ledger, record: RunRecord, score_bytes: int = 10_000) -> RunRecord:
    """Give a run a result, as a worker would (the first one of a track becomes its floor)."""
    ledger.update(record.id, status="running")
    return ledger.record_result(record.id, result(2.0, archive_bytes=score_bytes, scorer="s", clip="c"))


# parse_sweep


@pytest.mark.parametrize(
    ("text", "axis", "values"),
    [
        ("crf=32..36", "crf", [32, 33, 34, 35, 36]),
        ("film_grain=0,22", "film_grain", ["0", "22"]),
        ("crf=-2..+2", "crf", [-2, -1, 0, 1, 2]),
        ("crf=20..40:10", "crf", [20, 30, 40]),
        ("crf=30,32..33", "crf", ["30", 32, 33]),
        ("denoise=0.5..1.5:0.5", "denoise", [0.5, 1.0, 1.5]),
        ("inflate.scaler=lanczos,bicubic", "inflate.scaler", ["lanczos", "bicubic"]),
        (" crf = 33 ", "crf", ["33"]),
    ],
)
def test_parse_sweep(text: str, axis: str, values: list[object]) -> None:
    assert control.parse_sweep(text) == (axis, values)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("crf", "is not axis=values"),
        ("=3", "is not axis=values"),
        ("crf=", "has an empty value"),
        ("crf=1,,2", "has an empty value"),
        ("crf=36..32", "runs backwards: write 32..36"),
        ("crf=a..b", "needs numbers"),
        ("crf=1..5:0", "the step must be positive"),
        ("crf=0..100000", f"over the limit of {MAX_POINTS}"),
        ("crff=3", "unknown axis 'crff'"),
        ("scaler=lanczos", "is in several sections"),
    ],
)
def test_parse_sweep_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        control.parse_sweep(text)


# queue_sweep and around_floor


def test_a_sweep_queues_one_run_per_grid_point(lab: Lab, spec: RunSpec) -> None:
    ledger = Ledger(lab)
    parent = ledger.add_run(spec.to_dict(), label="parent")
    spec = spec.with_value("run.parent", parent.id)
    queued = control.queue_sweep(lab, spec, {"crf": ["32..33"], "film_grain": ["0", "22"]}, priority=3)
    labels = [r.label for r in queued]
    assert labels == [
        "base crf=32 film_grain=0",
        "base crf=32 film_grain=22",
        "base crf=33 film_grain=0",
        "base crf=33 film_grain=22",
    ]
    points = [(r.spec["encode"]["crf"], r.spec["encode"]["film_grain"]) for r in queued]
    assert points == [(32, 0), (32, 22), (33, 0), (33, 22)]
    assert {(r.status, r.parent, r.priority, r.track) for r in queued} == {("queued", parent.id, 3, "main")}
    assert "crf 34 -> 33" in queued[-1].changed
    assert [r.id for r in ledger.queued()][:4] == [r.id for r in queued]  # priority 3 goes first


def test_a_sweep_without_axes_queues_the_spec_itself(lab: Lab, spec: RunSpec) -> None:
    (only,) = control.queue_sweep(lab, spec, {})
    assert only.label == "base" and only.spec == spec.to_dict() and only.parent is None


@pytest.mark.parametrize(
    ("sweeps", "message"),
    [
        ({"crf": ["32"], "bogus": ["1"]}, "unknown axis 'bogus'"),
        ({"crf": ["32", "99"]}, "sweep point crf=99: encode.crf"),
        ({"crf": ["32", "soft"]}, "encode.crf value 'soft' is not a whole number"),
        ({"crf": ["32"], "encode.crf": ["33"]}, "are the same axis"),
        ({"crf": []}, "has no values"),
    ],
)
def test_an_invalid_sweep_queues_nothing(lab: Lab, spec: RunSpec, sweeps: dict[str, list[str]], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        control.queue_sweep(lab, spec, sweeps)
    assert len(Ledger(lab).all()) == 0


def test_a_sweep_with_an_unknown_parent_queues_nothing(lab: Lab, spec: RunSpec) -> None:
    with pytest.raises(UserError, match="no run r0042"):
        control.queue_sweep(lab, spec.with_value("run.parent", "r0042"), {"crf": ["30..31"]})
    assert len(Ledger(lab).all()) == 0


def test_around_floor_changes_one_axis_at_a_time(lab: Lab, spec: RunSpec) -> None:
    ledger = Ledger(lab)
    floor = measure(ledger, ledger.add_run(spec.to_dict(), label="first"))
    assert ledger.floors()["main"].id == floor.id
    queued = control.around_floor(lab, "main", "crf", [-2, -1, 0, "+1", 2])
    assert [r.label for r in queued] == ["crf=32", "crf=33", "crf=35", "crf=36"]
    assert [r.spec["encode"]["crf"] for r in queued] == [32, 33, 35, 36]
    assert {(r.parent, r.track, r.status) for r in queued} == {(floor.id, "main", "queued")}
    assert queued[0].changed == ["crf 34 -> 32"]

    both = control.around_floor_axes(lab, "main", {"crf": ["-1..+1"], "film_grain": ["+5"]})
    assert [r.label for r in both] == ["crf=33", "crf=35", "film_grain=5"]
    assert [len(r.changed) for r in both] == [1, 1, 1]


@pytest.mark.parametrize(
    ("axis", "offsets", "message"),
    [
        ("crf", ["-1", "+40"], "crf=74: encode.crf"),  # -1 is fine, but nothing is queued
        ("crf", ["-1", "0.5"], "takes whole numbers"),
        ("crf", ["-1", "x"], "offset 'x' for crf is not a number"),
        ("codec", ["+1"], "not a number: around-floor moves number axes"),
        ("crf", ["0", "-0"], "every offset is 0"),
    ],
)
def test_around_floor_errors_queue_nothing(
    lab: Lab, spec: RunSpec, axis: str, offsets: list[str], message: str
) -> None:
    ledger = Ledger(lab)
    measure(ledger, ledger.add_run(spec.to_dict()))
    with pytest.raises(SpecError, match=message):
        control.around_floor(lab, "main", axis, offsets)
    assert len(ledger.all()) == 1


def test_around_floor_needs_a_floor(lab: Lab) -> None:
    with pytest.raises(UserError, match="track 'main' has no floor yet"):
        control.around_floor(lab, "main", "crf", [-1, 1])


# cancel, retry, bump, pause


def test_cancel_retry_and_bump(lab: Lab, spec: RunSpec) -> None:
    ledger = Ledger(lab)
    a, b, c = (ledger.add_run(spec.to_dict(), label=x) for x in "abc")
    assert [r.status for r in control.cancel(lab, a.id)] == ["cancelled"]
    with pytest.raises(UserError, match="is cancelled: only queued, running or interrupted"):
        control.cancel(lab, c.id, a.id)  # all or nothing: c stays queued
    assert ledger.get(c.id).status == "queued"
    ledger.update(b.id, status="running")
    ledger.record_failure(b.id, "it broke", "the log's tail")
    (retried,) = control.retry(ledger, b.id)
    assert (retried.status, retried.parent, retried.spec, retried.label) == ("queued", b.id, b.spec, "b")
    assert [r.parent for r in control.retry(lab, a.id, b.id)] == [a.id, b.id]
    with pytest.raises(UserError, match="is queued: only failed, cancelled or interrupted"):
        control.retry(lab, a.id, c.id)

    assert control.bump(lab, c.id, 5).priority == 5
    assert control.bump(lab, c.id, -2).priority == 3
    assert ledger.queued()[0].id == c.id
    with pytest.raises(UserError, match="only queued runs have a priority"):
        control.bump(lab, b.id, 1)


def test_pause_and_resume(lab: Lab) -> None:
    control.pause(lab)
    assert Ledger(lab).paused() and control.status(lab).paused
    control.resume(lab)
    assert not Ledger(lab).paused()


def test_cancelling_a_running_run_kills_all_its_processes_and_partial_artifacts(lab: Lab, spec: RunSpec) -> None:
    ledger = Ledger(lab)
    record = ledger.update(ledger.add_run(spec.to_dict()).id, status="running", slot=0)
    run_dir = lab.run_dir(record.id)
    (run_dir / "work").mkdir()
    (run_dir / "work" / "0.raw").write_bytes(b"partial")
    (run_dir / "log.txt").write_text("stage encode: start\n")
    # A stand-in worker whose child leaves for a session of its own, as a submission's inflate.sh does.
    script = f"sleep 60 & setsid sleep 60 & echo $! > {run_dir / 'child.pid'}; wait"
    worker = subprocess.Popen(
        ["bash", "-c", script], start_new_session=True, env=child_env({TAG_VAR: run_tag(lab.root, record.id)})
    )
    try:
        ledger.update(record.id, pid=worker.pid)
        wait_until(lambda: (run_dir / "child.pid").is_file() and (run_dir / "child.pid").read_text().strip())
        child = int((run_dir / "child.pid").read_text())
        wait_until(lambda: os.getpgid(child) != worker.pid)  # setsid has left the worker's group (a busy box is slow)

        (cancelled,) = control.cancel(lab, record.id)

        assert cancelled.status == "cancelled" and cancelled.failure_reason == "cancelled by the user"
        worker.wait(timeout=10)
        assert not alive(child)
        wait_until(lambda: not group_exists(worker.pid), 10, "the worker's group to be gone (its dead reaped)")
        assert sorted(p.name for p in run_dir.iterdir()) == ["log.txt"]
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)


# status


def test_status_of_a_lab_without_a_scheduler(lab: Lab, spec: RunSpec) -> None:
    ledger = Ledger(lab)
    floor = measure(ledger, ledger.add_run(spec.to_dict(), label="floor"))
    low, high = ledger.add_run(spec.to_dict(), label="low"), ledger.add_run(spec.to_dict(), label="high", priority=2)
    broken = ledger.update(ledger.add_run(spec.to_dict(), label="broken").id, status="running")
    ledger.record_failure(broken.id, "worker (pid 1) was killed by SIGKILL", "last words")
    moving = ledger.update(ledger.add_run(spec.to_dict(), label="moving").id, status="running", slot=0)
    ledger.set_progress(moving.id, "score", 30, 120, 12.0, 36.0, "batches · bound 23.90 vs floor 23.10")

    state = control.status(ledger)

    assert (state.state, state.pid, state.slots, state.since, state.stopping) == ("stopped", None, None, None, False)
    assert [q.id for q in state.queued] == [high.id, low.id]
    (run,) = state.running
    assert (run.id, run.stage, run.done, run.total, run.fraction, run.eta) == (moving.id, "score", 30, 120, 0.25, 36.0)
    assert run.detail == "batches · bound 23.90 vs floor 23.10"
    assert run.slot == 0 and run.gpu is None and run.elapsed is not None
    assert [(f.track, f.id) for f in state.floors] == [("main", floor.id)]
    assert [(f.id, f.reason, f.log_tail) for f in state.failures] == [
        (broken.id, "worker (pid 1) was killed by SIGKILL", "last words")
    ]
    assert state.to_dict()["queued"][0]["id"] == high.id


def test_a_stop_by_hand_is_remembered_until_a_start(lab: Lab) -> None:
    # No scheduler runs: the stop is still remembered, so that opening the console starts none.
    assert control.stop(lab) is None
    assert control.glance(lab) == control.Glance("stopped", None, held=True)
    assert control.ensure_running(lab) is None
    hold(lab, False)  # what control.start does first
    assert control.glance(lab).held is False
