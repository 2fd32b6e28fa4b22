"""Native runs end to end, external submissions, export, and what user mistakes leave behind: nothing."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest

from comma_tui.cli import main
from engine.media.inflate_runtime import FRAME_BYTES, inflate_video, make_postfilter
from engine.runs.archive import write_archive
from engine.runs.classical import encode_stage
from engine.runs.progress import ProgressEvent, Stages
from engine.runs.spec import SourceSpec, parse_spec, stage_names
from ledger import Lab, Ledger
from tests.engine.media.pattern_clip import write_pattern_clip
from tests.engine.runs.previews_check import assert_previews
from tests.sources import official_format_weights

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


# Filter chains before the encode and after the upscale, on the yuv path.
WITH_CHAINS = """
[run]
label = "chains"

[preprocess]
width = 384
height = 288
filters = "atadenoise"

[encode]
codec = "libx265"
crf = 30
preset = "ultrafast"

[inflate]
filters = "unsharp=5:5:0.6"
"""

# Archives the rgb path made before the yuv path existed (main at 5d8d115; PyAV 18.1.0, FFmpeg
# 8.1.2, SVT-AV1 4.1.0, x265 4.2), from the pattern clip's 8 frames. A new codec library may
# legitimately change them: re-pin from a build where `path = "rgb"` is the code of that commit.
RGB_PATH_PINS = {
    "svt": (
        {"width": 384, "height": 288, "scaler": "lanczos", "denoise": 4.0},
        {"codec": "libsvtav1", "crf": 40, "preset": "12", "film_grain": 10, "keyint": 4},
        "4769e142438212847f8d23602ff84b18e162a6b5ca2c3744bbd2134acf1963fd",
    ),
    "x265": (
        {"width": 256, "height": 192, "scaler": "bicubic"},
        {"codec": "libx265", "crf": 30, "preset": "ultrafast", "pix_fmt": "yuv420p10le", "params": "aq-mode=1"},
        "bb6bc2f534150b1da1f139d9743f433d98bc1d6ebe73f511ca31c7d86d4b4020",
    ),
}
# The svt archive inflated on the rgb path with lanczos and unsharp 5 / 0.8, by the same commit.
RGB_INFLATE_PIN = "a2fb09263bb78eddb7002a82b3d5c866f06fc86d47d62fc948c4b00ffe9b06bc"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_rgb_path_gives_the_archives_it_gave_before(tmp_path: Path) -> None:
    clip = write_pattern_clip(tmp_path / "pattern.mkv", 8)
    for name, (preprocess, encode, pinned) in RGB_PATH_PINS.items():
        spec = parse_spec(
            {"preprocess": {"path": "rgb", **preprocess}, "encode": encode, "inflate": {"path": "rgb"}},
            SourceSpec(clip=str(clip), models="-"),
        )
        video = encode_stage(spec, clip, 8, tmp_path, lambda done, total: None)
        write_archive(tmp_path / f"{name}.zip", {"0.mkv": video}, "stored")
        assert _sha256(tmp_path / f"{name}.zip") == pinned, f"{name}: the rgb path changed its archive"
        if name == "svt":
            raw = tmp_path / "0.raw"
            inflate_video(video, raw, "lanczos", make_postfilter("unsharp", tmp_path, 5, 0.8), path="rgb")
            assert _sha256(raw) == RGB_INFLATE_PIN


# A quick run: small frames, the fastest svt-av1 preset.
TINY = """
[preprocess]
width = 128
height = 96

[encode]
crf = 40
preset = 12
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
    assert_previews(folder)


