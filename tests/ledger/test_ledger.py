"""The `Ledger` API: adding runs, status changes, results, failures, progress, queue state."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from ledger import Lab, Ledger, LedgerError, segments
from tests.ledger.fixtures import make_lab, measured, metrics, result, spec


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return make_lab(tmp_path)


@pytest.fixture
def ledger(lab: Lab) -> Ledger:
    return Ledger(lab)


def test_add_run_allocates_sortable_ids_and_an_artifacts_folder(ledger: Ledger, lab: Lab) -> None:
    first = ledger.add_run(spec(), label="baseline", notes="svt defaults", priority=2)
    second = ledger.add_run(spec(crf=35), parent=first.id, track="small")
    assert (first.id, second.id) == ("r0001", "r0002")
    assert first.status == "queued" and first.priority == 2 and first.position == 1
    assert first.label == "baseline" and first.notes == "svt defaults" and first.track == "main"
    assert first.created > 0 and first.started is None and first.finished is None
    assert first.artifacts == str(lab.run_dir("r0001")) and Path(first.artifacts).is_dir()
    assert second.parent == "r0001" and second.changed == ["crf 34 -> 35"] and second.track == "small"
    assert ledger.get("r2") == second and ledger.get("2") == second


def test_add_run_running_sets_started(ledger: Ledger) -> None:
    run = ledger.add_run(spec(), status="running")
    assert run.status == "running" and run.started is not None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"parent": "r0099"}, "no run r0099 in .*ledger list"),
        ({"status": "done"}, "queued or running"),
        ({"track": "  "}, "track cannot be empty"),
    ],
)
def test_add_run_refusals(ledger: Ledger, kwargs: dict, message: str) -> None:
    with pytest.raises(LedgerError, match=message):
        ledger.add_run(spec(), **kwargs)
    assert len(ledger.all()) == 0


def test_add_run_refuses_specs_that_are_not_plain_data(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="plain JSON"):
        ledger.add_run({"encode": {"crf": object()}})
    with pytest.raises(LedgerError, match="dict of settings"):
        ledger.add_run({"encode": 35})
    with pytest.raises(LedgerError, match="plain JSON"):
        ledger.add_run({"encode": {"crf": float("nan")}})


def test_get_unknown_or_malformed_id(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match=r"no run r0099 in .*db: list runs with comma-tui ledger list"):
        ledger.get("r0099")
    with pytest.raises(LedgerError, match="is not a run id"):
        ledger.get("banana")


def test_status_lifecycle_sets_times_and_clears_the_worker(ledger: Ledger) -> None:
    run = ledger.add_run(spec())
    running = ledger.update(run.id, status="running", pid=4242, slot=1)
    assert running.started is not None and running.pid == 4242 and running.slot == 1
    interrupted = ledger.update(run.id, status="interrupted")
    assert interrupted.finished is not None and interrupted.pid is None and interrupted.slot is None
    requeued = ledger.requeue(run.id)
    assert requeued.status == "queued" and requeued.requeued == 1 and requeued.started is None
    assert requeued.finished is None
    ledger.update(run.id, status="running", pid=1)
    cancelled = ledger.update(run.id, status="cancelled")
    assert cancelled.status == "cancelled"
    with pytest.raises(LedgerError, match="cancelled and cannot become running"):
        ledger.update(run.id, status="running")


@pytest.mark.parametrize(("status", "message"), [("done", "record_result"), ("finished", "unknown status")])
def test_update_refuses_bad_statuses(ledger: Ledger, status: str, message: str) -> None:
    run = ledger.add_run(spec())
    with pytest.raises(LedgerError, match=message):
        ledger.update(run.id, status=status)


def test_update_bookkeeping_fields(ledger: Ledger) -> None:
    run = ledger.add_run(spec())
    changed = ledger.update(run.id, priority=5, label="again", notes="n", track="side", position=0)
    assert (changed.priority, changed.label, changed.notes, changed.track, changed.position) == (
        5,
        "again",
        "n",
        "side",
        0,
    )
    assert ledger.update(run.id) == changed
    with pytest.raises(ValueError, match="cannot change"):
        ledger.update(run.id, metrics={})
    ledger.update(run.id, status="running")
    with pytest.raises(LedgerError, match="only a queued run can move"):
        ledger.update(run.id, track="main")


def test_requeue_refuses_runs_that_did_not_stop_midway(ledger: Ledger) -> None:
    run = ledger.add_run(spec())
    with pytest.raises(LedgerError, match="only interrupted or running"):
        ledger.requeue(run.id)


def test_queued_is_in_launch_order(ledger: Ledger) -> None:
    a, b, c = (ledger.add_run(spec(crf=n)) for n in (30, 31, 32))
    ledger.update(c.id, priority=1)
    ledger.update(a.id, status="running")
    assert [r.id for r in ledger.queued()] == [c.id, b.id]
    assert [r.id for r in ledger.running()] == [a.id]


def test_record_result_stores_everything_and_reviews(ledger: Ledger) -> None:
    run = ledger.add_run(spec())
    ledger.update(run.id, status="running", pid=99, slot=0)
    ledger.set_progress(run.id, "score", 5, 10, 3.0, 3.0)
    extra = {"post_filter": {"loss": 0.1}}
    done = ledger.record_result(run.id, result(2.19, host="gpu-box", extra=extra, log_tail="ok\n"))
    assert done.status == "done" and done.finished is not None and done.pid is None and done.slot is None
    assert done.metrics is not None and done.metrics.score == 2.19 and done.metrics.archive_bytes == 100_000
    assert done.stage_timings == {"encode": 1.5, "score": 2.0}
    assert (done.scorer_fingerprint, done.clip_fingerprint, done.device_kind) == ("scorer-a", "clip-a", "cpu")
    assert (done.decoder, done.host, done.engine_version, done.extra) == ("pyav", "gpu-box", "0.1.0", extra)
    assert done.verdict == "promoted" and done.verdict_at is not None
    assert ledger.progress() == {}
    with pytest.raises(LedgerError, match="already has a result"):
        ledger.record_result(run.id, result(2.0))


def test_progress_keeps_a_steps_finite_live_figures(ledger: Ledger) -> None:
    run = ledger.add_run(spec())
    ledger.set_progress(run.id, "train", 40, 100, 8.0, 12.0, metrics={"loss": 0.25, "estimate": float("nan")})
    assert ledger.progress()[run.id].metrics == {"loss": 0.25}  # no estimate yet: nothing to show
    ledger.set_progress(run.id, "score", 1, 10)
    assert ledger.progress()[run.id].metrics == {}


def test_record_result_refuses_malformed_results(ledger: Ledger) -> None:
    run = ledger.add_run(spec())
    with pytest.raises(ValueError, match="device_kind"):
        ledger.record_result(run.id, result(2.0, device="tpu"))
    with pytest.raises(ValueError, match="finite"):
        ledger.record_result(run.id, replace(result(2.0), metrics=replace(metrics(2.0), score=float("nan"))))
    assert ledger.get(run.id).status == "queued"


def test_record_failure_and_first_ending_wins(ledger: Ledger) -> None:
    run = ledger.add_run(spec())
    ledger.update(run.id, status="running", pid=5)
    failed = ledger.record_failure(run.id, "exit status 1", log_tail="x" * 20_000)
    assert failed.status == "failed" and failed.failure_reason == "exit status 1" and failed.pid is None
    assert len(failed.log_tail) == 8000 and failed.log_tail.startswith("…")
    assert ledger.record_failure(run.id, "killed by SIGKILL", status="cancelled") == failed
    done = measured(ledger, 2.0)
    assert ledger.record_failure(done.id, "late report").status == "done"
    with pytest.raises(ValueError, match="failed, cancelled or interrupted"):
        ledger.record_failure(run.id, "x", status="done")


def test_archive_moves_ended_runs_out_of_the_views_and_back(ledger: Ledger, lab: Lab) -> None:
    floor = measured(ledger, 2.0)
    worse = measured(ledger, 2.5, parent=floor.id)
    broken = ledger.add_run(spec(), status="running")
    ledger.record_failure(broken.id, "exit status 1")
    waiting = ledger.add_run(spec())
    with pytest.raises(LedgerError, match=f"{waiting.id} is queued: cancel it before archiving it"):
        ledger.archive([worse.id, waiting.id])
    with pytest.raises(LedgerError, match=f"{floor.id} is the floor of main"):
        ledger.archive([floor.id])
    assert not ledger.get(worse.id).archived  # all or nothing
    assert [r.archived for r in ledger.archive([worse.id, broken.id])] == [True, True]
    assert [r.id for r in ledger.runs()] == [floor.id, waiting.id]
    assert [r.id for r in Ledger(lab).runs(archived=True)] == [worse.id, broken.id]  # kept on disk
    assert Ledger(lab).get(worse.id).metrics == worse.metrics
    ledger.archive([worse.id], archived=False)
    assert [r.id for r in ledger.runs()] == [floor.id, worse.id, waiting.id]


def test_interrupted_failure_can_be_requeued(ledger: Ledger) -> None:
    run = ledger.add_run(spec(), status="running")
    ledger.record_failure(run.id, "scheduler died", status="interrupted")
    assert ledger.requeue(run.id).status == "queued"


def test_progress_lives_apart_from_the_history(ledger: Ledger, lab: Lab) -> None:
    run = ledger.add_run(spec(), status="running")
    history = {p.name: p.stat().st_mtime_ns for p in lab.ledger_dir.glob("runs-*.json")}
    progress = ledger.set_progress(run.id, "encode", 30, 120, 4.0, 12.0)
    assert progress.fraction == 0.25 and progress.run_id == run.id
    ledger.set_progress(run.id, "encode", 60, 120, 8.0, None)
    assert {p.name: p.stat().st_mtime_ns for p in lab.ledger_dir.glob("runs-*.json")} == history
    seen = Ledger(lab).progress()
    assert list(seen) == [run.id] and seen[run.id].done == 60 and seen[run.id].eta is None
    ledger.clear_progress(run.id)
    ledger.clear_progress(run.id)  # twice is fine
    assert ledger.progress() == {}


def test_pause_and_resume(ledger: Ledger, lab: Lab) -> None:
    assert ledger.paused() is False
    ledger.set_paused(True)
    since = ledger.paused_since()
    assert Ledger(lab).paused() is True and since is not None
    ledger.set_paused(True)
    assert ledger.paused_since() == since
    ledger.set_paused(False)
    assert ledger.paused() is False


def test_two_ledgers_on_one_lab_see_each_other(lab: Lab) -> None:
    one, two = Ledger(lab), Ledger(lab.root)
    before = two.revision()
    run = one.add_run(spec())
    assert two.revision() != before
    assert two.get(run.id) == run
    two.update(run.id, label="from two")
    assert one.get(run.id).label == "from two"
    one.set_paused(True)
    assert two.paused()


def test_history_rolls_over_into_new_files_and_reopens(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segments, "RUNS_PER_FILE", 4)
    ledger = Ledger(lab)
    ids = [ledger.add_run(spec(crf=20 + i)).id for i in range(10)]
    assert sorted(p.name for p in lab.ledger_dir.glob("runs-*.json")) == [
        "runs-0000.json",
        "runs-0001.json",
        "runs-0002.json",
    ]
    ledger.record_result(ids[1], result(2.0))
    ledger.override(ids[1], "rejected", "no")
    reopened = Ledger(lab)
    assert [r.id for r in reopened.all()] == ids
    assert reopened.get(ids[1]).verdict == "rejected" and reopened.get(ids[1]).overrides
    assert reopened.add_run(spec()).id == "r0011"


def test_a_run_read_from_its_own_file_is_as_another_writer_left_it(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    # Reading one run stats only the file it was written to while that file is as summarised: a
    # change there by another writer is read, and a file that is gone sends it to look everywhere.
    monkeypatch.setattr(segments, "RUNS_PER_FILE", 4)
    reader, writer = Ledger(lab), Ledger(lab.root)
    ids = [writer.add_run(spec(crf=20 + i)).id for i in range(10)]
    assert [r.id for r in reader.all()] == ids  # every summary read
    assert reader.get(ids[5]).label == ""
    writer.update(ids[5], label="changed by the writer")
    assert reader.get(ids[5]).label == "changed by the writer"
    newer = writer.add_run(spec()).id  # a file the reader never summarised
    assert reader.get(newer).id == newer
    (lab.ledger_dir / "runs-0002.json").unlink()
    with pytest.raises(LedgerError):
        reader.get(ids[9])


def test_threads_sharing_a_lab_lose_nothing(lab: Lab) -> None:
    ledgers = [Ledger(lab), Ledger(lab)]
    made: list[str] = []

    def work(ledger: Ledger) -> None:
        for _ in range(15):
            made.append(ledger.add_run(spec()).id)

    threads = [threading.Thread(target=work, args=(ledgers[i % 2],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(made) == [f"r{n:04d}" for n in range(1, 61)]
    assert [r.id for r in Ledger(lab).all()] == sorted(made)


def test_stale_temp_files_are_swept_by_the_next_writer(ledger: Ledger, lab: Lab) -> None:
    ledger.add_run(spec())
    stale = lab.ledger_dir / ".runs-0000.json.12345.deadbeef.tmp"
    stale.write_text('{"half": ')
    Ledger(lab).add_run(spec())
    assert not stale.exists()


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[: len(raw) // 2],
        lambda raw: b"\x00\xff garbage \x13",
        lambda raw: b"",
        lambda raw: b"[1, 2, 3]",
        lambda raw: b'{"runs": {}}',
    ],
    ids=["truncated", "garbage", "empty", "not-tables", "no-schema"],
)
def test_damaged_history_is_refused_untouched(ledger: Ledger, lab: Lab, damage) -> None:
    ledger.add_run(spec())
    path = lab.ledger_dir / "runs-0000.json"
    damaged = damage(path.read_bytes())
    path.write_bytes(damaged)
    before = os.stat(path)
    with pytest.raises(LedgerError) as caught:
        Ledger(lab).all()
    message = str(caught.value)
    assert str(path) in message and "left untouched" in message
    assert path.read_bytes() == damaged and os.stat(path).st_mtime_ns == before.st_mtime_ns
    with pytest.raises(LedgerError):
        ledger.add_run(spec())  # a writer refuses too, and does not overwrite it
    assert path.read_bytes() == damaged


def test_damaged_queue_state_is_refused_untouched(ledger: Ledger, lab: Lab) -> None:
    ledger.set_paused(True)
    path = lab.ledger_dir / "queue.json"
    path.write_bytes(b"{oops")
    with pytest.raises(LedgerError, match=str(path)):
        Ledger(lab)
    assert path.read_bytes() == b"{oops"


def test_a_ledger_needs_a_lab(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="comma-tui init"):
        Ledger(tmp_path)


def test_a_damaged_record_costs_only_itself_when_one_run_is_read(lab: Lab) -> None:
    ledger = Ledger(lab)
    for crf in (30, 31, 32):
        ledger.add_run(spec(crf=crf))
    path = lab.ledger_dir / "runs-0000.json"
    tables = json.loads(path.read_text())
    tables["runs"]["3"]["status"] = "exploded"  # no such status
    path.write_text(json.dumps(tables))
    # One run read whole (`ledger show`) makes that run's record alone.
    assert Ledger(lab).get("r0002").spec["encode"]["crf"] == 31
    with pytest.raises(LedgerError, match=r"runs-0000.json holds a run record that cannot be read \(document 3"):
        Ledger(lab).get("r0003")
    with pytest.raises(LedgerError, match="runs-0000.json holds a run record that cannot be read"):
        Ledger(lab).all()  # a summary needs every record of the file
