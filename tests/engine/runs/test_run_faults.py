"""Faults of the machine are not bugs: a full disk, a read-only folder, a vanished work folder.

Each fails the run with one line that names the path and what to free or change, removes the
run's partial files, and the CLI prints that line. The disks are real: small tmpfs mounts and
read-only bind mounts (the tests are skipped where mounting is not allowed).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from comma_tui.cli import main
from engine.media.video import FRAME_BYTES
from engine.runs.progress import ProgressEvent
from engine.runs.spec import lab_source, parse_spec
from engine.sched import worker
from engine.sched.worker import execute_run
from ledger import Lab, Ledger, RunRecord
from tests.conftest import TEST_FRAMES

# A quick run: small frames, the fastest svt-av1 preset.
TINY = {"preprocess": {"width": 128, "height": 96}, "encode": {"crf": 40, "preset": "12"}}


def _queue(lab: Lab) -> RunRecord:
    return Ledger(lab).add_run(parse_spec(TINY, lab_source(lab)).to_dict(), label="tiny")


def _needs(clip: Path) -> int:
    """What the pre-start check asks of the disk for a run of the test clip."""
    return TEST_FRAMES * FRAME_BYTES + 2 * clip.stat().st_size


def _leftovers(record: RunRecord) -> list[str]:
    """What a failed run left in its folder, beside its log."""
    return sorted(
        str(p.relative_to(record.artifacts)) for p in Path(record.artifacts).rglob("*") if p.name != "log.txt"
    )


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("r0")]
    assert len(err) == 1 and err[0].startswith("comma-tui: error: "), err
    return err[0]


def test_a_run_whose_frames_cannot_fit_is_refused_before_it_starts(demo_assets, mount, tmp_path: Path, capsys) -> None:
    disk = mount(_needs(demo_assets.clip) / 2**20 - 8)
    lab = Lab.create(disk / "lab", demo_assets.clip, demo_assets.models)
    spec = tmp_path / "tiny.toml"
    spec.write_text('[encode]\ncrf = 40\npreset = "12"\n')
    assert main(["run", str(spec), "--lab", str(lab.root)]) == 2
    line = _one_line_error(capsys)
    assert f"a run here needs {_needs(demo_assets.clip) / 1e6:.0f} MB free on the disk holding {lab.runs_dir}" in line
    assert "free space there, or put the lab on a bigger disk" in line
    assert Ledger(lab).all() == []  # refused, not recorded
    # A queued run is refused the same way when its turn comes, before any encoding.
    record = execute_run(Ledger(lab), _queue(lab).id)
    assert record.status == "failed" and record.failure_reason.startswith("a run here needs")
    assert f"on the disk holding {record.artifacts}" in record.failure_reason and _leftovers(record) == []


def _fill(disk: Path) -> None:
    """Take every free byte of `disk`, as another writer would."""
    with open(disk / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
        except OSError:
            pass


def _at_first(stage: str, act: Callable[[], None]) -> Callable[[ProgressEvent], None]:
    """A progress sink that does `act` when `stage` first counts its work (not as it begins: nothing written yet)."""
    done: list[bool] = []

    def sink(event: ProgressEvent) -> None:
        if event.stage == stage and event.total > 0 and not done:
            done.append(True)
            act()

    return sink


def test_a_disk_that_fills_during_inflate_fails_the_run_in_one_line(demo_assets, mount) -> None:
    disk = mount(_needs(demo_assets.clip) / 2**20 + 8)
    lab = Lab.create(disk / "lab", demo_assets.clip, demo_assets.models)
    queued = _queue(lab)
    record = execute_run(Ledger(lab), queued.id, _at_first("inflate", lambda: _fill(disk)))
    assert record.status == "failed"
    assert record.failure_reason.startswith(f"the disk holding {record.artifacts}")
    assert record.failure_reason.endswith("is full: free space there, or put the lab on a bigger disk")
    assert "internal error" not in record.log_tail and "failed: the disk holding" in record.log_tail
    assert _leftovers(record) == ["archive.zip", "spec.toml"]  # whole files; the work folder and the .raw are gone


def test_a_work_folder_that_vanishes_fails_the_run_in_one_line(demo_assets, tmp_path: Path) -> None:
    lab = Lab.create(tmp_path / "lab", demo_assets.clip, demo_assets.models)
    queued = _queue(lab)
    work = Path(queued.artifacts) / "work"
    record = execute_run(Ledger(lab), queued.id, _at_first("encode", lambda: shutil.rmtree(work)))
    assert record.status == "failed"
    assert record.failure_reason == f"{work} vanished while the run was using it: leave a running run's folder in place"
    assert _leftovers(record) == ["spec.toml"]


def test_a_read_only_runs_folder_is_one_line_for_the_cli_and_the_worker(
    demo_assets, mount, tmp_path: Path, capsys
) -> None:
    lab = Lab.create(tmp_path / "lab", demo_assets.clip, demo_assets.models)
    queued = _queue(lab)
    mount(folder=lab.runs_dir)
    spec = tmp_path / "tiny.toml"
    spec.write_text('[encode]\ncrf = 40\npreset = "12"\n')
    assert main(["run", str(spec), "--lab", str(lab.root)]) == 2
    assert f"{lab.runs_dir / 'r0002'} is on a read-only filesystem: remount it read-write" in _one_line_error(capsys)
    assert [r.id for r in Ledger(lab).all()] == [queued.id]  # no run left that can never start
    assert worker.main(["--lab", str(lab.root), "--run", queued.id]) == 1
    record = Ledger(lab).get(queued.id)
    assert record.status == "failed"
    assert record.failure_reason.startswith(f"{Path(queued.artifacts) / 'spec.toml'} is on a read-only filesystem")
    assert os.listdir(queued.artifacts) == []
