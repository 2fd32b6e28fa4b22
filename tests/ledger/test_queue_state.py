"""The queue's state file: paused or not, and since when."""

from __future__ import annotations

from pathlib import Path

from ledger.queue_state import QueueState, QueueStateStore


def test_default_then_pause_and_resume(tmp_path: Path) -> None:
    store = QueueStateStore(tmp_path)
    assert store.read() == QueueState(paused=False, since=None)
    paused = store.write(True)
    assert paused.paused and paused.since is not None
    assert store.write(True) == paused  # no change, same since
    resumed = store.write(False)
    assert not resumed.paused and resumed.since is not None and resumed.since >= paused.since  # type: ignore[operator]
    assert QueueStateStore(tmp_path).read() == resumed
