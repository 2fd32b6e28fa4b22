"""engine.sched.worker's manners: a worker leaves a core to the console on a small machine."""

from __future__ import annotations

from engine.sched.worker import FEW_CORES, worker_threads


def test_a_worker_leaves_a_core_free_on_a_small_machine() -> None:
    assert [worker_threads(cores) for cores in (1, 2, FEW_CORES)] == [1, 1, FEW_CORES - 1]
    assert worker_threads(FEW_CORES + 1) is None  # many cores: torch's own choice
