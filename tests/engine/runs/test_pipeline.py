"""Native runs end to end, external submissions, export, and what bad specs leave behind."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from comma_tui.cli import main
from engine.media.inflate_runtime import FRAME_BYTES
from engine.runs.pipeline import Stages
from engine.runs.progress import ProgressEvent
from engine.runs.spec import stage_names
from ledger import Lab, Ledger

# Like the public lab's floor: svt-av1 at 524x394 with film grain 22, lanczos both ways.
FLOOR_LIKE = """
[run]
label = "floor-like"

[preprocess]
width = 524
height = 394
scaler = "lanczos"

[encode]
codec = "libsvtav1"
crf = 35
preset = 10
film_grain = 22

[inflate]
scaler = "lanczos"
"""


@pytest.fixture(scope="module")
def lab(demo_assets, tmp_path_factory: pytest.TempPathFactory) -> Lab:
    return Lab.create(tmp_path_factory.mktemp("lab"), demo_assets.clip, demo_assets.models)


@pytest.fixture(scope="module")
def floor_run(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> str:
    spec = tmp_path_factory.mktemp("specs") / "floor.toml"
    spec.write_text(FLOOR_LIKE)
    assert main(["run", str(spec), "--lab", str(lab.root)]) == 0
    return Ledger(lab).runs(text="floor-like")[0].id


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("r0")]
    assert len(err) == 1 and err[0].startswith("comma-tui: error: ")
    return err[0]


def test_a_floor_like_spec_runs_end_to_end_and_is_recorded(lab: Lab, floor_run: str) -> None:
    record = Ledger(lab).get(floor_run)
    assert record.status == "done" and record.metrics is not None
    assert record.verdict == "promoted"  # the first run of its track is its first floor
    assert list(record.stage_timings) == list(stage_names(record.spec)) == ["encode", "archive", "inflate", "score"]
    folder = Path(record.artifacts)
    assert {"archive.zip", "spec.toml", "log.txt", "report.json", "report.txt", "timings.json", "per_pair.npz"} <= {
        p.name for p in folder.iterdir()
    }
    assert not (folder / "work").exists() and not list(folder.rglob("*.raw"))
    report = json.loads((folder / "report.json").read_text())
    assert report["archive_bytes"] == (folder / "archive.zip").stat().st_size == record.metrics.archive_bytes
    assert report["score"] == record.metrics.score
    per_pair = np.load(folder / "per_pair.npz")
    assert per_pair["posenet"].shape == per_pair["segnet"].shape == (6,)
    with zipfile.ZipFile(folder / "archive.zip") as zf:
        assert zf.namelist() == ["0.mkv"]
    assert "stage score: done" in (folder / "log.txt").read_text()


def test_the_same_spec_gives_the_same_archive_twice(lab: Lab, floor_run: str, tmp_path: Path, capsys) -> None:
    spec = tmp_path / "again.toml"
    spec.write_text(FLOOR_LIKE.replace("floor-like", "again"))
    assert main(["run", str(spec), "--lab", str(lab.root), "--keep-raw"]) == 0
    assert "Verdict: rejected" in capsys.readouterr().out
    ledger = Ledger(lab)
    first, again = ledger.get(floor_run), ledger.runs(text="again")[0]
    assert (Path(first.artifacts) / "archive.zip").read_bytes() == (Path(again.artifacts) / "archive.zip").read_bytes()
    assert again.metrics == first.metrics
    assert (Path(again.artifacts) / "0.raw").stat().st_size == 12 * FRAME_BYTES


def test_export_then_official_layout_scoring_gives_the_same_numbers(lab: Lab, floor_run: str, tmp_path: Path) -> None:
    dest = tmp_path / "submission"
    assert main(["export", floor_run, str(dest), "--lab", str(lab.root)]) == 0
    assert sorted(p.name for p in dest.iterdir()) == ["archive.zip", "inflate.py", "inflate.sh", "spec.toml"]
    assert main(["run", "--submission", str(dest), "--lab", str(lab.root), "--label", "exported"]) == 0
    ledger = Ledger(lab)
    exported, original = ledger.runs(text="exported")[0], ledger.get(floor_run)
    assert exported.metrics == original.metrics
    assert exported.metrics is not None and exported.metrics.charged_bytes == exported.metrics.archive_bytes


def _fake_submission(folder: Path, source: Path, inflate_py: str, extra_weights: int = 0) -> Path:
    folder.mkdir()
    with zipfile.ZipFile(folder / "archive.zip", "w") as zf:
        zf.write(source, "0.mkv")
    (folder / "inflate.sh").write_text('#!/bin/bash\nset -e\npython3 "$(dirname "$0")/inflate.py" "$@"\n')
    (folder / "inflate.py").write_text(inflate_py)
    if extra_weights:
        (folder / "weights.bin").write_bytes(b"\1" * extra_weights)
    return folder


_DECODE_THEN = """
import sys, pathlib, numpy as np
sys.path.insert(0, {runtime!r})
from inflate_runtime import decode_rgb, RawWriter
archive, out, names = map(pathlib.Path, sys.argv[1:4])
with RawWriter(out / "0.raw") as w:
    for rgb in decode_rgb(archive / "0.mkv"):
        {write}
