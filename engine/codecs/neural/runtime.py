"""The neural codec's decoder and archive file, and the inflate program export ships: torch and numpy only.

Like `engine/media/inflate_runtime.py`, this one file serves twice: the lab trains and inflates
with it, and `comma-tui export` copies it verbatim into a submission as `inflate.py`. It imports
nothing of comma-tui's (an import-linter contract says so).

Command line (what inflate.sh runs; the official contract):
    python inflate.py ARCHIVE_DIR INFLATED_DIR NAMES_FILE
For every line `name.ext` of NAMES_FILE it reads ARCHIVE_DIR/<name>.bin and writes
INFLATED_DIR/<name>.raw: packed uint8 RGB24 frames of 874x1164, frame after frame. It runs on
CUDA when there is one, else on the CPU.

The decoder (HNeRV-style): one latent vector per frame pair -> a linear stem to a small grid ->
`upsample` stages, each a 3x3 conv to 4x the next width, pixel shuffle (x2), plus a bilinear
x2 of its input through a 1x1 conv, then sin -> a 3x3 head to six channels, sigmoid x 255: both
frames of the pair at the networks' resolution, 384x512. The inflate upsamples them bicubically
to 1164x874 and rounds to uint8.

<name>.bin, version 1: a JSON header line, then one block compressed by the header's `entropy`
(lzma, zlib, bz2 or none; all in Python's standard library) holding little-endian arrays:
    for each parameter in `param_shapes` order:
        a weight (2 or more dims): int8 codes (numel), then float32 scales (out,) - per output channel
        a bias: float32 (numel)
    the latents: float32 mins (d), float32 steps (d), then uint8 codes (pairs x d) stored as
        differences from the previous pair's codes, modulo 256 (the first pair from 0)
A weight is code * scale, symmetric, |code| <= 2**(weight_bits-1) - 1; a latent is
code * step + min, 0 <= code <= 2**latent_bits - 1.
"""

from __future__ import annotations

import argparse
import bz2
import json
import lzma
import math
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

FORMAT = "comma-tui-neural"
VERSION = 1
SUFFIX = ".bin"
OUT_H, OUT_W = 384, 512  # the networks' resolution
HEIGHT, WIDTH = 874, 1164  # the camera's
FRAME_BYTES = HEIGHT * WIDTH * 3
PAIRS_PER_CALL = 8
ENTROPY = ("lzma", "zlib", "bz2", "none")
_COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "lzma": lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME),
    "zlib": lambda b: zlib.compress(b, 9),
    "bz2": lambda b: bz2.compress(b, 9),
    "none": lambda b: b,
}
_DECOMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "lzma": lzma.decompress,
    "zlib": zlib.decompress,
    "bz2": bz2.decompress,
    "none": lambda b: b,
}

Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Arch:
    """The decoder's shape: latent size, base width and number of x2 stages."""

    latent_dim: int
    channels: int
    upsample: int

    @property
    def widths(self) -> list[int]:
        """Channels from the stem's grid to the last stage: `channels` tapering to half of it."""
        return [max(4, round(self.channels * (1 - 0.5 * i / self.upsample))) for i in range(self.upsample + 1)]

    @property
    def grid(self) -> tuple[int, int]:
        """The stem's grid, which `upsample` doublings take to 384x512."""
        return OUT_H >> self.upsample, OUT_W >> self.upsample


def param_shapes(arch: Arch) -> dict[str, tuple[int, ...]]:
    """Every parameter of the decoder, in file order."""
    w = arch.widths
    h, v = arch.grid
    shapes: dict[str, tuple[int, ...]] = {
        "stem.weight": (w[0] * h * v, arch.latent_dim),
        "stem.bias": (w[0] * h * v,),
    }
    for i in range(arch.upsample):
        shapes[f"block{i}.weight"] = (w[i + 1] * 4, w[i], 3, 3)
        shapes[f"block{i}.bias"] = (w[i + 1] * 4,)
        shapes[f"skip{i}.weight"] = (w[i + 1], w[i], 1, 1)
        shapes[f"skip{i}.bias"] = (w[i + 1],)
    shapes["head.weight"] = (6, w[-1], 3, 3)
    shapes["head.bias"] = (6,)
    return shapes


def init_params(arch: Arch, generator: torch.Generator) -> Params:
    """Seeded starting weights: uniform +-1/sqrt(fan_in) (PyTorch's default scale), biases 0."""
    params = {}
    for name, shape in param_shapes(arch).items():
        if name.endswith(".bias"):
            params[name] = torch.zeros(shape)
        else:
            bound = 1.0 / math.sqrt(math.prod(shape[1:]))
            params[name] = (torch.rand(shape, generator=generator) * 2 - 1) * bound
    return params


