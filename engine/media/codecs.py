"""Encoding frames to a video file in-process with PyAV (libsvtav1, libx265, libx264, libvpx-vp9).

Frames enter either as YUV frames already in the encoder's pixel format (the yuv path, out of a
libavfilter graph) or as RGB arrays (the rgb path), which are converted to yuv420p by our own
BT.601 limited-range rule (`rgb_to_yuv420_frame`). The stream is tagged BT.601 limited either
way, so the colour contract with the evaluator's decoder is explicit rather than left to codec
defaults.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import numpy as np

from engine.media.ffmpeg_log import ffmpeg_log, reason

# SVT-AV1 logs its banner and config to stderr from C at every encode; errors are enough here.
os.environ.setdefault("SVT_LOG", "1")

CODECS = ("libsvtav1", "libx265", "libx264", "libvpx-vp9")
PIX_FMTS = ("yuv420p", "yuv420p10le")
CRF_RANGE = {"libsvtav1": (0, 63), "libx265": (0, 51), "libx264": (0, 51), "libvpx-vp9": (0, 63)}
PRESETS: dict[str, tuple[str, ...]] = {
    "libsvtav1": tuple(str(p) for p in range(-1, 14)),
    "libx265": ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"),
    "libx264": ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"),
    "libvpx-vp9": tuple(str(p) for p in range(0, 9)),
}
DEFAULT_PRESET = {"libsvtav1": "8", "libx265": "medium", "libx264": "medium", "libvpx-vp9": "5"}
# The name under which each codec takes `key=value:key=value` pass-through parameters.
PARAMS_OPTION = {"libsvtav1": "svtav1-params", "libx265": "x265-params", "libx264": "x264-params"}
# How FFmpeg's wrappers say that the codec library refused a pass-through parameter; they say it
# as a warning and open the encoder anyway, without the parameter.
_REFUSALS = ("Error parsing option", "Unknown option", "Invalid value")
_QUIET = {"libx265": "log-level=error", "libx264": "log=-1"}


def rgb_to_yuv420_frame(rgb: np.ndarray) -> av.VideoFrame:
    """(H, W, 3) uint8 RGB -> a yuv420p frame in BT.601 limited range, tagged as such.

    This is the exact inverse of the evaluator's decode rule (2x2-averaged chroma, which its
    bilinear upsampling reconstructs), so encode and decode agree on colour whatever the codec
    or container would assume by default.
    """
    h, w, _ = rgb.shape
    f = rgb.astype(np.float32)
    luma = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114
    y = 16.0 + luma * (219.0 / 255.0)
    u = 128.0 + (f[..., 2] - luma) / 1.772 * (224.0 / 255.0)
    v = 128.0 + (f[..., 0] - luma) / 1.402 * (224.0 / 255.0)

    def pool(p: np.ndarray) -> np.ndarray:
        return (p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2]) * 0.25

    planes = [y, pool(u), pool(v)]
    flat = np.concatenate([np.clip(np.rint(p), 0, 255).astype(np.uint8).ravel() for p in planes])
    frame = av.VideoFrame.from_ndarray(flat.reshape(h * 3 // 2, w), format="yuv420p")
    frame.color_range = av.video.reformatter.ColorRange.MPEG
    frame.colorspace = av.video.reformatter.Colorspace.ITU601
    return frame


@dataclass(frozen=True)
class EncodeSettings:
    """How to encode: validated at the edge (the spec), trusted here."""

    codec: str = "libsvtav1"
    crf: int = 35
    preset: str | None = None
    keyint: int = 0  # 0 = the codec's default GOP
    pix_fmt: str = "yuv420p"
    film_grain: int = 0  # svt-av1 film-grain synthesis level, 0 = off
    film_grain_denoise: bool = False
    params: dict[str, str] = field(default_factory=dict)


def codec_options(s: EncodeSettings) -> dict[str, str]:
    """The PyAV encoder options that carry these settings."""
    preset = s.preset if s.preset is not None else DEFAULT_PRESET[s.codec]
    params = dict(s.params)
    options: dict[str, str] = {"crf": str(s.crf)}
    if s.codec == "libsvtav1":
        options["preset"] = preset
        if s.film_grain:
            params.setdefault("film-grain", str(s.film_grain))
            params.setdefault("film-grain-denoise", "1" if s.film_grain_denoise else "0")
        if s.keyint:
            params.setdefault("keyint", str(s.keyint))
    elif s.codec in ("libx265", "libx264"):
        options["preset"] = preset
        params.setdefault("log-level" if s.codec == "libx265" else "log", "error" if s.codec == "libx265" else "-1")
        if s.keyint:
            params.setdefault("keyint", str(s.keyint))
            params.setdefault("min-keyint", "1")
    elif s.codec == "libvpx-vp9":
        # Constant-quality mode needs a zero bitrate target; "preset" is libvpx's cpu-used.
        options.update({"b": "0", "cpu-used": preset, "deadline": "good", "row-mt": "1"})
    option = PARAMS_OPTION.get(s.codec)
    if option and params:
        options[option] = ":".join(f"{k}={v}" for k, v in params.items())
    return options


@lru_cache(maxsize=128)
def params_problem(codec: str, params: str) -> str | None:
    """Why `codec` refuses some of `params` (key=value:key=value), or None when it takes them all.

    The encoder is opened on a tiny frame size with exactly these parameters, and what its
    library says about them is read back from FFmpeg's log.
    """
    ctx = av.CodecContext.create(codec, "w")
    assert isinstance(ctx, av.VideoCodecContext)  # every codec we offer is a video codec
    ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = 64, 64, "yuv420p", Fraction(1, 20)
    quiet = _QUIET.get(codec)  # last, so that the library's own chatter stays out of the check
    ctx.options = {PARAMS_OPTION[codec]: f"{params}:{quiet}" if quiet else params}
    with ffmpeg_log() as lines:
        try:
            ctx.open()
        except av.error.FFmpegError as exc:
            return reason(lines, str(exc))
    refused = [m.strip().rstrip(".") for _, _, m in lines if m.startswith(_REFUSALS)]
    return "; ".join(refused) or None


class VideoEncoder:
    """Stream RGB frames into a Matroska file with one of the supported codecs."""

    def __init__(self, path: str | os.PathLike[str], settings: EncodeSettings, width: int, height: int, fps: int = 20):
        self.path = Path(path)
        self.settings = settings
        # bitexact: no random segment UID, no muxing date, no library version string, so the
        # same frames and settings give the same file, byte for byte.
        self._container = av.open(str(self.path), mode="w", format="matroska", options={"fflags": "+bitexact"})
        stream = self._container.add_stream(settings.codec, rate=fps, options=codec_options(settings))
        assert isinstance(stream, av.VideoStream)  # every codec we offer is a video codec
        stream.width, stream.height = width, height
        stream.pix_fmt = settings.pix_fmt
        stream.time_base = Fraction(1, fps)
        if settings.keyint and settings.codec == "libvpx-vp9":
            stream.codec_context.gop_size = settings.keyint
        ctx = stream.codec_context
        ctx.flags |= av.codec.context.Flags.bitexact
        ctx.color_range = av.video.reformatter.ColorRange.MPEG
        ctx.colorspace = av.video.reformatter.Colorspace.ITU601
        # Thread use inside libsvtav1/x265 is their own; FFmpeg's frame threads add nothing here.
        self._stream: av.VideoStream = stream
        self._time_base = Fraction(1, fps)
        self._pts = 0

    def write(self, image: av.VideoFrame | np.ndarray) -> None:
        """Encode one frame: a frame in the stream's pixel format, or an (H, W, 3) uint8 RGB array."""
        if isinstance(image, av.VideoFrame):
            frame = image
        else:
            frame = rgb_to_yuv420_frame(image)
            if self.settings.pix_fmt != "yuv420p":
                frame = frame.reformat(format=self.settings.pix_fmt)
        frame.pts, frame.time_base = self._pts, self._time_base  # not the stream's: the muxer changes that
        self._pts += 1
        self._container.mux(self._stream.encode(frame))

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        self._container.mux(self._stream.encode(None))
        self._container.close()

    def __enter__(self) -> VideoEncoder:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self._discard()
            return
        try:
            self.close()
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        """Drop the half-written file; closing it may fail too, on the full disk that stopped it."""
        with contextlib.suppress(av.error.FFmpegError, OSError):
            self._container.close()
        self.path.unlink(missing_ok=True)


def encode_frames(
    path: Path,
    frames: Iterable[av.VideoFrame | np.ndarray],
    settings: EncodeSettings,
    fps: int,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Encode a stream of frames (see `VideoEncoder.write`) at the size of the first; returns how many."""
    stream = iter(frames)
    first = next(stream, None)
    if first is None:
        raise ValueError("no frames to encode")
    height, width = (first.height, first.width) if isinstance(first, av.VideoFrame) else first.shape[:2]
    count = 0
    with VideoEncoder(path, settings, width, height, fps) as encoder:
        for count, frame in enumerate(itertools.chain([first], stream), start=1):
            encoder.write(frame)
            if progress:
                progress(count)
    return count
