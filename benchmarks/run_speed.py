"""A run's CPU side beside PyAV running the same chains natively, on the same frames, in one process.

Usage: python benchmarks/run_speed.py [--frames 1200] [--clip videos/0.mkv] [--rgb]
           [--width 524 --height 394 --scaler lanczos] [--crf 34 --preset 8 --film-grain 22]
           [--filters CHAIN] [--inflate-filters CHAIN]

The source is the first N frames of --clip (packets copied, not re-encoded), or else a synthetic
drive: 60 rendered frames played back and forth to N frames, encoded with x265 like the demo clip.

For each stage it prints wall and CPU seconds (CPU counts every thread of this process: the
codec's, the decoder's, swscale's) of
- encode: the pipeline's encode stage, and a bare PyAV loop (decode -> the same libavfilter chain
  -> the same encoder options -> Matroska);
- inflate: the pipeline's inflate stage, and a bare PyAV loop (decode -> the same chain to rgb24
  -> a plain write of each frame); plus, for reference, FFmpeg's default one-pass conversion
  (`scale=1164:874:flags=...,format=rgb24`, what `ffmpeg -pix_fmt rgb24` does, with nearest chroma);
and the ratio against the target (<= 1.25x). `--rgb` adds the rgb path's stages. The load
average is printed before and after: on a shared machine, read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av

from engine.demo.synthetic import SyntheticDrive
from engine.media.codecs import EncodeSettings, VideoEncoder, codec_options
from engine.media.inflate_runtime import FPS, HEIGHT, WIDTH, inflate_chain, split_chain
from engine.media.preprocess import preprocess_chain
from engine.media.video import count_frames
from engine.runs.archive import write_archive
from engine.runs.classical import VIDEO_NAME, encode_stage
from engine.runs.pipeline import inflate_stage
from engine.runs.spec import RunSpec, SourceSpec, parse_spec

TARGET = 1.25
UNIQUE_FRAMES = 60


def synthetic_source(path: Path, frames: int) -> Path:
    """The synthetic drive, UNIQUE_FRAMES rendered frames played back and forth, as HEVC."""
    drive = SyntheticDrive(0)
    rendered = [drive.render(i)[0] for i in range(min(frames, UNIQUE_FRAMES))]
    cycle = rendered + rendered[-2:0:-1] if len(rendered) > 2 else rendered
    with VideoEncoder(path, EncodeSettings("libx265", crf=16, preset="ultrafast"), WIDTH, HEIGHT, FPS) as encoder:
        for i in range(frames):
            encoder.write(cycle[i % len(cycle)])
    return path


def trimmed_source(clip: Path, path: Path, frames: int) -> Path:
    """The first `frames` packets of a clip, copied into Matroska."""
    with av.open(str(clip)) as src, av.open(str(path), "w", format="matroska") as dst:
        stream = src.streams.video[0]
        out = dst.add_stream_from_template(stream)
        copied = 0
        for packet in src.demux(stream):
            if packet.size == 0:
                continue
            packet.stream = out
            dst.mux(packet)
            copied += 1
            if copied == frames:
                break
    return path


def _graph_frames(frames: Iterator[av.VideoFrame], chain: str) -> Iterator[av.VideoFrame]:
    graph = None
    for frame in _with_end(frames):
        if graph is None and frame is not None:
            graph = av.filter.Graph()
            nodes = [
                graph.add_buffer(
                    width=frame.width, height=frame.height, format=frame.format, time_base=Fraction(1, FPS)
                )
            ]
            nodes += [graph.add(name, args) for name, args in split_chain(chain)]
            graph.link_nodes(*nodes, graph.add("buffersink")).configure()
        assert graph is not None
        graph.vpush(frame)
        while True:
            try:
                yield graph.vpull()
            except (av.error.BlockingIOError, av.error.EOFError):
                break


def _with_end(frames: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame | None]:
    yield from frames
    yield None


def _decoded(path: Path) -> Iterator[av.VideoFrame]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield from container.decode(stream)


def native_encode(clip: Path, chain: str, settings: EncodeSettings, out: Path) -> None:
    """decode -> chain -> encoder -> Matroska, in a bare PyAV loop."""
    with av.open(str(out), "w", format="matroska") as dst:
        stream = None
        for index, frame in enumerate(_graph_frames(_decoded(clip), chain)):
            if stream is None:
                stream = dst.add_stream(settings.codec, rate=FPS, options=codec_options(settings))
                stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, settings.pix_fmt
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            dst.mux(stream.encode(frame))
        assert stream is not None
        dst.mux(stream.encode(None))


def native_inflate(video: Path, chain: str, raw: Path) -> None:
    """decode -> chain to rgb24 -> one plain write per frame, in a bare PyAV loop."""
    with open(raw, "wb") as out:
        for frame in _graph_frames(_decoded(video), chain):
            out.write(frame.to_ndarray().tobytes())


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of a call."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def side_by_side(
    ours: Callable[[], object], native: Callable[[], object], repeat: int
) -> tuple[tuple[float, float], ...]:
    """The best (wall, CPU) of each over `repeat` rounds, taking turns at going first."""
    times: dict[str, list[tuple[float, float]]] = {"ours": [], "native": []}
    for round_ in range(repeat):
        order = [("ours", ours), ("native", native)]
        for name, work in order if round_ % 2 == 0 else order[::-1]:
            times[name].append(timed(work))
    return tuple((min(t[0] for t in ts), min(t[1] for t in ts)) for ts in times.values())


def _row(stage: str, ours: tuple[float, float], native: tuple[float, float] | None, frames: int) -> None:
    line = f"{stage:<24} {ours[0]:>7.1f} {ours[1]:>7.1f} {frames / ours[0]:>6.1f}"
    if native:
        wall, cpu = ours[0] / native[0], ours[1] / native[1]
        verdict = "ok" if max(wall, cpu) <= TARGET else "over"
        line += f" {native[0]:>7.1f} {native[1]:>7.1f} {wall:>6.2f}x {cpu:>6.2f}x  target <= {TARGET}x: {verdict}"
    print(line, flush=True)


def _spec(args: argparse.Namespace, clip: Path, path: str) -> RunSpec:
    preprocess = {"path": path, "width": args.width, "height": args.height, "scaler": args.scaler}
    inflate = {"path": path, "scaler": args.scaler}
    if path == "yuv":
        preprocess["filters"], inflate["filters"] = args.filters, args.inflate_filters
    encode = {"codec": "libsvtav1", "crf": args.crf, "preset": args.preset, "film_grain": args.film_grain}
    return parse_spec({"preprocess": preprocess, "encode": encode, "inflate": inflate}, SourceSpec(str(clip), "-"))


def measure(args: argparse.Namespace, clip: Path, frames: int, work: Path, path: str) -> None:
    spec = _spec(args, clip, path)
    settings = spec.encode.settings()
    quiet: Callable[[int, int], None] = lambda done, total: None  # noqa: E731
    archive = work / "archive.zip"

    def ours_encode() -> None:
        encode_stage(spec, clip, frames, work, quiet)
        write_archive(archive, {VIDEO_NAME: work / VIDEO_NAME}, "stored")

    def ours_inflate() -> None:
        inflate_stage(spec, archive, work, frames, quiet)

    if path == "rgb":
        _row("encode (rgb path)", timed(ours_encode), None, frames)
        _row("inflate (rgb path)", timed(ours_inflate), None, frames)
        return
    chain = preprocess_chain(spec.preprocess.settings(), settings.pix_fmt)
    ours, native = side_by_side(ours_encode, lambda: native_encode(clip, chain, settings, work / "n.mkv"), args.repeat)
    _row("encode", ours, native, frames)
    chain = inflate_chain(spec.inflate.scaler, spec.inflate.filters)
    ours, native = side_by_side(
        ours_inflate, lambda: native_inflate(work / VIDEO_NAME, chain, work / "n.raw"), args.repeat
    )
    _row("inflate", ours, native, frames)
    one_pass = f"scale={WIDTH}:{HEIGHT}:flags={spec.inflate.scaler},format=rgb24"
    _row(
        "  ffmpeg's default rgb24",
        timed(lambda: native_inflate(work / VIDEO_NAME, one_pass, work / "n.raw")),
        None,
        frames,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--clip", type=Path, help="a source clip (default: the synthetic drive)")
    parser.add_argument("--width", type=int, default=524)
    parser.add_argument("--height", type=int, default=394)
    parser.add_argument("--scaler", default="lanczos")
    parser.add_argument("--crf", type=int, default=34)
    parser.add_argument("--preset", default="8")
    parser.add_argument("--film-grain", type=int, default=22)
    parser.add_argument("--filters", default="", help="preprocess.filters (yuv path)")
    parser.add_argument("--inflate-filters", default="", help="inflate.filters (yuv path)")
    parser.add_argument("--rgb", action="store_true", help="also time the rgb path's stages")
    parser.add_argument("--repeat", type=int, default=2, help="rounds per side; the best of each is shown")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        if args.clip:
            clip = trimmed_source(args.clip, work / "source.mkv", args.frames)
        else:
            clip = synthetic_source(work / "source.mkv", args.frames)
        frames = count_frames(clip)
        print(
            f"source: {frames} frames ({args.clip or 'synthetic drive'}), made in {time.perf_counter() - start:.0f} s"
        )
        print(f"{'':<24} {'ours':-^22} {'native':-^16} {'ours/native':-^16}")
        print(f"{'stage':<24} {'wall s':>7} {'cpu s':>7} {'fps':>6} {'wall s':>7} {'cpu s':>7} {'wall':>7} {'cpu':>7}")
        (work / "run").mkdir()
        measure(args, clip, frames, work / "run", "yuv")
        if args.rgb:
            measure(args, clip, frames, work / "run", "rgb")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
