"""Quitting the console leaves the queue running: a real scheduler, a real run on the demo assets.

The console starts the lab's scheduler on opening (as `comma-tui` does), a run is queued, `q`
quits; the scheduler must still be alive afterwards and finish the run. Teardown stops it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from comma_tui.app import CommaApp
from engine.sched import control
from engine.sched.pool import alive
from engine.sched.state import holder
from ledger import Lab, Ledger
from tests.comma_tui.pilot import SIZE, loaded, wait_for
from tests.polling import wait_until

if TYPE_CHECKING:
    from engine.demo.assets import DemoAssets

pytestmark = pytest.mark.anyio


def niceness(pid: int) -> int:
    """A process's nice value."""
    return os.getpriority(os.PRIO_PROCESS, pid)


TINY = {"preprocess": {"width": 128, "height": 96}, "encode": {"codec": "libx264", "crf": 30, "preset": "ultrafast"}}


@pytest.fixture
def real_lab(demo_assets: DemoAssets, tmp_path: Path) -> Iterator[Lab]:
    """A lab on the demo clip and scorer; the scheduler any test starts on it is stopped afterwards."""
    lab = Lab.create(tmp_path / "lab", demo_assets.clip, demo_assets.models)
    try:
        yield lab
    finally:
        state = holder(lab)
        if state is not None and state.pid:
            try:
                control.stop(lab, now=True, wait=True, timeout=30)
            finally:
                if alive(state.pid):
                    os.kill(state.pid, signal.SIGKILL)


async def test_quit_leaves_the_queue_running(real_lab: Lab) -> None:
    from engine.sched.worker import WORKER_NICE  # the engine (torch) only where a run is real

    ledger = Ledger(real_lab)
    ledger.set_paused(True)  # the run waits until the console is gone
    run = ledger.add_run(TINY, label="tiny")
    app = CommaApp(real_lab)  # starts the scheduler, as `comma-tui` does
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await wait_for(pilot, lambda: app.live is not None and app.live.scheduler.state == "paused", timeout=60)
        scheduler = holder(real_lab)
        assert scheduler is not None
        await pilot.press("p")  # resume: the run starts under the scheduler, not under the console
        await wait_for(pilot, lambda: app.snapshot is not None and len(app.snapshot.running) == 1, timeout=30)
        worker = Ledger(real_lab).get(run.id).pid
        assert worker is not None
        # The worker gives way to the console: a lower CPU priority than the scheduler that started it.
        wait_until(lambda: niceness(worker) > niceness(scheduler.pid), 20, "the worker to lower its priority")
        assert niceness(worker) == min(19, niceness(scheduler.pid) + WORKER_NICE)
        await pilot.press("q")
    assert app.farewell.startswith("comma-tui: the scheduler keeps running (1 running, 0 queued)")
    assert f"comma-tui sched stop --lab {real_lab.root}" in app.farewell
    assert alive(scheduler.pid) and holder(real_lab) is not None
    wait_until(lambda: Ledger(real_lab).get(run.id).status in ("done", "failed"), 240, "the run to end")
    finished = Ledger(real_lab).get(run.id)
    assert finished.status == "done", finished.failure_reason
    assert finished.metrics is not None and alive(scheduler.pid)
