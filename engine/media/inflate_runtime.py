"""What a submission needs at inflate time, and nothing else: torch, av and numpy only.

This one file serves twice. The lab imports it to decode and rebuild frames, and `comma-tui
export` copies it verbatim into a submission as `inflate.py`, so the exported inflate is the lab's
inflate, byte for byte. It must therefore never import anything from comma-tui; that is also why
it is longer than our other modules. torch is imported where it is used: the lab reads this
file's filter-chain code to check specs, and its console must start without paying for torch.

Command line (what inflate.sh runs):
    python inflate.py ARCHIVE_DIR INFLATED_DIR NAMES_FILE [--path yuv|rgb] [--scaler lanczos]
        [--filters CHAIN] [--postfilter none|unsharp|learned] [--unsharp-size 5] [--unsharp-amount 0.5]
        [--plugin postfilter_NAME.py=JSON ...]
For every line `name.ext` of NAMES_FILE it decodes ARCHIVE_DIR/<name>.mkv and writes
INFLATED_DIR/<name>.raw: packed uint8 RGB24 frames of 874x1164, frame after frame.

Two paths rebuild the frames. `yuv` (FFmpeg's way) runs one libavfilter graph per video: swscale
upscales in the decoded YUV, the `--filters` chain (e.g. `unsharp=5:5:0.6`) follows, and swscale
converts to RGB24 by the evaluator's BT.601 limited-range rule with bilinear chroma. `rgb` (how
comma-tui did it before) converts each small frame to RGB in torch by that rule, then upscales
the RGB. A post-filter, when asked for, runs on the RGB frames either way.

The learned post-filter (`--postfilter learned`) is rebuilt from ARCHIVE_DIR/postfilter.bin alone.
That file, version 1, is a JSON header line then raw little-endian arrays, no pickle:
    {"depth":3,"format":"comma-tui-postfilter","hidden":64,"quant":"per-channel","version":1}\n
    then for each of the `depth` 3x3 convolutions, in order (3->h, (depth-2) x h->h, h->3):
        int8    weights  (out, in, 3, 3), C order
        float32 scales   (out,) for per-channel, (1,) for per-tensor
        float32 biases   (out,)
A weight is int8 * scale. The model is y = clamp(x + 255 * f(x / 255), 0, 255) on RGB in 0..255,
f = conv, ReLU, ..., conv, each conv 3x3 with one pixel of edge-replicated padding.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np

if TYPE_CHECKING:
    import torch

WIDTH, HEIGHT = 1164, 874
CHANNELS = 3
FRAME_BYTES = WIDTH * HEIGHT * CHANNELS
VIDEO_SUFFIX = ".mkv"
LEARNED_FILTER_FILE = "postfilter.bin"
# swscale's names for the scalers a spec may ask for.
SCALER_FLAGS = {"lanczos": "LANCZOS", "bicubic": "BICUBIC", "bilinear": "BILINEAR", "area": "AREA", "spline": "SPLINE"}
PATHS = ("yuv", "rgb")
FPS = 20
# The evaluator reads every stream as BT.601 limited range, whatever its tags say, so frames enter
# a graph tagged so: a filter that needs RGB is then fed the conversion the evaluator assumes.
BT601_BUFFER = "pixel_aspect=1/1:colorspace=bt470bg:range=tv"
# YUV -> packed RGB24 by the evaluator's rule: BT.601 limited range, chroma upsampled bilinearly
# (full_chroma_int) and rounded exactly (accurate_rnd); within one level of yuv420_planes_to_rgb.
TO_RGB24 = (
    "scale=flags=bilinear+accurate_rnd+full_chroma_int:in_color_matrix=bt601:in_range=tv:out_range=pc,format=rgb24"
)
# Frames gathered before each write to a .raw (24 MB): few, large writes.
BLOCK_FRAMES = 8


def _plane(plane: av.video.plane.VideoPlane, rows: int, cols: int) -> np.ndarray:
    """One plane as (rows, cols) uint8, dropping the line-size padding on the right."""
    flat = np.frombuffer(memoryview(plane), dtype=np.uint8)
    return flat.reshape(rows, plane.line_size)[:, :cols]


def yuv420_planes_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Convert yuv420p planes to (H, W, 3) uint8 RGB like NVDEC.

    The arithmetic is done in float32 torch ops in the evaluator's order so that every pixel
    rounds the same way as the official CPU path.
    """
    import torch
    import torch.nn.functional as F

    height, width = y.shape
    y_t = torch.from_numpy(np.ascontiguousarray(y)).float()
    u_t = torch.from_numpy(np.ascontiguousarray(u)).float()[None, None]
    v_t = torch.from_numpy(np.ascontiguousarray(v)).float()[None, None]
    u_up = F.interpolate(u_t, size=(height, width), mode="bilinear", align_corners=False)[0, 0]
    v_up = F.interpolate(v_t, size=(height, width), mode="bilinear", align_corners=False)[0, 0]
    yf = (y_t - 16.0) * (255.0 / 219.0)
    uf = (u_up - 128.0) * (255.0 / 224.0)
    vf = (v_up - 128.0) * (255.0 / 224.0)
    r = (yf + 1.402 * vf).clamp(0, 255)
    g = (yf - 0.344136 * uf - 0.714136 * vf).clamp(0, 255)
    b = (yf + 1.772 * uf).clamp(0, 255)
    return torch.stack([r, g, b], dim=-1).round().to(torch.uint8).numpy()


def frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as (H, W, 3) uint8 RGB, by the evaluator's BT.601 limited-range rule.

    Frames in another pixel format (10-bit, 4:4:4) are first brought to 8-bit yuv420p by
    swscale, which is what an 8-bit NVDEC output would hold.
    """
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    h, w = frame.height, frame.width
    return yuv420_planes_to_rgb(
        _plane(frame.planes[0], h, w),
        _plane(frame.planes[1], h // 2, w // 2),
        _plane(frame.planes[2], h // 2, w // 2),
    )


def resize_rgb(rgb: np.ndarray, width: int, height: int, scaler: str) -> np.ndarray:
    """Resize (H, W, 3) uint8 RGB with swscale's `scaler` kernel; a no-op at the same size."""
    if rgb.shape[1] == width and rgb.shape[0] == height:
        return rgb
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return frame.reformat(width=width, height=height, interpolation=SCALER_FLAGS[scaler]).to_ndarray()


def _unescape(text: str) -> str:
    """One level of libavfilter quoting removed: `\\x` -> `x`, `'...'` -> its text."""
    out, quoted, i = [], False, 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 1
        elif c == "'":
            quoted = not quoted
        else:
            out.append(c)
        i += 1
    return "".join(out)


def split_chain(chain: str) -> list[tuple[str, str | None]]:
    """`name=args,name,...` as [(name, args)], read as libavfilter reads one linear chain.

    Commas inside quotes or after a backslash stay in the arguments; labels and `;` (graphs
    with several chains) are refused with ValueError.
    """
    parts, start, quoted, i = [], 0, False, 0
    while i < len(chain):
        c = chain[i]
        if c == "\\":
            i += 1
        elif c == "'":
            quoted = not quoted
        elif not quoted and c in "[];":
            raise ValueError(f"{chain!r} is not a plain chain: write filters joined by commas, no [labels] or ;")
        elif not quoted and c == ",":
            parts.append(chain[start:i])
            start = i + 1
        i += 1
    parts.append(chain[start:])
    filters: list[tuple[str, str | None]] = []
    for part in parts:
        name, sep, args = part.strip().partition("=")
        if not name.strip():
            raise ValueError(f"{chain!r} has an empty filter: remove the extra comma")
        filters.append((name.strip(), _unescape(args) if sep else None))
    return filters


def build_graph(filters: Sequence[tuple[str, str | None]], width: int, height: int, pix_fmt: str) -> av.filter.Graph:
    """A configured graph: a BT.601-limited buffer of that size and format -> the filters -> a sink."""
    graph = av.filter.Graph()
    nodes = [graph.add("buffer", f"video_size={width}x{height}:pix_fmt={pix_fmt}:time_base=1/{FPS}:{BT601_BUFFER}")]
    nodes += [graph.add(name, args) for name, args in filters]
    nodes.append(graph.add("buffersink"))
    graph.link_nodes(*nodes).configure()
    return graph


def _drain(graph: av.filter.Graph) -> Iterator[av.VideoFrame]:
    """Every frame the graph has ready; at the end of the stream, every frame it still holds."""
    while True:
        try:
            yield graph.vpull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return


