"""`comma-tui score` and `comma-tui demo-assets` as a user runs them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from comma_tui.cli import main
from tests.sources import official_format_weights


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith("comma-tui: error: ")
    return err


def test_score_prints_the_official_report(demo_assets, light_and_heavy, capsys) -> None:
    encoded, raw = light_and_heavy["light"]
    args = ["score", "--reference", str(demo_assets.clip), "--candidate", str(raw), "--models", str(demo_assets.models)]
    assert main([*args, "--archive", str(encoded), "--device", "cpu"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "=== Evaluation results over 6 samples ==="
    assert re.fullmatch(r"  Average PoseNet Distortion: \d\.\d{8}", out[1])
    assert re.fullmatch(r"  Average SegNet Distortion: \d\.\d{8}", out[2])
    assert out[3] == f"  Submission file size: {encoded.stat().st_size:,} bytes"
    assert out[4] == f"  Original uncompressed size: {demo_assets.clip.stat().st_size:,} bytes"
    assert re.fullmatch(r"  Compression Rate: \d\.\d{8}", out[5])
    assert re.fullmatch(r"  Final score: 100\*segnet_dist \+ sqrt\(10\*posenet_dist\) \+ 25\*rate = \d+\.\d\d", out[6])
    assert re.fullmatch(r"  Scorer: demo-[0-9a-f]{8} on cpu", out[7])

    assert main([*args, "--archive-bytes", "1000", "--original-bytes", "2000", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["rate"] == 0.5 and payload["archive_bytes"] == 1000
    assert len(payload["per_pair"]["posenet"]) == len(payload["per_pair"]["segnet"]) == 6
    assert payload["fingerprint"].startswith("demo-")


def test_bad_inputs_are_one_line_errors_with_exit_2(demo_assets, reference_raw, tmp_path: Path, capsys) -> None:
    from engine.media.video import FRAME_BYTES  # torch: inside the test, so this module imports without it

    base = ["score", "--reference", str(demo_assets.clip), "--models", str(demo_assets.models), "--archive-bytes", "9"]
    assert main([*base, "--candidate", str(tmp_path / "missing.raw")]) == 2
    assert "raw file not found" in _one_line_error(capsys)

    odd = tmp_path / "odd.raw"
    odd.write_bytes(b"\1" * (FRAME_BYTES * 2 + 100))
    assert main([*base, "--candidate", str(odd)]) == 2
    assert "not a whole number of 874x1164x3" in _one_line_error(capsys)

    short = tmp_path / "short.raw"
    short.write_bytes(reference_raw.read_bytes()[: FRAME_BYTES * 4])
    assert main([*base, "--candidate", str(short)]) == 2
    assert "has 4 frames but reference" in _one_line_error(capsys)

    args = ["score", "--reference", str(tmp_path / "nope.mkv"), "--candidate", str(reference_raw)]
    assert main([*args, "--models", str(demo_assets.models), "--archive-bytes", "9"]) == 2
    assert "clip not found" in _one_line_error(capsys)

    empty_models = tmp_path / "models"
    empty_models.mkdir()
    args = ["score", "--reference", str(demo_assets.clip), "--candidate", str(reference_raw)]
    assert main([*args, "--models", str(empty_models), "--archive-bytes", "9"]) == 2
    assert "posenet.safetensors not found" in _one_line_error(capsys)

    assert main([*args, "--models", str(demo_assets.models)]) == 2
    assert "pass --archive ZIP or --archive-bytes N" in _one_line_error(capsys)


def test_a_missing_segnet_beside_official_format_posenet_is_one_line(demo_assets, tmp_path: Path, capsys) -> None:
    # Official-format weights carry no demo metadata: the second file must be checked all the same.
    models = official_format_weights(demo_assets.models, tmp_path / "models", "posenet.safetensors")
    args = ["score", "--reference", str(demo_assets.clip), "--candidate", str(demo_assets.clip)]
    assert main([*args, "--models", str(models), "--device", "cpu"]) == 2
    assert "segnet.safetensors not found: point --models at" in _one_line_error(capsys)


def test_demo_assets_rejects_a_clip_without_a_pair(tmp_path: Path, capsys) -> None:
    assert main(["demo-assets", str(tmp_path / "d"), "--frames", "1"]) == 2
    assert "--frames 1 is too short" in _one_line_error(capsys)
    assert not (tmp_path / "d").exists()


def test_console_script_runs_as_a_real_process(demo_assets, reference_raw) -> None:
    script = Path(sys.executable).with_name("comma-tui")
    cmd = [str(script) if script.exists() else sys.executable, *([] if script.exists() else ["-m", "comma_tui.cli"])]
    result = subprocess.run(
        [
            *cmd,
            "score",
            "--reference",
            str(demo_assets.clip),
            "--candidate",
            str(reference_raw),
            "--models",
            str(demo_assets.models),
            "--archive-bytes",
            "0",
            "--threads",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr
    assert "Final score: 100*segnet_dist + sqrt(10*posenet_dist) + 25*rate = 0.00" in result.stdout
