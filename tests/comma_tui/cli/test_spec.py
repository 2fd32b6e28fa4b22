"""`comma-tui spec from-ffmpeg`: the spec on stdout (or in a file), what it cannot say on stderr, one per line."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from comma_tui.cli import main

LINE = (
    "ffmpeg -i videos/0.mkv -vf scale=524:394:flags=lanczos -c:v libsvtav1 -preset 8 -crf 34 "
    "-svtav1-params film-grain=22 out.mkv"
)


def test_the_spec_goes_to_stdout_and_reads_back(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "from-ffmpeg", LINE]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    spec = tomllib.loads(out)
    assert set(spec) == {"preprocess", "encode"}
    assert (spec["preprocess"]["width"], spec["preprocess"]["height"], spec["preprocess"]["scaler"]) == (
        524,
        394,
        "lanczos",
    )
    assert (spec["encode"]["crf"], spec["encode"]["preset"], spec["encode"]["film_grain"]) == (34, "8", 22)


def test_what_it_cannot_say_is_on_stderr_one_option_per_line(tmp_path: Path, capsys) -> None:
    out_file = tmp_path / "spec.toml"
    line = LINE.replace("-vf scale", "-ss 2 -t 3 -vf hqdn3d,scale")
    assert main(["spec", "from-ffmpeg", line, "--out", str(out_file)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"wrote {out_file}"
    notes = err.strip().splitlines()
    assert [n.split(":")[0] for n in notes] == ["-vf hqdn3d", "-ss 2", "-t 3"]
    assert "atadenoise" in notes[0]
    assert tomllib.loads(out_file.read_text())["preprocess"]["filters"] == ""


def test_a_line_with_no_spec_in_it_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "from-ffmpeg", "ffmpeg -i in.mkv -c:v mpeg4 out.avi"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("comma-tui: error: the line has -c:v mpeg4")