def filter_frames(frames: Iterable[av.VideoFrame], chain: str) -> Iterator[av.VideoFrame]:
    """Frames through a libavfilter chain, streaming; temporal filters give their held frames at the end.

    The graph takes its size and format from the first frame. Frames are numbered at the clip's
    rate and tagged BT.601 limited range (the evaluator's reading) on the way in.
    """
    filters, graph = split_chain(chain), None
    for index, frame in enumerate(frames):
        if graph is None:
            graph = build_graph(filters, frame.width, frame.height, frame.format.name)
        frame.pts, frame.time_base = index, Fraction(1, FPS)
        frame.colorspace = av.video.reformatter.Colorspace.ITU601
        frame.color_range = av.video.reformatter.ColorRange.MPEG
        graph.vpush(frame)
        yield from _drain(graph)
    if graph is not None:
        graph.vpush(None)
        yield from _drain(graph)


def inflate_chain(scaler: str, filters: str = "") -> str:
    """The yuv path's chain: upscale to 1164x874 in YUV, the user's filters, then RGB24 by the evaluator's rule."""
    return ",".join(part for part in (f"scale={WIDTH}:{HEIGHT}:flags={scaler}", filters, TO_RGB24) if part)


def _gaussian_kernel(size: int) -> torch.Tensor:
    import torch

    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8  # the usual sigma for a kernel of this size
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def unsharp(rgb: np.ndarray, size: int, amount: float) -> np.ndarray:
    """Unsharp mask: x + amount * (x - gaussian_blur(x)), per channel, edges replicated."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
    k = _gaussian_kernel(size)
    pad = size // 2
    blurred = F.pad(x, (pad, pad, 0, 0), mode="replicate")
    blurred = F.conv2d(blurred, k.view(1, 1, 1, size).repeat(3, 1, 1, 1), groups=3)
    blurred = F.pad(blurred, (0, 0, pad, pad), mode="replicate")
    blurred = F.conv2d(blurred, k.view(1, 1, size, 1).repeat(3, 1, 1, 1), groups=3)
    out = (x + amount * (x - blurred)).clamp(0, 255).round()
    return out[0].permute(1, 2, 0).to(torch.uint8).numpy()


FILTER_FORMAT = "comma-tui-postfilter"
FILTER_VERSION = 1
QUANT_MODES = ("per-tensor", "per-channel")
# Rows of a frame filtered at once: at h=64 a 256-row tile holds ~80 MB of activations per layer
# instead of ~260 MB for the whole frame, and is no slower on CPU.
TILE_ROWS = 256


def filter_layers(hidden: int, depth: int) -> list[tuple[int, int]]:
    """(in, out) channels of each 3x3 conv of the learned filter: 3->h, (depth-2) x h->h, h->3."""
    return [(3, hidden)] + [(hidden, hidden)] * (depth - 2) + [(hidden, 3)]


@dataclass(frozen=True, eq=False)
class PackedFilter:
    """The learned filter as shipped: int8 weights, their float32 scales and float32 biases per conv."""

    hidden: int
    depth: int
    quant: str
    weights: tuple[np.ndarray, ...]  # int8 (out, in, 3, 3)
    scales: tuple[np.ndarray, ...]  # float32 (out,) per-channel or (1,) per-tensor
    biases: tuple[np.ndarray, ...]  # float32 (out,)


def _scale_count(quant: str, out: int) -> int:
    return out if quant == "per-channel" else 1


def pack_filter(packed: PackedFilter) -> bytes:
    """The postfilter.bin bytes of a filter (format in the module docstring)."""
    header = {
        "format": FILTER_FORMAT,
        "version": FILTER_VERSION,
        "hidden": packed.hidden,
        "depth": packed.depth,
        "quant": packed.quant,
    }
    parts = [json.dumps(header, sort_keys=True, separators=(",", ":")).encode() + b"\n"]
    layers = filter_layers(packed.hidden, packed.depth)
    for (cin, cout), q, scale, bias in zip(layers, packed.weights, packed.scales, packed.biases, strict=True):
        if q.dtype != np.int8 or q.shape != (cout, cin, 3, 3):
            raise ValueError(f"weights must be int8 ({cout}, {cin}, 3, 3), got {q.dtype} {q.shape}")
        if scale.shape != (_scale_count(packed.quant, cout),) or bias.shape != (cout,):
            raise ValueError(f"scales {scale.shape} or biases {bias.shape} do not fit a conv with {cout} outputs")
        parts += [q.tobytes(), scale.astype("<f4").tobytes(), bias.astype("<f4").tobytes()]
    return b"".join(parts)


def unpack_filter(data: bytes) -> PackedFilter:
    """Read postfilter.bin bytes back; every size is checked, so a damaged file fails loudly."""
    head, sep, body = data.partition(b"\n")
    try:
        header = json.loads(head) if sep else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = {}
    if not isinstance(header, dict) or header.get("format") != FILTER_FORMAT:
        raise ValueError("not a comma-tui post-filter file: it must start with its JSON header line")
    if header.get("version") != FILTER_VERSION:
        raise ValueError(f"post-filter file version {header.get('version')} is not {FILTER_VERSION}: re-run training")
    hidden, depth, quant = header["hidden"], header["depth"], header["quant"]
    if quant not in QUANT_MODES or not (isinstance(hidden, int) and isinstance(depth, int) and depth >= 2):
        raise ValueError(f"post-filter header {header} is invalid")
    weights, scales, biases = [], [], []
    offset = 0

    def take(dtype: str, count: int) -> np.ndarray:
        nonlocal offset
        size = np.dtype(dtype).itemsize * count
        if offset + size > len(body):
            raise ValueError("post-filter file is truncated")
        array = np.frombuffer(body, dtype=dtype, count=count, offset=offset)
        offset += size
        return array

    for cin, cout in filter_layers(hidden, depth):
        weights.append(take("i1", cout * cin * 9).reshape(cout, cin, 3, 3))
        scales.append(take("<f4", _scale_count(quant, cout)).astype(np.float32))
        biases.append(take("<f4", cout).astype(np.float32))
    if offset != len(body):
        raise ValueError(f"post-filter file has {len(body) - offset} bytes past its last array")
    return PackedFilter(hidden, depth, quant, tuple(weights), tuple(scales), tuple(biases))


def dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """int8-valued weights times their scales (one per output channel, or one in all), in float32.

    Training's fake quantisation ends with this same multiplication, so both sides get the
    same float weights bit for bit.
    """
    return q.float() * scale.view(-1, 1, 1, 1)


def residual_filter(x: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor]) -> torch.Tensor:
    """The learned filter's forward pass: (N, 3, H, W) float RGB in 0..255 -> the same, clamped.

    Replicated edges (not zeros) pad each conv, so a frame's border looks to the filter like the
    edges of the crops it was trained on.
    """
    import torch.nn.functional as F

    h = x / 255.0
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        h = F.conv2d(F.pad(h, (1, 1, 1, 1), mode="replicate"), w, b)
        if i < last:
            h = F.relu(h)
    return (x + 255.0 * h).clamp(0.0, 255.0)


class LearnedFilter:
    """A shipped filter rebuilt for inflate: float32 weights from int8, applied frame by frame."""

    def __init__(self, packed: PackedFilter, device: str | torch.device | None = None) -> None:
        import torch

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.weights = [
            dequantize(torch.from_numpy(q.copy()), torch.from_numpy(s)).to(self.device)
            for q, s in zip(packed.weights, packed.scales, strict=True)
        ]
        self.biases = [torch.from_numpy(b).to(self.device) for b in packed.biases]

    @classmethod
    def from_file(cls, path: Path, device: str | torch.device | None = None) -> LearnedFilter:
        """Load postfilter.bin from an unpacked archive."""
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: a learned post-filter ships it inside archive.zip")
        return cls(unpack_filter(path.read_bytes()), device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Float (N, 3, H, W) in 0..255 through the filter, whole, unrounded."""
        import torch

        with torch.inference_mode():
            return residual_filter(x.to(self.device), self.weights, self.biases)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """Filter one (H, W, 3) uint8 frame in row tiles; each tile carries a halo of one row per conv,
        enough that its own rows come out as if the frame were filtered whole."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(2, 0, 1)[None].float()
            out = torch.empty_like(x)
            rows, halo = x.shape[2], len(self.weights)
            for top in range(0, rows, TILE_ROWS):
                bottom = min(rows, top + TILE_ROWS)
                lo, hi = max(0, top - halo), min(rows, bottom + halo)
                tile = residual_filter(x[:, :, lo:hi], self.weights, self.biases)
                out[:, :, top:bottom] = tile[:, :, top - lo : bottom - lo]
            return out.round()[0].permute(1, 2, 0).to(torch.uint8).cpu().numpy()


PostFilter = Callable[[np.ndarray], np.ndarray]


def plugin_filter(module_file: Path, archive_dir: Path, options: dict[str, object]) -> PostFilter:
    """A post-filter plug-in's filter: its shipped module's `make(archive_dir, options)`."""
    import importlib.util

    module_file = Path(module_file)
    spec = importlib.util.spec_from_file_location(f"comma_postfilter_{module_file.stem}", module_file)
    if spec is None or spec.loader is None:
        raise ValueError(f"post-filter plug-in {module_file} cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make(Path(archive_dir), options)  # type: ignore[no-any-return]


def chain_filters(filters: Sequence[PostFilter | None]) -> PostFilter | None:
    """One post-filter that runs `filters` in order (None: there are none)."""
    present = [f for f in filters if f is not None]
    if len(present) < 2:
        return present[0] if present else None

    def chained(rgb: np.ndarray) -> np.ndarray:
        for f in present:
            rgb = f(rgb)
        return rgb

    return chained


def make_postfilter(
    name: str, archive_dir: Path, unsharp_size: int = 5, unsharp_amount: float = 0.5
) -> PostFilter | None:
    """The post-filter an inflate applies after upscaling (None for `none`), from its arguments and the archive."""
    if name == "none":
        return None
    if name == "unsharp":
        return lambda rgb: unsharp(rgb, unsharp_size, unsharp_amount)
    if name == "learned":
        return LearnedFilter.from_file(Path(archive_dir) / LEARNED_FILTER_FILE)
    raise ValueError(f"unknown post-filter {name!r}")


def decode(path: Path) -> Iterator[av.VideoFrame]:
    """Frames of an encoded video as decoded, in its own pixel format."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield from container.decode(stream)