def test_the_same_spec_gives_the_same_archive_twice(lab: Lab, floor_run: str, tmp_path: Path, capsys) -> None:
    spec = tmp_path / "again.toml"
    spec.write_text(FLOOR_LIKE.replace("floor-like", "again"))
    assert main(["run", str(spec), "--lab", str(lab.root), "--keep-raw"]) == 0
    assert "Verdict: rejected" in capsys.readouterr().out
    ledger = Ledger(lab)
    first, again = ledger.get(floor_run), ledger.get(ledger.runs(text="again")[0].id)
    assert (Path(first.artifacts) / "archive.zip").read_bytes() == (Path(again.artifacts) / "archive.zip").read_bytes()
    assert again.metrics == first.metrics
    assert (Path(again.artifacts) / "0.raw").stat().st_size == 12 * FRAME_BYTES
    # Two runs of one clip preview the same evenly spaced pairs, so the console compares them pair for pair.
    folders = Path(first.artifacts) / "previews", Path(again.artifacts) / "previews"
    first_index, again_index = assert_previews(Path(first.artifacts)), assert_previews(Path(again.artifacts))
    assert first_index["fixed"] == again_index["fixed"] and first_index["fixed"]
    for pair in first_index["fixed"]:
        name = f"{pair:05d}-reference-classes.png"
        assert (folders[0] / name).read_bytes() == (folders[1] / name).read_bytes()


def test_export_then_official_layout_scoring_gives_the_same_numbers(lab: Lab, floor_run: str, tmp_path: Path) -> None:
    dest = tmp_path / "submission"
    assert main(["export", floor_run, str(dest), "--lab", str(lab.root)]) == 0
    assert sorted(p.name for p in dest.iterdir()) == ["archive.zip", "inflate.py", "inflate.sh", "spec.toml"]
    assert main(["run", "--submission", str(dest), "--lab", str(lab.root), "--label", "exported"]) == 0
    ledger = Ledger(lab)
    exported, original = ledger.get(ledger.runs(text="exported")[0].id), ledger.get(floor_run)
    assert exported.metrics == original.metrics
    assert exported.metrics is not None and exported.metrics.charged_bytes == exported.metrics.archive_bytes


def test_a_run_with_filter_chains_exports_and_rescores_equal(lab: Lab, tmp_path: Path) -> None:
    spec = tmp_path / "chains.toml"
    spec.write_text(WITH_CHAINS)
    assert main(["run", str(spec), "--lab", str(lab.root)]) == 0
    ledger = Ledger(lab)
    (run,) = ledger.records(ledger.runs(text="chains"))
    with zipfile.ZipFile(Path(run.artifacts) / "archive.zip") as zf, zf.open("0.mkv") as video, av.open(video) as mkv:
        assert (mkv.streams.video[0].width, mkv.streams.video[0].height) == (384, 288)
    dest = tmp_path / "submission"
    assert main(["export", run.id, str(dest), "--lab", str(lab.root)]) == 0
    assert "--filters unsharp=5:5:0.6" in (dest / "inflate.sh").read_text()
    assert main(["run", "--submission", str(dest), "--lab", str(lab.root), "--label", "chains-exported"]) == 0
    (exported,) = Ledger(lab).records(Ledger(lab).runs(text="chains-exported"))
    assert exported.metrics is not None and exported.metrics == run.metrics


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
    (record,) = Ledger(lab).records(Ledger(lab).runs(text="ext"))
    m = record.metrics
    assert m is not None and m.posenet == 0.0 and m.segnet == 0.0  # the lossless source itself
    assert m.charged_bytes == m.archive_bytes + 5000 and m.charged_score > m.score
    assert "Charged:" in out
    assert record.extra["charged_files"] == {"weights.bin": 5000}
    assert_previews(Path(record.artifacts))


def test_planar_output_is_caught_before_scoring(lab: Lab, demo_assets, tmp_path: Path, capsys) -> None:
    planar = "w.write(np.ascontiguousarray(rgb.transpose(2, 0, 1)).reshape(rgb.shape))"
    folder = _fake_submission(tmp_path / "planar", demo_assets.clip, _submission_code(planar))
    assert main(["run", "--submission", str(folder), "--lab", str(lab.root), "--label", "planar"]) == 2
    assert "look nothing like the reference" in _one_line_error(capsys)
    (record,) = Ledger(lab).records(Ledger(lab).runs(text="planar"))
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
        ('[preprocess]\nfilters = "hqdn3d=4"\n', "no filter 'hqdn3d' in this FFmpeg (a GPL filter"),
        ('[inflate]\nfilters = "unsharp=5:5:9"\n', "out of range [-2 - 5]"),
        ('[encode]\ncodec = "libx264"\nparams = "nonsense-key=5"\n', "libx264 refuses it"),
    ],
)
def test_a_bad_spec_is_one_line_and_not_a_run(lab: Lab, tmp_path: Path, capsys, body: str, message: str) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(body)
    before = Ledger(lab).all()
    assert main(["run", str(spec), "--lab", str(lab.root)]) == 2
    assert message in _one_line_error(capsys)
    assert Ledger(lab).all() == before


