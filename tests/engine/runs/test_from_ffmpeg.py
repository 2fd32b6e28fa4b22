"""ffmpeg command lines as specs: the same encoded frames as PyAV running the line, and the challenge's lines run."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from comma_tui.cli import main
from engine.runs.classical import encode_stage
from engine.runs.from_ffmpeg import FromFfmpegError, spec_from_ffmpeg, spec_text
from engine.runs.spec import SourceSpec, load_spec, parse_spec
from ledger import Lab, Ledger
from tests.engine.media.pattern_clip import write_pattern_clip

# The classical compress lines of commaai/comma_video_compression_challenge's submissions, as
# their compress.sh files run them (line continuations joined).
CHALLENGE_LINES = {
    "av1_crf31_bicubic": '"$FFMPEG" -nostdin -y -hide_banner -loglevel warning -r 20 -fflags +genpts -i "$PRE_IN" '
    '-vf "scale=trunc(iw*0.45/2)*2:trunc(ih*0.45/2)*2:flags=lanczos" -pix_fmt yuv420p -c:v libsvtav1 -preset 0 '
    '-crf 31 -svtav1-params "film-grain=22:keyint=180:scd=0" -r 20 "$OUT"',
    "baseline_fast": 'ffmpeg -nostdin -y -hide_banner -loglevel warning -r 20 -fflags +genpts -i "$IN" '
    '-vf "scale=trunc(iw*0.45/2)*2:trunc(ih*0.45/2)*2:flags=lanczos" -c:v libx265 -preset ultrafast -crf 30 '
    '-g 1 -bf 0 -x265-params "keyint=1:min-keyint=1:scenecut=0:frame-threads=4:log-level=warning" -r 20 "$OUT"',
    "damir_bearclaw_001": 'ffmpeg -nostdin -y -hide_banner -loglevel warning -r 20 -fflags +genpts -i "$IN" '
    '-vf "scale=trunc(iw*0.45/2)*2:trunc(ih*0.45/2)*2:flags=lanczos,hqdn3d=1.5:0:0:0" -pix_fmt yuv420p '
    '-c:v libsvtav1 -preset 0 -crf 33 -svtav1-params "film-grain=22:keyint=180:scd=0" -r 20 "$OUT"',
    "h265_g16_512x384_veryslow": 'ffmpeg -nostdin -y -hide_banner -loglevel warning -r 20 -fflags +genpts -i "$IN" '
    '-vf "scale=512:384:flags=lanczos" -c:v libx265 -preset veryslow -crf 27 -g 16 -bf 1 '
    '-x265-params "log-level=warning" -r 20 "$OUT"',
    "svt_av1_lanczos_fg": 'ffmpeg -nostdin -y -hide_banner -loglevel warning -r 20 -fflags +genpts -i "$IN" '
    '-vf "scale=trunc(iw*0.45/2)*2:trunc(ih*0.45/2)*2:flags=lanczos" -c:v libsvtav1 -preset 0 -crf 33 -g 180 '
    '-svtav1-params "film-grain=22:film-grain-denoise=1" -r 20 "$OUT"',
    "svtav1_spline_fg22": 'ffmpeg -nostdin -y -hide_banner -loglevel warning -r 20 -fflags +genpts -i "$IN" '
    '-vf "scale=trunc(iw*0.45/2)*2:trunc(ih*0.45/2)*2:flags=spline" -c:v libsvtav1 -crf 32 -preset 0 '
    '-svtav1-params "tune=0:film-grain=22:film-grain-denoise=1" -g 180 -an -r 20 "$OUT"',
    "roi_gop300_c34": 'ffmpeg -nostdin -y -hide_banner -loglevel warning -r 20 -fflags +genpts -i "$PRE" '
    '-vf "scale=trunc(iw*0.45/2)*2:trunc(ih*0.45/2)*2:flags=lanczos" -pix_fmt yuv420p -c:v libsvtav1 -preset 0 '
    '-crf 34 -svtav1-params "film-grain=22:keyint=300:scd=0:enable-qm=1:qm-min=0" -r 20 "$OUT"',
    "av1_sharp1_adaptive": 'ffmpeg -nostdin -y -hide_banner -loglevel warning -r 20 -fflags +genpts -i "$IN" '
    '-vf "scale=trunc(iw*0.45/2)*2:trunc(ih*0.45/2)*2:flags=lanczos" -pix_fmt yuv420p -c:v libsvtav1 -preset 0 '
    '-crf 33 -svtav1-params "film-grain=22:keyint=180:scd=0:sharpness=1" -r 20 "$OUT"',
}
FAST = {"libsvtav1": "12", "libx265": "ultrafast"}  # presets change speed, not whether a spec runs
LAB_SOURCE = SourceSpec(clip="(lab)", models="(lab)")
FRAMES = 8


@pytest.fixture(scope="module")
def pattern(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pattern_clip(tmp_path_factory.mktemp("pattern") / "0.mkv", FRAMES)


def _pyav_encode(clip: Path, out: Path, chain: list[tuple[str, str | None]], codec: str, options: dict, **ctx: Any):
    """What the line does, written directly against PyAV: decode, a filter graph, the encoder, Matroska.

    Colour tags and bitexact are set as comma-tui sets them: they are its colour contract, not the line's.
    """
    with av.open(str(clip)) as src, av.open(str(out), "w", format="matroska", options={"fflags": "+bitexact"}) as dst:
        decoder = src.streams.video[0]
        graph = av.filter.Graph()
        nodes = [graph.add_buffer(template=decoder)] + [graph.add(name, args) for name, args in chain]
        graph.link_nodes(*nodes, graph.add("buffersink")).configure()
        filtered: list[av.VideoFrame] = []
        for frame in [*src.decode(decoder), None]:
            graph.vpush(frame)
            while True:
                try:
                    filtered.append(graph.vpull())
                except (av.error.BlockingIOError, av.error.EOFError):
                    break
        stream = dst.add_stream(codec, rate=20, options=options)
        stream.width, stream.height, stream.pix_fmt = filtered[0].width, filtered[0].height, filtered[0].format.name
        stream.time_base = Fraction(1, 20)
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        stream.codec_context.color_range = av.video.reformatter.ColorRange.MPEG
        stream.codec_context.colorspace = av.video.reformatter.Colorspace.ITU601
        for key, value in ctx.items():
            setattr(stream.codec_context, key, value)
        for index, frame in enumerate(filtered):
            frame.pts, frame.time_base = index, Fraction(1, 20)
            dst.mux(stream.encode(frame))
        dst.mux(stream.encode(None))
    return out


def _frames_and_sizes(video: Path) -> tuple[list[np.ndarray], list[int]]:
    with av.open(str(video)) as container:
        sizes = [p.size for p in container.demux(video=0) if p.size]
    with av.open(str(video)) as container:
        planes = [f.to_ndarray() for f in container.decode(video=0)]
    return planes, sizes


@pytest.mark.parametrize(
    ("line", "chain", "codec", "options", "ctx"),
    [
        (
            '-vf "scale=trunc(iw*0.3/2)*2:trunc(ih*0.3/2)*2:flags=lanczos" -pix_fmt yuv420p -c:v libsvtav1 '
            '-preset 12 -crf 34 -g 4 -svtav1-params "film-grain=8:scd=0"',
            [("scale", "trunc(iw*0.3/2)*2:trunc(ih*0.3/2)*2:flags=lanczos"), ("format", "yuv420p")],
            "libsvtav1",
            {"preset": "12", "crf": "34", "svtav1-params": "film-grain=8:scd=0"},
            {"gop_size": 4},
        ),
        (
            '-vf "atadenoise,scale=512:384:flags=bicubic" -c:v libx265 -preset ultrafast -crf 27 -g 4 -bf 1 '
            '-x265-params "log-level=error:aq-mode=1"',
            [("atadenoise", None), ("scale", "512:384:flags=bicubic"), ("format", "yuv420p")],
            "libx265",
            {"preset": "ultrafast", "crf": "27", "x265-params": "log-level=error:aq-mode=1"},
            {"gop_size": 4, "max_b_frames": 1},
        ),
    ],
    ids=["svt-av1", "x265-with-a-temporal-filter"],
)
def test_a_spec_from_a_line_encodes_the_frames_pyav_encodes_running_that_line(
    demo_assets, tmp_path: Path, line: str, chain: list, codec: str, options: dict, ctx: dict
) -> None:
    clip = demo_assets.clip
    translation = spec_from_ffmpeg(f'ffmpeg -i "{clip}" {line} out.mkv')
    assert translation.notes == []
    spec = parse_spec(translation.sections, SourceSpec(clip=str(clip), models="-"))
    ours = encode_stage(spec, clip, 12, tmp_path, lambda done, total: None)
    theirs = _pyav_encode(clip, tmp_path / "pyav.mkv", chain, codec, options, **ctx)
    (our_frames, our_sizes), (their_frames, their_sizes) = _frames_and_sizes(ours), _frames_and_sizes(theirs)
    assert len(our_frames) == len(their_frames) == 12
    assert all(np.array_equal(a, b) for a, b in zip(our_frames, their_frames, strict=True))
    assert our_sizes[1:] == their_sizes[1:]  # the first packet carries the stream's headers


def test_the_challenge_lines_become_the_specs_they_say() -> None:
    av1 = spec_from_ffmpeg(CHALLENGE_LINES["av1_crf31_bicubic"])
    assert av1.preprocess == {"path": "yuv", "width": 522, "height": 392, "scaler": "lanczos", "filters": ""}
    assert av1.encode == {
        "codec": "libsvtav1",
        "crf": 31,
        "preset": "0",
        "film_grain": 22,
        "keyint": 180,
        "params": "scd=0",
        "pix_fmt": "yuv420p",
    }
    assert av1.notes == []
    x265 = spec_from_ffmpeg(CHALLENGE_LINES["h265_g16_512x384_veryslow"])
    assert (x265.encode["keyint"], x265.encode["params"]) == (16, "bframes=1:log-level=warning")
    hqdn3d = spec_from_ffmpeg(CHALLENGE_LINES["damir_bearclaw_001"])
    assert len(hqdn3d.notes) == 1 and "hqdn3d" in hqdn3d.notes[0] and "atadenoise" in hqdn3d.notes[0]
    assert hqdn3d.preprocess["filters"] == ""


@pytest.mark.parametrize("name", sorted(CHALLENGE_LINES))
def test_each_challenge_line_gives_a_spec_that_encodes(name: str, pattern: Path, tmp_path: Path) -> None:
    translation = spec_from_ffmpeg(CHALLENGE_LINES[name])
    (tmp_path / "spec.toml").write_text(spec_text(translation, CHALLENGE_LINES[name]))
    spec = load_spec(tmp_path / "spec.toml", SourceSpec(clip=str(pattern), models="-"))
    spec = spec.with_value("encode.preset", FAST[spec.encode.codec])
    video = encode_stage(spec, pattern, FRAMES, tmp_path, lambda done, total: None)
    with av.open(str(video)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == FRAMES
    assert (frames[0].width, frames[0].height) == (spec.preprocess.width, spec.preprocess.height)


def test_a_challenge_line_runs_end_to_end_in_a_lab(demo_assets, tmp_path: Path) -> None:
    lab = Lab.create(tmp_path / "lab", demo_assets.clip, demo_assets.models)
    spec = tmp_path / "baseline_fast.toml"
    assert main(["spec", "from-ffmpeg", CHALLENGE_LINES["baseline_fast"], "--out", str(spec)]) == 0
    assert main(["run", str(spec), "--lab", str(lab.root)]) == 0
    (record,) = Ledger(lab).records(Ledger(lab).runs())
    assert record.status == "done" and record.metrics is not None and record.metrics.archive_bytes > 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ffmpeg -i in.mkv -c:v libaom-av1 out.mkv", "-c:v libaom-av1"),
        ("ffmpeg -i in.mkv out.mkv", "no -c:v"),
        ("ffmpeg -i in.mkv -c:v libx265 -crf $CRF out.mkv", "-crf '$CRF' is not a number"),
        ("ffmpeg -i in.mkv -vn -c:v libx265 out.mkv", "drops the video"),
    ],
)
def test_lines_that_cannot_be_a_spec_say_why(line: str, message: str) -> None:
    with pytest.raises(FromFfmpegError, match=message.replace("$", r"\$")):
        spec_from_ffmpeg(line)


def test_what_a_spec_cannot_say_is_listed_one_option_at_a_time() -> None:
    line = (
        'ffmpeg -ss 3 -i in.mkv -t 5 -vf "scale=522:392:flags=lanczos+accurate_rnd,unsharp" -c:v libsvtav1 '
        "-crf 33.5 -bf 2 -r 10 -f ivf out.ivf"
    )
    t = spec_from_ffmpeg(line)
    assert [note.split(":")[0] for note in t.notes] == [
        "-crf 33.5",
        "-bf 2",
        "-ss 3",
        "-t 5",
        "-r 10",
        "-f ivf",
        "out.ivf",
    ]
    # A filter after the scale: the chain stays whole, in its order, since a spec's resize comes last.
    assert t.preprocess["filters"] == "scale=522:392:flags=lanczos+accurate_rnd,unsharp"
    assert parse_spec(t.sections, LAB_SOURCE).preprocess.width == 0
