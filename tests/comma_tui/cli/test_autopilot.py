"""`comma-tui autopilot start|status|stop`, through the real command line and a real scheduler.

The queue is paused, so the scheduler's duty queues proposals and no worker runs.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from comma_tui.cli import main
from engine.sched import control
from engine.sched.pool import alive
from ledger import Lab, Ledger
from tests.engine.sched.autopilot_lab import measure, proposals, spec_with, state, write_search
from tests.polling import wait_until


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A lab with a floor on track main and a paused queue; its scheduler is stopped afterwards."""
    (tmp_path / "clip.mkv").write_bytes(b"a stand-in clip")
    (tmp_path / "models").mkdir()
    lab = Lab.create(tmp_path / "lab", tmp_path / "clip.mkv", tmp_path / "models", original_bytes=1_000_000)
    ledger = Ledger(lab)
    measure(ledger, spec_with(lab, crf=34, film_grain=0), 1.5)
    ledger.set_paused(True)
    try:
        yield lab
    finally:
        pid = control.stop(lab, now=True, wait=True, timeout=20)
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_start_status_and_stop(lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    search = write_search(tmp_path, budget=6, parallel=2)
    assert main(["autopilot", "start", str(search), "--budget", "5", "--lab", str(lab.root)]) == 0
    said = capsys.readouterr().out
    assert "autopilot started on track main: budget 5 run(s), base r0001" in said
    ledger = Ledger(lab)
    wait_until(lambda: state(lab).proposed == 2, 60, "the scheduler's first proposals")

    assert main(["autopilot", "start", str(search), "--lab", str(lab.root)]) == 2
    assert "already runs on track 'main' (autopilot 0/5" in capsys.readouterr().err

    assert main(["autopilot", "status", "--lab", str(lab.root)]) == 0
    assert "main: running · autopilot 0/5 · best 1.500 (r0001) · 2 queued so far" in capsys.readouterr().out

    assert main(["autopilot", "stop", "--lab", str(lab.root)]) == 0
    assert "is stopping" in capsys.readouterr().out
    wait_until(lambda: state(lab).state == "stopped", 30, "the scheduler to stop the autopilot")
    assert {r.status for r in proposals(ledger)} == {"cancelled"}
    assert main(["autopilot", "stop", "--lab", str(lab.root)]) == 2
    assert "no autopilot is running" in capsys.readouterr().err


def test_stop_without_a_scheduler_stops_it_here(lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["autopilot", "start", str(write_search(tmp_path)), "--lab", str(lab.root)]) == 0
    wait_until(lambda: len(proposals(Ledger(lab))) == 2, 60, "the scheduler's first proposals")
    control.stop(lab, wait=True, timeout=20)
    capsys.readouterr()
    assert main(["autopilot", "status", "--lab", str(lab.root)]) == 0
    assert "the scheduler is not running, so nothing moves" in capsys.readouterr().out
    assert main(["autopilot", "stop", "--track", "main", "--lab", str(lab.root)]) == 0
    assert "autopilot on track main stopped (autopilot 2/4" in capsys.readouterr().out
    assert state(lab).state == "stopped"


def test_a_bad_search_file_is_one_line_and_exit_status_2(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[axes]\ncrf = { low = 40, high = 20 }\n")
    assert main(["autopilot", "start", str(bad), "--lab", str(lab.root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'encode.crf' range 40..20 is empty or inverted" in err
    assert control.status(lab).pid is None  # nothing started for a file that cannot run
