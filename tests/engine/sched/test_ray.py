"""The queue on a real Ray cluster: one head on loopback for the module (see `tests.ray_head`).

Runs are gated submissions (`tests.engine.sched.gated`) executed as Ray jobs by the real worker,
reporting through their files; the scheduler is the real detached process. Every test ends what
it started: the scheduler, the lab's jobs on the cluster, and the processes of its runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from comma_tui.cli.sched import status_lines
from engine.sched import control
from engine.sched.pool import alive
from engine.sched.ray_backend import RayBackend, submission_id
from engine.sched.state import SchedulerError, SchedulerPaths, holder, lock_held
from ledger import Lab, Ledger, LedgerError, RunRecord
from ledger.scheduler_settings import SchedulerSettings
from tests import polling
from tests.engine.sched.gated import Assets, Gated, make_assets, queue_gated, schedulers
from tests.ray_head import RayHead, start_head

pytest.importorskip("ray", reason="the Ray tests need ray installed (pip install 'comma-tui[test]')")


def wait_until(predicate: Callable[[], object], timeout: float = 180.0, what: str = "a condition") -> None:
    """`polling.wait_until` with room for Ray job starts on a loaded machine."""
    polling.wait_until(predicate, timeout, what)


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayHead]:
    head = start_head(tmp_path_factory.mktemp("ray-head"))
    try:
        yield head
    finally:
        head.stop()


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Assets:
    return make_assets(tmp_path_factory.mktemp("ray-assets"))


@pytest.fixture
def token(head: RayHead, monkeypatch: pytest.MonkeyPatch) -> str:
    """The head's token, where the scheduler (and the schedulers it spawns) look first."""
    monkeypatch.setenv("RAY_AUTH_TOKEN", head.token)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    return head.token


def ray_lab(root: Path, assets: Assets, head: RayHead, gpus_per_run: float = 0.0) -> Lab:
    return Lab.create(
        root, assets.clip, assets.models, scheduler=SchedulerSettings("ray", head.address, 1, gpus_per_run)
    )


@pytest.fixture
def lab(tmp_path: Path, assets: Assets, head: RayHead, token: str) -> Lab:
    return ray_lab(tmp_path / "lab", assets, head)


@pytest.fixture
def gated(lab: Lab, assets: Assets, tmp_path: Path) -> Callable[[str], Gated]:
    return lambda name: queue_gated(lab, assets, tmp_path / "submissions" / name, name)


def lab_jobs(head: RayHead, lab: Lab) -> list[dict[str, Any]]:
    """The cluster's run jobs of `lab`."""
    return [
        j
        for j in head.jobs()
        if j.get("type") == "SUBMISSION"
        and (j.get("metadata") or {}).get("lab_id") == lab.lab_id()
        and (j.get("metadata") or {}).get("comma_tui") == "run"
    ]


def job_status(head: RayHead, job: str) -> str | None:
    return next((j["status"] for j in head.jobs() if j.get("submission_id") == job), None)


@pytest.fixture
def sched(lab: Lab, head: RayHead) -> Iterator[Callable[..., int]]:
    """Start schedulers on the lab; afterwards stop them, the lab's jobs, and its runs' processes."""

    def leftovers() -> None:
        for job in lab_jobs(head, lab):
            if job["status"] in ("PENDING", "RUNNING"):
                head.request("POST", f"/api/jobs/{job['submission_id']}/stop")
        for pid in run_processes(lab):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    with schedulers(lab, leftovers, stop_timeout=90) as start:
        yield start


