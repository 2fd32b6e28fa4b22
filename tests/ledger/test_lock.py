"""The inter-process file lock: exclusive across processes, re-entrant, released by death."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from ledger import LedgerError
from ledger.lock import FileLock
from tests.ledger.fixtures import read_line, start_child

HOLDER = """
import sys, time
from pathlib import Path
from ledger.lock import FileLock
lock = FileLock(Path(sys.argv[1]))
lock.acquire()
print("holding", flush=True)
time.sleep(60)
"""


def test_reentrant_within_a_thread(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "x.lock")
    with lock, lock:
        assert lock.held
    assert not lock.held
    with pytest.raises(RuntimeError):
        lock.release()


def test_one_lock_object_per_path_per_process(tmp_path: Path) -> None:
    assert FileLock.for_path(tmp_path / "a.lock") is FileLock.for_path(tmp_path / "." / "a.lock")
    assert FileLock.for_path(tmp_path / "a.lock") is not FileLock.for_path(tmp_path / "b.lock")


def test_threads_take_turns(tmp_path: Path) -> None:
    lock = FileLock.for_path(tmp_path / "t.lock")
    inside, overlaps = [0], [0]

    def work() -> None:
        for _ in range(50):
            with lock:
                inside[0] += 1
                overlaps[0] += inside[0] > 1
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert overlaps[0] == 0


def test_another_process_holding_it_times_out_with_its_pid(tmp_path: Path, procs: list) -> None:
    path = tmp_path / "ledger.lock"
    holder = start_child(HOLDER, str(path))
    procs.append(holder)
    assert read_line(holder) == "holding"
    lock = FileLock(path, timeout=0.2)
    started = time.monotonic()
    with pytest.raises(LedgerError, match=rf"locked by another process \(held by pid {holder.pid}\)"):
        lock.acquire()
    assert time.monotonic() - started < 5
    assert not lock.held


def test_a_killed_holder_releases_the_lock(tmp_path: Path, procs: list) -> None:
    path = tmp_path / "ledger.lock"
    holder = start_child(HOLDER, str(path))
    procs.append(holder)
    assert read_line(holder) == "holding"
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    with FileLock(path, timeout=5) as lock:
        assert lock.held


def test_unwritable_lock_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="cannot open the lock file"):
        FileLock(tmp_path / "missing" / "x.lock").acquire()