def decode_pairs(params: Params, z: torch.Tensor, arch: Arch) -> torch.Tensor:
    """Latents (B, latent_dim) -> both frames of each pair, float RGB in 0..255, (B, 2, 3, 384, 512)."""
    b = z.shape[0]
    h, w = arch.grid
    x = torch.sin(F.linear(z, params["stem.weight"], params["stem.bias"]).view(b, arch.widths[0], h, w))
    for i in range(arch.upsample):
        identity = F.conv2d(
            F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False),
            params[f"skip{i}.weight"],
            params[f"skip{i}.bias"],
        )
        x = torch.sin(
            F.pixel_shuffle(F.conv2d(x, params[f"block{i}.weight"], params[f"block{i}.bias"], padding=1), 2) + identity
        )
    rgb = torch.sigmoid(F.conv2d(x, params["head.weight"], params["head.bias"], padding=1)) * 255.0
    return rgb.view(b, 2, 3, OUT_H, OUT_W)


def to_camera(pairs: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3, 384, 512) float -> (B*2, 3, 874, 1164) float in 0..255, before rounding."""
    frames = pairs.flatten(0, 1)
    return F.interpolate(frames, size=(HEIGHT, WIDTH), mode="bicubic", align_corners=False).clamp(0.0, 255.0)


def weight_qmax(bits: int) -> int:
    """The largest code of a symmetric signed weight of `bits` bits."""
    return 2 ** (bits - 1) - 1


def dequantize_weight(codes: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """codes * scale, one scale per output channel (dim 0); training's fake quantisation ends the same way."""
    return codes.float() * scales.view(-1, *([1] * (codes.dim() - 1)))