def decode_rgb(path: Path) -> Iterator[np.ndarray]:
    """Frames of an encoded video as RGB at their coded size, by the evaluator's colour rule."""
    for frame in decode(path):
        yield frame_to_rgb(frame)


def upscaled_frames(
    video: Path, scaler: str, path: str = "yuv", filters: str = ""
) -> Iterator[av.VideoFrame | np.ndarray]:
    """Decoded and rebuilt at 1164x874 in RGB24 by `path` (see the module docstring), before any post-filter.

    The yuv path gives graph frames (packed rgb24), the rgb path arrays; `as_array` reads either.
    """
    if path == "rgb":
        for rgb in decode_rgb(video):
            yield resize_rgb(rgb, WIDTH, HEIGHT, scaler)
    else:
        yield from filter_frames(decode(video), inflate_chain(scaler, filters))


def as_array(frame: av.VideoFrame | np.ndarray) -> np.ndarray:
    """An rgb24 frame as an (H, W, 3) uint8 array."""
    return frame if isinstance(frame, np.ndarray) else frame.to_ndarray()


def inflate_frames(
    video: Path, scaler: str, postfilter: PostFilter | None, path: str = "yuv", filters: str = ""
) -> Iterator[av.VideoFrame | np.ndarray]:
    """Decode, upscale to 1164x874, filter and post-filter, one frame at a time."""
    for frame in upscaled_frames(video, scaler, path, filters):
        yield postfilter(as_array(frame)) if postfilter else frame


