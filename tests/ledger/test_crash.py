"""Crash safety and concurrency with real processes: SIGKILL mid-write, parallel appenders.

A child appends runs (and records results for some) as fast as it can and reports each id on
stdout only after the call returned. The parent kills it with SIGKILL at a random moment,
many times over; after each kill the ledger must open and hold every reported run, with its
result where one was reported, and every segment summary a reader would use must agree with its
records (the others are stale, and rebuilt).
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from ledger import Lab, Ledger
from ledger.summary import RunSummary
from tests.ledger.fixtures import assert_summaries_agree, make_lab, read_line, start_child

APPENDER = """
import sys
import time
from pathlib import Path
from ledger import Ledger
from tests.ledger.fixtures import result

ledger = Ledger(sys.argv[1])
len(ledger.all())  # read the lab before saying ready, so that the kills land among writes
go = Path(sys.argv[2]) if len(sys.argv) > 2 else None
count = int(sys.argv[3]) if len(sys.argv) > 3 else 10**9
print("ready", flush=True)
while go is not None and not go.exists():
    time.sleep(0.002)  # wait without burning a core the other child needs
pad = "x" * 3000  # make each write take a while, so kills land mid-write too
for i in range(count):
    run = ledger.add_run({"encode": {"crf": i % 50}, "run": {"pad": pad}}, label=f"child {i}")
    print("added", run.id, flush=True)
    if i % 3 == 0:
        ledger.update(run.id, status="running")
        ledger.record_result(run.id, result(3.0 - i * 1e-3, archive_bytes=1000))
        print("done", run.id, flush=True)
"""

KILLS = 25


def _reported(output: str) -> tuple[list[str], list[str]]:
    added, done = [], []
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "added":
            added.append(parts[1])
        elif len(parts) == 2 and parts[0] == "done":
            done.append(parts[1])
    return added, done


def test_sigkill_at_random_moments_loses_no_returned_run(tmp_path: Path, procs: list) -> None:
    lab = make_lab(tmp_path)
    rng = random.Random(20261125)
    all_added: list[str] = []
    all_done: list[str] = []
    for _ in range(KILLS):
        proc = start_child(APPENDER, str(lab.root))
        procs.append(proc)
        assert read_line(proc) == "ready"
        time.sleep(rng.uniform(0.005, 0.2))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        added, done = _reported(out)
        all_added += added
        all_done += done

        assert_summaries_agree(lab)  # before a reader rebuilds what the kill left stale
        ledger = Ledger(lab)  # always opens
        ids = [r.id for r in ledger.all()]
        assert list(ledger.all()) == [RunSummary.of(r) for r in ledger.records(ledger.all())]
        assert len(ids) == len(set(ids))
        missing = set(all_added) - set(ids)
        assert not missing, f"runs whose append returned are gone: {sorted(missing)}"
        for run in all_done:
            record = ledger.get(run)
            assert record.status == "done" and record.metrics is not None and record.verdict is not None
    assert len(all_added) > KILLS, "the child should have appended runs between kills"
    # every run file is whole JSON, and the survivors reopen after all that
    assert Ledger(lab).add_run({"encode": {"crf": 1}}).id == f"r{len(Ledger(lab).all()):04d}"


def test_two_processes_appending_in_parallel_lose_nothing(tmp_path: Path, procs: list) -> None:
    lab: Lab = make_lab(tmp_path)
    go = tmp_path / "go"
    each = 25
    children = [start_child(APPENDER, str(lab.root), str(go), str(each)) for _ in range(2)]
    procs.extend(children)
    for child in children:
        assert read_line(child) == "ready"
    go.touch()
    outputs = [child.communicate(timeout=120)[0] for child in children]
    for child in children:
        assert child.returncode == 0, child.stderr
    reported = [_reported(out) for out in outputs]
    added = [run for a, _ in reported for run in a]
    assert len(added) == 2 * each and len(set(added)) == 2 * each
    ledger = Ledger(lab)
    assert sorted(r.id for r in ledger.all()) == sorted(added)
    for _, done in reported:
        for run in done:
            assert ledger.get(run).status == "done"


DIE_INSIDE_WRITE = """
import os, signal, sys
import ledger.files as files
from ledger import Ledger
from tests.ledger.fixtures import result

ledger = Ledger(sys.argv[1])
where = sys.argv[2]
for i in range(3):
    print("added", ledger.add_run({"encode": {"crf": i}}).id, flush=True)

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

# The segment is written first, then its summary: `where` says which step of which file dies.
part, _, step = where.rpartition("-")
suffix = ".sum" if part == "summary" else ".json"
paths = {}

def open_(path, *args, **kwargs):
    fd = os.open(path, *args, **kwargs)
    paths[fd] = str(path)
    return fd

def write(fd, data):
    if step == "write" and suffix + "." in paths.get(fd, ""):
        os.write(fd, bytes(data)[: len(data) // 2])
        die()
    return os.write(fd, data)

def fsync(fd):
    if step == "fsync" and suffix + "." in paths.get(fd, ""):
        die()
    return os.fsync(fd)

def replace(src, dst):
    if step == "replace" and str(dst).endswith(suffix):
        die()
    return os.replace(src, dst)

class Patched:
    def __getattr__(self, name):
        return getattr(os, name)
patched = Patched()
patched.open, patched.write, patched.fsync, patched.replace = open_, write, fsync, replace
files.os = patched
ledger.add_run({"encode": {"crf": 99}}, label="the fourth")
print("survived", flush=True)
"""


@pytest.mark.parametrize("where", ["write", "fsync", "replace", "summary-write", "summary-replace"])
def test_death_inside_a_write_keeps_the_old_file(tmp_path: Path, procs: list, where: str) -> None:
    lab = make_lab(tmp_path)
    proc = start_child(DIE_INSIDE_WRITE, str(lab.root), where)
    procs.append(proc)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err
    added, _ = _reported(out)
    assert len(added) == 3 and "survived" not in out
    name = "runs-0000.sum" if where.startswith("summary") else "runs-0000.json"
    assert list(lab.ledger_dir.glob(f".{name}.*.tmp")), "the dead writer's temp file is left behind"
    assert assert_summaries_agree(lab) == (0 if where.startswith("summary") else 1)  # stale: not used
    ledger = Ledger(lab)
    if where.startswith("summary"):
        added.append("r0004")  # the run was stored before its summary: it is kept, and summarised anew
    assert [r.id for r in ledger.all()] == added  # the old file, whole; the unfinished append absent
    assert [r.label for r in ledger.runs(text="the fourth")] == (["the fourth"] if where.startswith("summary") else [])
    assert assert_summaries_agree(lab) == 1
    assert ledger.add_run({"encode": {"crf": 5}}).id == f"r{len(added) + 1:04d}"
    assert not list(lab.ledger_dir.glob(".*.tmp")), "the next writer sweeps the dead writer's temp file"
