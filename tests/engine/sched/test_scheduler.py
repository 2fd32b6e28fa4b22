"""The scheduler with real processes: slots, cancel, crashes of workers and of itself, pause, stop.

Runs here are gated submissions (see `tests.engine.sched.gated`): real workers, held in their
inflate stage as long as a test needs them running. In-process tests drive `Scheduler` ticks by hand.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.sched import control
from engine.sched.pool import TAG_VAR, Worker, alive, child_env, kill_run, run_tag
from engine.sched.scheduler import PROGRESS_INTERVAL, Scheduler, SchedulerRunning
from engine.sched.state import SchedulerPaths, lock_held, slot_gpu
from ledger import Lab, Ledger, RunRecord
from tests import polling
from tests.engine.sched.gated import Assets, Gated, make_assets, queue_gated, schedulers
from tests.polling import group_exists


# Scheduler tests start real workers: give them longer than the default.
def wait_until(predicate: Callable[[], object], timeout: float = 60.0, what: str = "a condition") -> None:
    """`polling.wait_until` with the longer default these tests need."""
    polling.wait_until(predicate, timeout, what)


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Assets:
    """A tiny demo clip and scorer (runs score in seconds), and the clip decoded as a .raw."""
    return make_assets(tmp_path_factory.mktemp("sched-assets"))


@pytest.fixture
def lab(tmp_path: Path, assets: Assets) -> Lab:
    return Lab.create(tmp_path / "lab", assets.clip, assets.models)


@pytest.fixture
def gated(lab: Lab, assets: Assets, tmp_path: Path) -> Callable[[str], Gated]:
    """Queue a run that holds in its inflate stage until released."""
    return lambda name: queue_gated(lab, assets, tmp_path / "submissions" / name, name)


@pytest.fixture
def sched(lab: Lab) -> Iterator[Callable[..., int]]:
    """Start schedulers on the lab (`sched(slots=N)`); afterwards stop them and kill what their runs left."""

    def leftovers() -> None:
        for record in Ledger(lab).records(Ledger(lab).all()):
            kill_run(run_tag(lab.root, record.id), record.pid, grace=1.0)

    with schedulers(lab, leftovers, stop_timeout=30) as start:
        yield start


def running(ledger: Ledger) -> list[RunRecord]:
    return [r for r in ledger.running() if r.pid is not None]


def test_slot_limit_gpu_pinning_cancel_and_stop_now(
    lab: Lab, gated: Callable[[str], Gated], sched: Callable[..., int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7,9")  # the scheduler pins slot 0 to GPU 7, slot 1 to 9
    a, b, c = gated("a"), gated("b"), gated("c")
    ledger = Ledger(lab)
    sched(slots=2)
    most = 0

    def two_holding() -> bool:
        nonlocal most
        now = running(ledger)
        most = max(most, len(ledger.running()))
        return {r.id for r in now} == {a.id, b.id} and bool(a.inflate_pids()) and bool(b.inflate_pids())

    wait_until(two_holding, what="a and b holding in inflate.sh")
    assert most <= 2 and ledger.get(c.id).status == "queued"
    for record in running(ledger):
        environ = Path(f"/proc/{record.pid}/environ").read_bytes().split(b"\0")
        assert f"CUDA_VISIBLE_DEVICES={slot_gpu(('7', '9'), record.slot)}".encode() in environ
    assert {r.gpu for r in control.status(lab).running} == {"7", "9"}

    worker, inflate = ledger.get(a.id).pid, a.inflate_pids()[0]
    assert worker is not None and os.getpgid(inflate) != worker  # inflate.sh left the worker's group
    (cancelled,) = control.cancel(lab, a.id)
    assert cancelled.status == "cancelled"
    wait_until(lambda: not group_exists(worker), 15, "the cancelled worker's process group to go")
    assert not alive(inflate)
    assert not (lab.run_dir(a.id) / "work").exists() and (lab.run_dir(a.id) / "log.txt").exists()

    def c_replaces_a() -> bool:
        nonlocal most
        most = max(most, len(ledger.running()))
        return {r.id for r in running(ledger)} == {b.id, c.id}

    wait_until(c_replaces_a, what="c to take the freed slot")
    assert most <= 2
    pids = [ledger.get(b.id).pid, ledger.get(c.id).pid]
    control.stop(lab, now=True, wait=True, timeout=30)
    for run in (b, c):
        record = ledger.get(run.id)
        assert (record.status, record.requeued) == ("queued", 1), record.failure_reason
    assert not any(group_exists(p) for p in pids if p)
    assert ledger.get(a.id).status == "cancelled"


def test_a_worker_killed_by_sigkill_is_requeued_once_then_left_interrupted_and_the_next_starts(
    lab: Lab, gated: Callable[[str], Gated], sched: Callable[..., int]
) -> None:
    a, b = gated("a"), gated("b")
    ledger = Ledger(lab)
    sched(slots=1)
    wait_until(lambda: [r.id for r in running(ledger)] == [a.id] and a.inflate_pids(), what="a holding")
    inflate, first = a.inflate_pids()[0], ledger.get(a.id).pid or 0
    os.kill(first, signal.SIGKILL)  # lost, not failed: a runs again from the queue, ahead of b

    def a_holding_again() -> bool:
        record = ledger.get(a.id)
        return record.status == "running" and record.pid not in (None, first) and len(a.inflate_pids()) == 2

    wait_until(a_holding_again, what="a requeued and holding again")
    lost = ledger.get(a.id)
    assert lost.requeued == 1 and f"worker (pid {first}) was killed by SIGKILL" in lost.failure_reason
    assert "stage archive" in lost.log_tail  # the tail of the run's log comes with it
    assert not alive(inflate)  # the dead worker's inflate.sh was killed too
    assert ledger.get(b.id).status == "queued"

    os.kill(ledger.get(a.id).pid or 0, signal.SIGKILL)  # lost again: a crash that repeats is not retried forever
    wait_until(lambda: ledger.get(a.id).status == "interrupted", 15, "a to be left interrupted")
    assert ledger.get(a.id).requeued == 1
    # The scheduler's log line follows the ledger's record of it.
    wait_until(lambda: "requeued once already, so left interrupted" in SchedulerPaths.of(lab).log.read_text())
    wait_until(lambda: [r.id for r in running(ledger)] == [b.id], what="b to start")


def test_scheduler_crash_adopts_live_workers_and_requeues_dead_ones_once(
    lab: Lab, gated: Callable[[str], Gated], sched: Callable[..., int]
) -> None:
    a, b = gated("a"), gated("b")
    ledger = Ledger(lab)
    first = sched(slots=1)
    wait_until(lambda: running(ledger) and a.inflate_pids(), what="a holding")
    worker = ledger.get(a.id).pid
    assert worker is not None

    # The scheduler alone dies: its worker lives on, and the next scheduler adopts it.
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: not alive(first) and not lock_held(lab), 10, "the first scheduler to die")
    assert alive(worker)
    second = sched(slots=1)
    record = ledger.get(a.id)
    assert (record.status, record.pid, record.requeued) == ("running", worker, 0)
    assert f"{a.id}: adopted" in SchedulerPaths.of(lab).log.read_text()

    # Now the machine "crashes": scheduler and worker die together; the run is requeued once.
    os.kill(second, signal.SIGKILL)
    os.killpg(worker, signal.SIGKILL)
    wait_until(lambda: not alive(second) and not alive(worker), 10, "scheduler and worker to die")
    sched(slots=1)
    record = ledger.get(a.id)
    assert record.requeued == 1 and record.status in ("queued", "running")
    assert "was gone when the scheduler started again" in record.failure_reason
    a.release()
    b.release(fail=True)  # one scored run is proof enough; b only has to end
    wait_until(lambda: [ledger.get(r.id).status for r in (a, b)] == ["done", "failed"], 120, "the queue to finish")
    assert "inflate.sh failed" in ledger.get(b.id).failure_reason
    done = ledger.get(a.id)
    assert done.requeued == 1 and done.verdict is not None and done.metrics is not None
    wait_until(lambda: ledger.progress() == {}, 10, "no progress left of ended runs")


def test_pause_resume_and_a_graceful_stop(lab: Lab, gated: Callable[[str], Gated], sched: Callable[..., int]) -> None:
    control.pause(lab)
    a, b = gated("a"), gated("b")
    ledger = Ledger(lab)
    sched(slots=1)
    assert control.status(lab).state == "paused" and control.glance(lab).state == "paused"
    log = SchedulerPaths.of(lab).log
    wait_until(lambda: "queue paused: 2 queued run(s) wait" in log.read_text(), 10, "the scheduler to see the pause")
    assert ledger.get(a.id).status == "queued"

    control.resume(lab)
    wait_until(lambda: [r.id for r in running(ledger)] == [a.id], what="a to start after resume")
    assert control.status(lab).state == "running"
    assert control.stop(lab, wait=False) is not None  # graceful: a finishes, b never starts
    wait_until(lambda: control.status(lab).stopping, 10, "the scheduler to say it is stopping")
    a.release(fail=True)  # ending fast is enough: the scheduler waits for it either way
    wait_until(lambda: not lock_held(lab), 120, "the scheduler to exit once a ended")
    assert ledger.get(a.id).status == "failed"
    assert ledger.get(b.id).status == "queued"
    assert control.status(lab).state == "stopped"


def test_a_second_scheduler_refuses_to_start(lab: Lab, sched: Callable[..., int]) -> None:
    pid = sched(slots=1)
    with pytest.raises(SchedulerRunning, match=rf"already running \(pid {pid}, since .+\) for lab {lab.root}"):
        control.start(lab)
    assert control.ensure_running(lab) == pid
    direct = subprocess.run(
        [sys.executable, "-m", "engine.sched.scheduler", "--lab", str(lab.root)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert direct.returncode == 2
    assert f"already running (pid {pid}" in direct.stderr
    assert control.stop(lab) == pid
    assert control.status(lab).state == "stopped" and not alive(pid)
    assert control.stop(lab) is None


# In-process: a Scheduler's recovery and ticks, with stand-in processes.


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_recovery_requeues_once_and_leaves_foreground_runs_alone(lab: Lab) -> None:
    ledger = Ledger(lab)
    spec = {"run": {"label": "x"}}
    fresh = ledger.add_run(spec)
    ledger.update(fresh.id, status="running", slot=0, pid=_dead_pid())
    again = ledger.add_run(spec)
    ledger.update(again.id, status="running", slot=0)
    ledger.requeue(again.id)  # it was requeued once already
    ledger.update(again.id, status="running", slot=0, pid=_dead_pid())
    unlaunched = ledger.add_run(spec)
    ledger.update(unlaunched.id, status="running", slot=1)  # the scheduler died before its Popen
    foreground = ledger.add_run(spec, status="running")  # `comma-tui run` in some terminal
    live = ledger.update(ledger.add_run(spec, status="running").id, pid=os.getpid())  # one that says its pid
    gone = ledger.update(ledger.add_run(spec, status="running").id, pid=_dead_pid())  # its terminal died

    Scheduler(lab, slots=1, gpus=()).recover()

    assert (ledger.get(fresh.id).status, ledger.get(fresh.id).requeued) == ("queued", 1)
    assert (ledger.get(again.id).status, ledger.get(again.id).requeued) == ("interrupted", 1)
    assert ledger.get(unlaunched.id).status == "queued"
    assert ledger.get(foreground.id).status == "running"
    assert ledger.get(live.id).status == "running"
    assert (ledger.get(gone.id).status, ledger.get(gone.id).requeued) == ("queued", 1)


def _stand_in(lab: Lab, ledger: Ledger, script: str, timeout: int = 0) -> tuple[RunRecord, Worker]:
    """A run marked running whose 'worker' is a small Python script writing to the worker files."""
    record = ledger.add_run({"run": {"timeout": timeout}})
    record = ledger.update(record.id, status="running", slot=0)
    run_dir = lab.run_dir(record.id)
    with open(run_dir / "worker.out", "wb") as out, open(run_dir / "log.txt", "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=out,
            stderr=err,
            start_new_session=True,
            env=child_env({TAG_VAR: run_tag(lab.root, record.id)}),
        )
    record = ledger.update(record.id, pid=proc.pid)
    tag = run_tag(lab.root, record.id)
    worker = Worker(record.id, proc.pid, 0, record.started or time.time(), timeout, run_dir, proc, tag)
    return record, worker


def test_ticks_follow_progress_at_a_bounded_rate_log_other_output_and_enforce_timeouts(lab: Lab) -> None:
    ledger = Ledger(lab)
    script = (
        "import json, sys, time\n"
        "end, i = time.time() + 1.5, 0\n"
        "while time.time() < end:\n"
        "    i += 1\n"
        "    event = {'event': 'progress', 'stage': 'score', 'done': i, 'total': 10**6, 'elapsed': 1.0, 'eta': 2.0,\n"
        "             'detail': 'batches · bound 23.90 vs floor 23.10', 'metrics': {'loss': 0.5, 'estimate': 1.25}}\n"
        "    print(json.dumps(event), flush=True)\n"
        "    time.sleep(0.002)\n"
        "print('a line that is not JSON', flush=True)\n"
        "sys.stderr.write('a warning on stderr\\n'); sys.stderr.flush()\n"
        "time.sleep(120)\n"
    )
    record, worker = _stand_in(lab, ledger, script, timeout=1)
    scheduler = Scheduler(lab, slots=1, gpus=())
    scheduler.workers[record.id] = worker
    scheduler.timeout_grace = 3600.0  # no timeout yet
    writes: list[float] = []
    original = scheduler.ledger.set_progress

    def counting(*args: Any, **kwargs: Any) -> Any:
        writes.append(time.monotonic())
        return original(*args, **kwargs)

    scheduler.ledger.set_progress = counting  # type: ignore[method-assign]
    log = lab.run_dir(record.id) / "log.txt"
    ticks = 0

    def tick_until_plain_line() -> bool:
        nonlocal ticks
        scheduler.tick()
        ticks += 1
        return "not JSON" in log.read_text()

    wait_until(tick_until_plain_line, 30, "the plain line in the log")
    assert len(writes) >= 3  # it followed the progress as it went...
    assert len(writes) <= (writes[-1] - writes[0]) / PROGRESS_INTERVAL + 2 < ticks  # ...but not every tick
    progress = ledger.progress()[record.id]
    assert (progress.stage, progress.detail) == ("score", "batches · bound 23.90 vs floor 23.10")  # forwarded whole
    assert progress.metrics == {"loss": 0.5, "estimate": 1.25}  # and a stage's live figures with it
    assert "[stdout] a line that is not JSON" in log.read_text() and "a warning on stderr" in log.read_text()

    scheduler.timeout_grace = 0.0  # now it is past its 1 s run.timeout
    wait_until(lambda: scheduler.tick() or record.id not in scheduler.workers, 15, "the timeout to end the run")
    ended = ledger.get(record.id)
    assert ended.status == "failed" and "run.timeout of 1 s" in ended.failure_reason
    assert not alive(worker.pid) and ledger.progress() == {}
    assert not (lab.run_dir(record.id) / "worker.out").exists()


def test_a_worker_that_exits_without_a_result_fails_its_run(lab: Lab) -> None:
    ledger = Ledger(lab)
    record, worker = _stand_in(lab, ledger, "import sys; sys.exit(3)")
    scheduler = Scheduler(lab, slots=1, gpus=())
    scheduler.workers[record.id] = worker
    wait_until(lambda: scheduler.tick() or not scheduler.workers, 15, "the exit to be noticed")
    ended = ledger.get(record.id)
    assert ended.status == "failed"
    assert f"worker (pid {worker.pid}) exited with status 3 without recording a result" in ended.failure_reason