class RawWriter:
    """Append RGB24 frames to a `.raw` file, streaming, BLOCK_FRAMES at a time; complete once closed.

    Frames go to `<path>.partial` and are renamed into place on a clean close, so a crash
    never leaves a truncated `.raw` that looks finished.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._partial = self.path.with_name(self.path.name + ".partial")
        self._file = open(self._partial, "wb")  # noqa: SIM115 - closed in close()
        self._block = np.empty((BLOCK_FRAMES, HEIGHT, WIDTH * CHANNELS), np.uint8)
        self._held = 0
        self.frames = 0

    def write(self, frame: np.ndarray | av.VideoFrame) -> None:
        """Append one (874, 1164, 3) uint8 array or rgb24 frame of that size."""
        if isinstance(frame, av.VideoFrame):
            if (frame.format.name, frame.width, frame.height) != ("rgb24", WIDTH, HEIGHT):
                raise ValueError(
                    f"frame must be rgb24 {WIDTH}x{HEIGHT}, got {frame.format.name} {frame.width}x{frame.height}"
                )
            rows = _plane(frame.planes[0], HEIGHT, WIDTH * CHANNELS)
        elif frame.shape != (HEIGHT, WIDTH, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame must be ({HEIGHT}, {WIDTH}, 3) uint8, got {frame.shape} {frame.dtype}")
        else:
            rows = frame.reshape(HEIGHT, WIDTH * CHANNELS)
        self._block[self._held] = rows
        self._held += 1
        self.frames += 1
        if self._held == BLOCK_FRAMES:
            self._flush()

    def _flush(self) -> None:
        self._file.write(self._block[: self._held].data)
        self._held = 0

    def close(self) -> None:
        """Write what is held and move the finished file into place (or drop it, should that fail)."""
        try:
            self._flush()
            self._file.close()
        except BaseException:
            self.abort()
            raise
        os.replace(self._partial, self.path)

    def abort(self) -> None:
        """Drop a half-written file; closing it may fail too, on the full disk that stopped it."""
        with contextlib.suppress(OSError):
            self._file.close()
        self._partial.unlink(missing_ok=True)

    def __enter__(self) -> RawWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def inflate_video(
    video: Path,
    raw: Path,
    scaler: str,
    postfilter: PostFilter | None,
    progress: Callable[[int], None] | None = None,
    path: str = "yuv",
    filters: str = "",
) -> int:
    """Write the inflated frames of `video` to `raw`; returns the number of frames."""
    with RawWriter(raw) as writer:
        for frame in inflate_frames(video, scaler, postfilter, path, filters):
            writer.write(frame)
            if progress:
                progress(writer.frames)
    return writer.frames


def main(argv: list[str] | None = None) -> int:
    """The official inflate contract: ARCHIVE_DIR INFLATED_DIR NAMES_FILE."""
    parser = argparse.ArgumentParser(description="Inflate a comma-tui archive into .raw files.")
    parser.add_argument("archive_dir", type=Path)
    parser.add_argument("inflated_dir", type=Path)
    parser.add_argument("names_file", type=Path)
    parser.add_argument("--path", default="yuv", choices=PATHS)
    parser.add_argument("--scaler", default="lanczos", choices=sorted(SCALER_FLAGS))
    parser.add_argument("--filters", default="", help="a libavfilter chain after the upscale (yuv path)")
    parser.add_argument("--postfilter", default="none", choices=["none", "unsharp", "learned"])
    parser.add_argument("--unsharp-size", type=int, default=5)
    parser.add_argument("--unsharp-amount", type=float, default=0.5)
    parser.add_argument(
        "--plugin", action="append", default=[], help="FILE=JSON: a post-filter plug-in beside this file, its options"
    )
    args = parser.parse_args(argv)
    try:
        filters = [make_postfilter(args.postfilter, args.archive_dir, args.unsharp_size, args.unsharp_amount)]
        for item in args.plugin:
            name, _, options = item.partition("=")
            filters.append(plugin_filter(Path(__file__).parent / name, args.archive_dir, json.loads(options or "{}")))
        postfilter = chain_filters(filters)
    except (OSError, ValueError) as exc:  # a missing or damaged postfilter.bin, a plug-in that will not load
        print(f"inflate: {exc}", file=sys.stderr)
        return 1
    args.inflated_dir.mkdir(parents=True, exist_ok=True)
    for line in args.names_file.read_text().splitlines():
        name = line.strip()
        if not name:
            continue
        stem = Path(name).stem
        video = args.archive_dir / (stem + VIDEO_SUFFIX)
        if not video.is_file():
            print(f"inflate: {video} is missing from the archive", file=sys.stderr)
            return 1
        raw = args.inflated_dir / (stem + ".raw")
        try:
            inflate_video(video, raw, args.scaler, postfilter, path=args.path, filters=args.filters)
        except (ValueError, av.error.FFmpegError) as exc:  # a chain FFmpeg refuses
            print(f"inflate: {video}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