"""


def _submission_code(write: str) -> str:
    import engine.media.inflate_runtime as runtime

    return _DECODE_THEN.format(runtime=str(Path(runtime.__file__).parent), write=write)


def test_external_submission_counts_extra_files_as_charged_bytes(lab: Lab, demo_assets, tmp_path: Path, capsys) -> None:
    folder = _fake_submission(tmp_path / "sub", demo_assets.clip, _submission_code("w.write(rgb)"), extra_weights=5000)
    assert main(["run", "--submission", str(folder), "--lab", str(lab.root), "--label", "ext"]) == 0
    out = capsys.readouterr().out
    record = Ledger(lab).runs(text="ext")[0]
    m = record.metrics
    assert m is not None and m.posenet == 0.0 and m.segnet == 0.0  # the lossless source itself
    assert m.charged_bytes == m.archive_bytes + 5000 and m.charged_score > m.score
    assert "Charged:" in out
    assert record.extra["charged_files"] == {"weights.bin": 5000}


def test_planar_output_is_caught_before_scoring(lab: Lab, demo_assets, tmp_path: Path, capsys) -> None:
    planar = "w.write(np.ascontiguousarray(rgb.transpose(2, 0, 1)).reshape(rgb.shape))"
    folder = _fake_submission(tmp_path / "planar", demo_assets.clip, _submission_code(planar))
    assert main(["run", "--submission", str(folder), "--lab", str(lab.root), "--label", "planar"]) == 2
    assert "look nothing like the reference" in _one_line_error(capsys)
    record = Ledger(lab).runs(text="planar")[0]
    assert record.status == "failed" and "packed RGB24" in record.failure_reason


def test_short_inflate_output_is_a_clear_error(lab: Lab, demo_assets, tmp_path: Path, capsys) -> None:
    folder = _fake_submission(tmp_path / "short", demo_assets.clip, _submission_code("w.write(rgb); break"))
    assert main(["run", "--submission", str(folder), "--lab", str(lab.root), "--label", "short"]) == 2
    assert "expected" in _one_line_error(capsys)
    shutil.rmtree(folder)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[encode]\ncodec = "h266"\n', "encode.codec = 'h266' is not allowed"),
        ("[preprocess]\nwidth = 525\nheight = 394\n", "preprocess.width = 525 must be an even number"),
        ("[encode]\ncrf = 99\n", "out of range: use 0..63"),
        ('[source]\nclip = "/nowhere/0.mkv"\n', "source clip /nowhere/0.mkv not found"),
        ("[encode]\nqp = 30\n", "unknown key encode.qp"),
    ],
)
def test_bad_specs_fail_clearly_and_are_recorded(lab: Lab, tmp_path: Path, capsys, body: str, message: str) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(body)
    before = {r.id for r in Ledger(lab).runs()}
    assert main(["run", str(spec), "--lab", str(lab.root)]) == 2
    assert message in _one_line_error(capsys)
    new = [r for r in Ledger(lab).runs() if r.id not in before]
    assert len(new) == 1 and new[0].status == "failed" and message in new[0].failure_reason


def test_a_stage_says_it_began_before_its_first_count() -> None:
    # Before this, the console kept showing the last stage's "inflate 60/60" while scoring began.
    said: list[ProgressEvent] = []
    lines: list[str] = []
    stages = Stages(said.append, lines.append)
    with stages.stage("score") as clock:
        assert [(e.stage, e.done, e.total) for e in said] == [("score", 0, 0)]
        clock(3, 6)
    assert [(e.stage, e.done, e.total) for e in said] == [("score", 0, 0), ("score", 3, 6)]
    assert lines[0] == "stage score: start" and lines[-1].startswith("stage score: done")