def dequantize_latents(codes: torch.Tensor, mins: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """codes * step + min, per latent dimension."""
    return codes.float() * steps + mins


@dataclass(frozen=True, eq=False)
class Packed:
    """What <name>.bin holds, as arrays: the quantised decoder and latents."""

    arch: Arch
    weight_bits: int
    latent_bits: int
    frames: int
    codes: dict[str, np.ndarray]  # int8 weight codes by parameter name
    scales: dict[str, np.ndarray]  # float32 per-output-channel scales by parameter name
    biases: dict[str, np.ndarray]  # float32 by parameter name
    latent_codes: np.ndarray  # uint8 (pairs, latent_dim)
    latent_mins: np.ndarray  # float32 (latent_dim,)
    latent_steps: np.ndarray  # float32 (latent_dim,)

    def params(self) -> Params:
        """The decoder's float32 weights, as the inflate runs them."""
        out = {}
        for name in param_shapes(self.arch):
            if name in self.codes:
                out[name] = dequantize_weight(
                    torch.from_numpy(self.codes[name].copy()), torch.from_numpy(self.scales[name])
                )
            else:
                out[name] = torch.from_numpy(self.biases[name].copy())
        return out

    def latents(self) -> torch.Tensor:
        """The float32 latents, one row per pair."""
        return dequantize_latents(
            torch.from_numpy(self.latent_codes.copy()),
            torch.from_numpy(self.latent_mins),
            torch.from_numpy(self.latent_steps),
        )


def pack(packed: Packed, entropy: str) -> bytes:
    """The <name>.bin bytes (format in the module docstring)."""
    header = {
        "format": FORMAT,
        "version": VERSION,
        "latent_dim": packed.arch.latent_dim,
        "channels": packed.arch.channels,
        "upsample": packed.arch.upsample,
        "weight_bits": packed.weight_bits,
        "latent_bits": packed.latent_bits,
        "frames": packed.frames,
        "entropy": entropy,
    }
    parts = []
    for name, shape in param_shapes(packed.arch).items():
        if len(shape) > 1:
            parts += [packed.codes[name].astype(np.int8).tobytes(), packed.scales[name].astype("<f4").tobytes()]
        else:
            parts.append(packed.biases[name].astype("<f4").tobytes())
    deltas = np.diff(packed.latent_codes.astype(np.int16), axis=0, prepend=0).astype(np.uint8)  # wraps mod 256
    parts += [packed.latent_mins.astype("<f4").tobytes(), packed.latent_steps.astype("<f4").tobytes(), deltas.tobytes()]
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    return head + _COMPRESS[entropy](b"".join(parts))


def unpack(data: bytes) -> Packed:
    """Read <name>.bin bytes back; every size is checked, so a damaged file fails loudly (ValueError)."""
    head, sep, body = data.partition(b"\n")
    try:
        header = json.loads(head) if sep else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = {}
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError("not a comma-tui neural archive file: it must start with its JSON header line")
    if header.get("version") != VERSION or header.get("entropy") not in ENTROPY:
        raise ValueError(f"neural archive version {header.get('version')} / {header.get('entropy')} is not readable")
    try:
        arch = Arch(int(header["latent_dim"]), int(header["channels"]), int(header["upsample"]))
        frames = int(header["frames"])
        raw = _DECOMPRESS[header["entropy"]](body)
    except (KeyError, TypeError, ValueError, lzma.LZMAError, zlib.error, OSError) as exc:
        raise ValueError(f"neural archive is damaged ({exc})") from None
    offset = 0

    def take(dtype: str, count: int) -> np.ndarray:
        nonlocal offset
        size = np.dtype(dtype).itemsize * count
        if offset + size > len(raw):
            raise ValueError("neural archive is truncated")
        array = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
        offset += size
        return array

    codes, scales, biases = {}, {}, {}
    for name, shape in param_shapes(arch).items():
        if len(shape) > 1:
            codes[name] = take("i1", math.prod(shape)).reshape(shape)
            scales[name] = take("<f4", shape[0]).astype(np.float32)
        else:
            biases[name] = take("<f4", shape[0]).astype(np.float32)
    pairs, d = (frames + 1) // 2, arch.latent_dim
    mins, steps = take("<f4", d).astype(np.float32), take("<f4", d).astype(np.float32)
    latent_codes = np.cumsum(take("u1", pairs * d).reshape(pairs, d), axis=0, dtype=np.uint8)  # mod 256, as packed
    if offset != len(raw):
        raise ValueError(f"neural archive has {len(raw) - offset} bytes past its last array")
    return Packed(
        arch,
        int(header["weight_bits"]),
        int(header["latent_bits"]),
        frames,
        codes,
        scales,
        biases,
        latent_codes,
        mins,
        steps,
    )


def inflate_frames(packed: Packed, device: torch.device) -> Iterator[np.ndarray]:
    """The clip's frames, (874, 1164, 3) uint8 RGB, one at a time, PAIRS_PER_CALL pairs per decoder call."""
    params = {k: v.to(device) for k, v in packed.params().items()}
    latents = packed.latents().to(device)
    left = packed.frames
    with torch.inference_mode():
        for start in range(0, latents.shape[0], PAIRS_PER_CALL):
            frames = to_camera(decode_pairs(params, latents[start : start + PAIRS_PER_CALL], packed.arch))
            rgb = frames.round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            yield from rgb[: max(0, left)]
            left -= len(rgb)


def pick_device() -> torch.device:
    """CUDA when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def inflate_file(
    source: Path, raw: Path, progress: Callable[[int], None] | None = None, device: torch.device | None = None
) -> int:
    """Write the frames of one <name>.bin into `raw` (whole or not at all); returns how many."""
    packed = unpack(Path(source).read_bytes())
    partial = raw.with_name(raw.name + ".partial")
    written = 0
    try:
        with open(partial, "wb") as out:
            for frame in inflate_frames(packed, device or pick_device()):
                out.write(frame.tobytes())
                written += 1
                if progress:
                    progress(written)
        partial.replace(raw)
    finally:
        partial.unlink(missing_ok=True)
    return written


def main(argv: list[str] | None = None) -> int:
    """The official inflate contract: ARCHIVE_DIR INFLATED_DIR NAMES_FILE."""
    parser = argparse.ArgumentParser(description="Inflate a comma-tui neural archive into .raw files.")
    parser.add_argument("archive_dir", type=Path)
    parser.add_argument("inflated_dir", type=Path)
    parser.add_argument("names_file", type=Path)
    args = parser.parse_args(argv)
    args.inflated_dir.mkdir(parents=True, exist_ok=True)
    for line in args.names_file.read_text().splitlines():
        stem = Path(line.strip()).stem
        if not stem:
            continue
        source = args.archive_dir / (stem + SUFFIX)
        if not source.is_file():
            print(f"inflate: {source} is missing from the archive", file=sys.stderr)
            return 1
        try:
            inflate_file(source, args.inflated_dir / (stem + ".raw"))
        except ValueError as exc:
            print(f"inflate: {source}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