def test_a_submission_folder_that_is_not_there_is_one_line_and_not_a_run(lab: Lab, tmp_path: Path, capsys) -> None:
    before = Ledger(lab).all()
    assert main(["run", "--submission", str(tmp_path / "no" / "such"), "--lab", str(lab.root)]) == 2
    assert f"submission {tmp_path / 'no' / 'such'} is not a folder" in _one_line_error(capsys)
    (tmp_path / "empty").mkdir()
    assert main(["run", "--submission", str(tmp_path / "empty"), "--lab", str(lab.root)]) == 2
    assert "has no inflate.sh" in _one_line_error(capsys)
    assert Ledger(lab).all() == before


def test_a_missing_segnet_beside_official_format_posenet_is_one_line(demo_assets, tmp_path: Path, capsys) -> None:
    models = official_format_weights(demo_assets.models, tmp_path / "models", "posenet.safetensors")
    lab = Lab.create(tmp_path / "lab", demo_assets.clip, models)
    spec = tmp_path / "floor.toml"
    spec.write_text(FLOOR_LIKE)
    assert main(["run", str(spec), "--lab", str(lab.root)]) == 2
    assert f"{models / 'segnet.safetensors'} not found: point --models at" in _one_line_error(capsys)
    assert Ledger(lab).all() == []


def test_run_with_a_new_lab_folder_makes_it_from_the_specs_source(demo_assets, tmp_path: Path, capsys) -> None:
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY + f'\n[source]\nclip = "{demo_assets.clip}"\nmodels = "{demo_assets.models}"\n')
    assert main(["run", str(spec), "--lab", str(tmp_path / "lab")]) == 0
    lab = Lab.open(tmp_path / "lab")
    assert f"made lab {lab.root} from the [source] of {spec}" in capsys.readouterr().err
    assert lab.source().models == demo_assets.models and [r.status for r in Ledger(lab).all()] == ["done"]
    spec.write_text(TINY)
    assert main(["run", str(spec), "--lab", str(tmp_path / "other")]) == 2  # no source: nothing to make it from
    assert "no lab in" in _one_line_error(capsys) and not (tmp_path / "other").exists()


def test_frames_writes_a_full_size_panel_of_one_pair(lab: Lab, floor_run: str, tmp_path: Path, capsys) -> None:
    from PIL import Image

    out = tmp_path / "pair.png"
    assert main(["frames", floor_run, "--pair", "2", "--png", str(out), "--lab", str(lab.root)]) == 0
    assert f"pair 2 (frame 5, the one SegNet sees), {3 * 1164 + 8}x874" in capsys.readouterr().out
    with Image.open(out) as image:
        assert image.size == (3 * 1164 + 8, 874)  # reference | candidate | disagreement, 4-pixel gaps
        left = np.asarray(image)[:, :1164]
    assert left.std() > 0  # a real frame, not a blank panel
    versus = tmp_path / "versus.png"
    assert main(["frames", floor_run, "--vs", floor_run, "--png", str(versus), "--lab", str(lab.root)]) == 0
    with Image.open(versus) as image:
        assert image.size == (3 * 1164 + 8, 874)


def test_frames_of_a_pair_out_of_range_or_an_unscored_run_is_one_line(
    lab: Lab, floor_run: str, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "pair.png"
    assert main(["frames", floor_run, "--pair", "6", "--png", str(out), "--lab", str(lab.root)]) == 2
    assert f"pair 6 is out of range: {floor_run}'s clip has pairs 0..5" in _one_line_error(capsys)
    queued = Ledger(lab).add_run({}, track="main", label="not yet")
    assert main(["frames", queued.id, "--png", str(out), "--lab", str(lab.root)]) == 2
    assert f"{queued.id} is queued: it kept no scored archive" in _one_line_error(capsys)
    assert not out.exists()


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