def run_processes(lab: Lab, run: str = "") -> list[int]:
    """The live job processes of the lab's runs (of one run, if named) on this machine, and their inflate.sh."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        worker = b"engine.sched.worker" in argv and str(lab.root).encode() in argv
        inflate = any(arg.endswith(b"inflate.sh") for arg in argv) and str(lab.root.parent).encode() in b" ".join(argv)
        if (worker or inflate) and (not run or run.encode() in argv) and entry.name.isdigit():
            found.append(int(entry.name))
    return found


def holding(lab: Lab, *runs: Gated) -> Callable[[], bool]:
    """Whether exactly these runs run as Ray jobs, each held in its inflate.sh."""

    def check() -> bool:
        running = {r.id for r in control.status(lab).running if r.job_state == "RUNNING"}
        return running == {r.id for r in runs} and all(r.inflate_pids() for r in runs)

    return check


def test_three_runs_complete_through_ray_jobs_with_progress_and_job_ids(
    lab: Lab, gated: Callable[[str], Gated], sched: Callable[..., int], head: RayHead
) -> None:
    a, b, c = gated("a"), gated("b"), gated("c")
    ledger = Ledger(lab)
    sched()
    lab_id = lab.lab_id()
    assert lab_id is not None
    wait_until(holding(lab, a, b), what="a and b running as Ray jobs, held in inflate.sh")
    status = control.status(lab)
    assert (status.backend, status.address, status.slots) == ("ray", head.address, 2)  # 2 CPUs, 1 per run
    assert {r.job for r in status.running} == {submission_id(lab_id, r.id, 1) for r in (a, b)}
    assert ledger.get(c.id).status == "queued"
    lines = "\n".join(status_lines(status))
    assert f"Ray job {submission_id(lab_id, a.id, 1)}  RUNNING" in lines
    assert f"ray 127.0.0.1:{head.address.rsplit(':', 1)[1]} · " in lines and "of 2 CPUs busy" in lines

    # Progress, from the job's file through the scheduler into the ledger, while the job runs.
    def held_in_inflate() -> bool:
        progress = ledger.progress()
        return all(run.id in progress and progress[run.id].stage == "inflate" for run in (a, b))

    wait_until(held_in_inflate, 30, "progress of the held runs: their inflate began")
    assert ledger.get(a.id).status == "running"
    glance = control.glance(lab)
    assert glance.backend == "ray" and glance.jobs[a.id]["state"] == "RUNNING"

    for run in (a, b, c):
        run.release()
    # The scheduler records a result, then removes the job's files, then says the run ended.
    said = SchedulerPaths.of(lab).log
    ends = [
        f"{r.id}: Ray job {submission_id(lab_id, r.id, 1)} wrote its outcome; its result is recorded; the run is done"
        for r in (a, b, c)
    ]
    wait_until(lambda: all(end in said.read_text() for end in ends), 300, "the three runs to finish")
    for run in (a, b, c):
        record = ledger.get(run.id)
        assert record.metrics is not None and record.verdict is not None and record.host == socket.gethostname()
        folder = Path(record.artifacts)
        assert {"archive.zip", "report.json", "log.txt"} <= {p.name for p in folder.iterdir()}
        assert not list(folder.glob("job*.json"))  # the ledger holds what the job files said
        log = (folder / "log.txt").read_text()
        assert f"job {submission_id(lab_id, run.id, 1)} (attempt 1) started on" in log and "verdict:" in log
    jobs = lab_jobs(head, lab)
    assert sorted(j["submission_id"] for j in jobs) == sorted(submission_id(lab_id, r.id, 1) for r in (a, b, c))
    assert {j["metadata"]["run"]: (j["metadata"]["label"], j["metadata"]["track"]) for j in jobs} == {
        r.id: (name, "main") for r, name in ((a, "a"), (b, "b"), (c, "c"))
    }
    assert ledger.progress() == {}


def test_cancel_stops_the_job_and_failed_runs_carry_their_reason(
    lab: Lab, gated: Callable[[str], Gated], sched: Callable[..., int], head: RayHead
) -> None:
    a, b, c = gated("a"), gated("b"), gated("c")
    c.release(fail=True)  # c fails in its inflate.sh as soon as it runs
    ledger = Ledger(lab)
    sched()
    lab_id = lab.lab_id() or ""
    wait_until(holding(lab, a, b), what="a and b held")

    # Cancel: the job is stopped, its processes end (inflate.sh's session too), its partial files go.
    inflate = a.inflate_pids()[0]
    assert [r.status for r in control.cancel(lab, a.id)] == ["cancelled"]
    wait_until(lambda: job_status(head, submission_id(lab_id, a.id, 1)) == "STOPPED", 60, "a's job to stop")
    wait_until(lambda: not alive(inflate), 30, "a's inflate.sh to end with its job")
    log = SchedulerPaths.of(lab).log
    wait_until(lambda: f"{a.id}: Ray job" in log.read_text(), 30, "the scheduler to see a's job end")
    assert [p.name for p in lab.run_dir(a.id).iterdir()] == ["log.txt"]

    # c takes the free slot and fails with its own reason, written by its job.
    wait_until(lambda: ledger.get(c.id).status == "failed", what="c to fail")
    assert "inflate.sh failed with exit status 1: failing on purpose" in ledger.get(c.id).failure_reason

    # b's worker dies hard: Ray marks its job FAILED, and the run fails with Ray's message and log tail.
    workers = [p for p in run_processes(lab, b.id) if p not in b.inflate_pids()]
    assert workers
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: ledger.get(b.id).status == "failed", 60, "b to fail")
    failed = ledger.get(b.id)
    assert failed.failure_reason.startswith(f"Ray job {submission_id(lab_id, b.id, 1)} failed: Job entrypoint")
    assert "[ray] " in failed.log_tail and "stage inflate: start" in failed.log_tail
    assert job_status(head, submission_id(lab_id, b.id, 1)) == "FAILED"


class _DiesBeforeMarking(Ledger):
    """A ledger whose scheduler dies after submitting a job and before marking the run running."""

    def update(self, run: str, **fields: Any) -> RunRecord:
        raise LedgerError("the scheduler died here")


def test_sigkill_of_the_scheduler_then_restart_adopts_records_and_runs_each_attempt_once(
    lab: Lab, gated: Callable[[str], Gated], sched: Callable[..., int], head: RayHead
) -> None:
    a, b, c, d = gated("a"), gated("b"), gated("c"), gated("d")
    d.release()
    ledger = Ledger(lab)
    first = sched()
    lab_id = lab.lab_id() or ""
    wait_until(holding(lab, a, b), what="a and b held")
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: not alive(first) and not lock_held(lab), 30, "the first scheduler to die")

    # While no scheduler runs: b finishes, a dying scheduler has submitted c without marking it,
    # and d was marked running by one that died before submitting it.
    b.release()
    wait_until(lambda: job_status(head, submission_id(lab_id, b.id, 1)) == "SUCCEEDED", what="b's job to finish")
    assert ledger.get(b.id).status == "running"
    backend = RayBackend(lab, lab.scheduler_settings())
    backend.lab_id = lab_id
    backend.launch(_DiesBeforeMarking(lab), ledger.get(c.id), slot=1)
    assert ledger.get(c.id).status == "queued"
    ledger.update(d.id, status="running", slot=3)

    sched()
    log = SchedulerPaths.of(lab).log.read_text()
    assert f"{a.id}: adopted Ray job {submission_id(lab_id, a.id, 1)}" in log
    assert f"{b.id}: Ray job {submission_id(lab_id, b.id, 1)} wrote its outcome; its result is recorded; the" in log
    assert f"{c.id}: adopted Ray job {submission_id(lab_id, c.id, 1)}" in log
    assert f"{d.id}: interrupted: its Ray job {submission_id(lab_id, d.id, 1)} was not on the cluster" in log
    assert ledger.get(b.id).status == "done"
    assert (ledger.get(a.id).status, ledger.get(a.id).requeued) == ("running", 0)
    assert ledger.get(c.id).status == "running" and ledger.get(d.id).requeued == 1

    a.release()
    c.release()
    wait_until(lambda: all(ledger.get(r.id).status == "done" for r in (a, b, c, d)), 300, "every run to finish")
    expected = [submission_id(lab_id, r.id, 1) for r in (a, b, c)] + [submission_id(lab_id, d.id, 2)]
    assert sorted(j["submission_id"] for j in lab_jobs(head, lab)) == sorted(expected)  # one job per attempt


def test_a_run_that_cannot_be_placed_is_reported_and_cancelled(
    tmp_path: Path, assets: Assets, head: RayHead, token: str
) -> None:
    lab = ray_lab(tmp_path / "lab", assets, head, gpus_per_run=1)  # the head has no GPU
    run = queue_gated(lab, assets, tmp_path / "sub", "wants a GPU")
    pid = control.start(lab)
    try:
        log = SchedulerPaths.of(lab).log
        assert "warning: cannot be placed: each run asks for 1 GPU and 1 CPU" in log.read_text()
        wait_until(lambda: [r.job_state for r in control.status(lab).running] == ["PENDING"], 60, "a pending job")
        running = control.status(lab).running[0]
        assert running.job_note.startswith("cannot be placed") and control.glance(lab).jobs[run.id]["note"]
        assert "PENDING: cannot be placed" in "\n".join(status_lines(control.status(lab)))
        control.cancel(lab, run.id)
        sid = submission_id(lab.lab_id() or "", run.id, 1)
        wait_until(lambda: f"{run.id}: Ray job {sid} stopped; the run is cancelled" in log.read_text(), 30, "the end")
        assert control.status(lab).running == () and job_status(head, sid) != "RUNNING"
    finally:
        control.stop(lab, now=True, wait=True, timeout=60)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_lab_the_cluster_cannot_see_is_refused_by_the_probe(assets: Assets, head: RayHead, token: str) -> None:
    if head.hidden is None:
        pytest.skip("this platform cannot hide a folder from the head (no mount namespace)")
    lab = ray_lab(head.hidden / "lab", assets, head)
    record = Ledger(lab).add_run({"run": {"label": "waits"}})
    with pytest.raises(SchedulerError) as raised:
        control.start(lab)
    said = str(raised.value)
    assert "cannot run this lab's jobs" in said and f"needs the lab at {lab.root}" in said and "\n" not in said
    assert holder(lab) is None and Ledger(lab).get(record.id).status == "queued"


def test_a_missing_token_is_one_line_and_loses_nothing(
    tmp_path: Path, assets: Assets, head: RayHead, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = Lab.create(tmp_path / "lab", assets.clip, assets.models)  # a local lab, pointed at Ray by the flags
    record = Ledger(lab).add_run({"run": {"label": "waits"}})
    # The head wants a token: none in the environment, none in ~/.ray.
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(SchedulerError, match="uses token auth and got no token: set RAY_AUTH_TOKEN"):
        control.start(lab, backend="ray", ray_address=head.address)
    assert holder(lab) is None and Ledger(lab).get(record.id).status == "queued"
