"""Training the learned post-filter per clip: quantisation-aware, with an EMA of the weights.

The filter (`inflate_runtime.residual_filter`, y = x + 255 f(x/255)) learns to map the decoded and
upscaled frames of a run's own encode back towards the reference frames. What ships is the EMA
of the weights, quantised to int8; training runs those int8 weights in the loop (symmetric fake
quantisation, straight-through gradient), so the shipped filter is the one that was optimised.
Only the filter learns: no gradient goes through the codec or into the scorer's networks.

Choices, and why:
- Data: the frame count is known, so `gather_pairs` picks up to MAX_PAIRS evaluator pairs
  (2k, 2k+1) at random up front, decodes both videos once and keeps only those. Memory stays
  bounded whatever the clip's length (16 pairs x 4 frames x 3 MB, about 195 MB) and the pairs
  spread over the whole clip; crops are then drawn from them with replacement.
- Samples: random square crops at full resolution, the same window in the candidate and the
  reference. The pixel loss needs single frames; the scorer loss needs both frames of a pair.
- Losses, in natural units, summed with the spec's weights: `pixel` is L1 or MSE on RGB scaled
  to 0..1 (an L1 of 0.01 is 2.55 grey levels); `scorer` is in score points, see `ScorerLoss`.
- Optimiser: Adam; linear warm-up over the first 5% of steps, then cosine decay towards zero;
  gradient norm clipped at 1 so one odd crop cannot undo the warm-up.
- EMA: decay min(ema_decay, (1 + t) / (10 + t)) at step t, so a short run is not pinned to the
  identity it started from (0.997 ** 20 would keep 94% of it).
- Loss curve: a fixed probe batch (its own seeded crops) scored by the quantised EMA filter, i.e.
  what would ship, at step 0 (the identity: no filter) and at CURVE_POINTS steps after.
- Reproducible: `seed` picks the pairs, the crops and the initial weights; on CPU with the same
  thread count the same spec gives the same file, byte for byte. On CUDA the crops are the same
  but kernels may round differently.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Generic, TypeVar

import av
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.media.inflate_runtime import (
    HEIGHT,
    WIDTH,
    PackedFilter,
    as_array,
    dequantize,
    filter_layers,
    pack_filter,
    residual_filter,
    resize_rgb,
    upscaled_frames,
)
from engine.media.video import as_rgb, iter_frames_unconverted
from engine.runs.spec import InflateSpec
from engine.scoring.networks import MODEL_H, POSE_DISTORTION_DIMS, rgb_to_yuv6
from engine.scoring.scorer import Scorer

MAX_PAIRS = 16
CURVE_POINTS = 10
WARMUP_FRACTION = 0.05
CLIP_NORM = 1.0
QMAX = 127  # symmetric int8: -128 is never used, so w and -w quantise alike
POSE_EPS = 1e-6
Progress = Callable[[int, int], None]
Log = Callable[[str], None]


class _RoundSTE(torch.autograd.Function):
    """round() forward, identity backward: the straight-through estimator."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """round(x), with the gradient passed straight through."""
    return _RoundSTE.apply(x)  # type: ignore[no-any-return]


def quant_scale(w: torch.Tensor, quant: str, qmax: int = QMAX) -> torch.Tensor:
    """Symmetric scales of a weight: max |w| / qmax per output channel (dim 0), or over the tensor."""
    w = w.detach()
    amax = w.abs().amax(dim=tuple(range(1, w.dim()))) if quant == "per-channel" else w.abs().amax().reshape(1)
    # An all-zero channel (the last conv at the start) takes any positive scale; its ints are 0.
    return torch.where(amax > 0, amax / qmax, torch.ones_like(amax))


def quantize(w: torch.Tensor, quant: str, qmax: int = QMAX) -> tuple[torch.Tensor, torch.Tensor]:
    """(integer codes held in float, scales) of a weight; the rounding passes gradients straight through."""
    scale = quant_scale(w, quant, qmax)
    return round_ste(w / scale.view(-1, *([1] * (w.dim() - 1)))).clamp(-qmax, qmax), scale


def fake_quant(w: torch.Tensor, quant: str) -> torch.Tensor:
    """w as int8 times scale, in float32, with the gradient passed straight through the rounding."""
    return dequantize(*quantize(w, quant))


class QATFilter(nn.Module):
    """The residual CNN with fake-quantised weights; the last conv starts at zero (the identity)."""

    def __init__(self, hidden: int, depth: int, quant: str, generator: torch.Generator) -> None:
        super().__init__()
        self.hidden, self.depth, self.quant = hidden, depth, quant
        layers = filter_layers(hidden, depth)
        weights = []
        for i, (cin, cout) in enumerate(layers):
            if i == len(layers) - 1:
                weights.append(torch.zeros(cout, cin, 3, 3))
            else:  # He initialisation for the ReLU layers
                weights.append(torch.randn(cout, cin, 3, 3, generator=generator) * math.sqrt(2.0 / (cin * 9)))
        self.weights = nn.ParameterList(nn.Parameter(w) for w in weights)
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(cout)) for _, cout in layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) float RGB in 0..255 through the filter with int8-valued weights."""
        return residual_filter(x, [fake_quant(w, self.quant) for w in self.weights], list(self.biases))

    @torch.no_grad()
    def packed(self) -> PackedFilter:
        """The weights as shipped: the same ints and scales the forward pass uses."""
        ints, scales = [], []
        for w in self.weights:
            q, scale = quantize(w, self.quant)
            ints.append(q.to(torch.int8).cpu().numpy())
            scales.append(scale.cpu().numpy().astype(np.float32))
        biases = tuple(b.detach().cpu().numpy().astype(np.float32) for b in self.biases)
        return PackedFilter(self.hidden, self.depth, self.quant, tuple(ints), tuple(scales), biases)


M = TypeVar("M", bound=nn.Module)


class Ema(Generic[M]):
    """An exponential moving average of a model's float weights, kept as a model of its own."""

    def __init__(self, model: M, decay: float) -> None:
        self.model: M = copy.deepcopy(model).requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: M) -> None:
        """Pull the average towards `model`'s current weights."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for avg, p in zip(self.model.parameters(), model.parameters(), strict=True):
            avg.lerp_(p.detach(), 1.0 - decay)


def lr_factor(step: int, steps: int) -> float:
    """Learning-rate multiplier at `step` (1-based): linear warm-up, then cosine decay."""
    warmup = max(1, round(steps * WARMUP_FRACTION))
    if step <= warmup:
        return step / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / (steps - warmup + 1)))


@dataclass(frozen=True)
class FramePairs:
    """Evaluator pairs kept for training: candidate (decoded, upscaled) and reference frames."""

    cand: np.ndarray  # (K, 2, 874, 1164, 3) uint8
    ref: np.ndarray  # (K, 2, 874, 1164, 3) uint8

    def __len__(self) -> int:
        return len(self.cand)


def _rebuilt_rgb(small: av.VideoFrame | np.ndarray, scaler: str) -> np.ndarray:
    return resize_rgb(as_rgb(small), WIDTH, HEIGHT, scaler)


def _candidates(video: Path, inflate: InflateSpec) -> Iterator[Callable[[], np.ndarray]]:
    """The encode's frames rebuilt as inflate rebuilds them, each as a call that gives it in RGB.

    On the rgb path only the frames kept pay for the conversion, its costly part; the yuv path's
    graph must see every frame (its filters may look across frames), and its RGB is cheap to read.
    """
    if inflate.path == "rgb":
        for small in iter_frames_unconverted(video):
            yield partial(_rebuilt_rgb, small, inflate.scaler)
    else:
        for frame in upscaled_frames(video, inflate.scaler, inflate.path, inflate.filters):
            yield partial(as_array, frame)


def gather_pairs(
    video: Path,
    clip: Path,
    inflate: InflateSpec,
    frames: int,
    seed: int,
    progress: Progress | None = None,
) -> FramePairs:
    """Decode the encode (rebuilt as `inflate` says) and the clip side by side, keeping up to MAX_PAIRS random pairs."""
    total = frames // 2
    chosen = np.sort(np.random.default_rng([seed, 0]).choice(total, size=min(MAX_PAIRS, total), replace=False))
    slots = {int(pair): slot for slot, pair in enumerate(chosen)}
    cand = np.empty((len(chosen), 2, HEIGHT, WIDTH, 3), np.uint8)
    ref = np.empty_like(cand)
    filled = 0
    decoded = zip(_candidates(video, inflate), iter_frames_unconverted(clip), strict=False)
    for index, (candidate, reference) in enumerate(decoded):
        pair, member = divmod(index, 2)
        if pair in slots:  # only kept frames are converted to RGB: most of the clip is dropped
            cand[slots[pair], member] = candidate()
            ref[slots[pair], member] = as_rgb(reference)
            filled += 1
        if progress:
            progress(index + 1, frames)
        if filled == cand.shape[0] * 2:
            break  # the rest of the clip would only be decoded to be dropped
    if filled != cand.shape[0] * 2:
        raise ValueError(f"{video} or {clip} ended early: kept {filled} of {cand.shape[0] * 2} frames")
    if progress:
        progress(frames, frames)
    return FramePairs(cand, ref)


def sample_crops(
    pairs: FramePairs, rng: np.random.Generator, batch: int, crop: int, paired: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Float (B, T, 3, crop, crop) candidate and reference crops; T = 2 (a pair) or 1 (one frame)."""
    picks = rng.integers(0, len(pairs), batch)
    members = rng.integers(0, 2, batch)
    tops = rng.integers(0, HEIGHT - crop + 1, batch)
    lefts = rng.integers(0, WIDTH - crop + 1, batch)
    cand, ref = [], []
    for k, m, y, x in zip(picks, members, tops, lefts, strict=True):
        frames = slice(None) if paired else slice(m, m + 1)
        cand.append(pairs.cand[k, frames, y : y + crop, x : x + crop])
        ref.append(pairs.ref[k, frames, y : y + crop, x : x + crop])

    def tensor(crops: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(crops)).permute(0, 1, 4, 2, 3).float()

    return tensor(cand), tensor(ref)


def pixel_loss(out: torch.Tensor, ref: torch.Tensor, kind: str) -> torch.Tensor:
    """L1 or MSE between RGB in 0..255, measured on the 0..1 scale."""
    diff = (out - ref) / 255.0
    return diff.abs().mean() if kind == "l1" else diff.square().mean()


def scorer_input_size(crop: int) -> int:
    """Side of the square the scorer's networks see a crop at.

    The evaluator shrinks frames by about 0.44 (874 -> 384 rows); crops are shrunk by the same
    factor so the networks see textures at the scale they score them, rounded to a multiple of 64
    (the networks' strides, and the half resolution of PoseNet's YUV6 input). Cheaper on CPU than
    blowing a crop up to 384x512, and a whole frame at full resolution would not fit a step.
    """
    return 64 * max(1, round(crop * MODEL_H / HEIGHT / 64))


class ScorerLoss:
    """A differentiable stand-in for the score on frame pairs, through the frozen scorer networks.

    = 100 * mean(1 - agreement of SegNet's softmax with the reference's)  (last frame)
      + sqrt(10 * mean((pose(cand)[:6] - pose(ref)[:6])^2) + 1e-6)  (PoseNet, both frames)
    The score's own weights and its square root: the pose term pulls harder as it shrinks, as it
    does in the score; the epsilon keeps that pull finite at zero. Pairs are resized (bilinear,
    as the evaluator does) to `size`: the networks' own 384x512 for whole frames, a smaller
    square for the post-filter's crops (`scorer_input_size`). The neural codec uses the terms
    one by one, against reference outputs computed once.
    """

    def __init__(self, scorer: Scorer, size: tuple[int, int]) -> None:
        self.posenet, self.segnet = scorer.posenet, scorer.segnet
        # Frozen: gradients flow through them into what is trained, never into their weights.
        self.posenet.requires_grad_(False)
        self.segnet.requires_grad_(False)
        self.size = size

    def resized(self, pairs: torch.Tensor) -> torch.Tensor:
        """(B, 2, 3, h, w) float RGB at the networks' input size (as they are when already there)."""
        if tuple(pairs.shape[-2:]) == self.size:
            return pairs
        small = F.interpolate(pairs.flatten(0, 1), size=self.size, mode="bilinear", align_corners=False)
        return small.view(*pairs.shape[:3], *self.size)

    def pose(self, small: torch.Tensor) -> torch.Tensor:
        """PoseNet's scored outputs (B, 6) of resized pairs."""
        b, t = small.shape[:2]
        yuv = rgb_to_yuv6(small.flatten(0, 1)).reshape(b, t * 6, self.size[0] // 2, self.size[1] // 2)
        return self.posenet(yuv)[:, :POSE_DISTORTION_DIMS]

    def seg(self, small: torch.Tensor) -> torch.Tensor:
        """SegNet's class probabilities (B, classes, h, w) of the last frame of resized pairs."""
        return self.segnet(small[:, -1]).softmax(dim=1)

    @staticmethod
    def segnet_term(seg: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """100 x the expected disagreement: `ref` is the reference's probabilities, or its classes (B, h, w)."""
        by_class = ref.dim() == 3
        agreement = seg.gather(1, ref.long().unsqueeze(1)).squeeze(1) if by_class else (seg * ref).sum(dim=1)
        return 100.0 * (1.0 - agreement).mean()

    @staticmethod
    def posenet_term(pose: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """sqrt(10 x the mean squared difference of the scored outputs), in score points."""
        return torch.sqrt(10.0 * (pose - ref).square().mean() + POSE_EPS)

    def __call__(self, cand: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """Loss of filtered candidate pairs (B, 2, 3, c, c) against reference pairs, in score points."""
        with torch.no_grad():
            small_ref = self.resized(ref)
            pose_ref, seg_ref = self.pose(small_ref), self.seg(small_ref)
        small = self.resized(cand)
        return self.segnet_term(self.seg(small), seg_ref) + self.posenet_term(self.pose(small), pose_ref)


def loss_weights(loss: str | Mapping[str, float]) -> dict[str, float]:
    """The spec's `loss` as {term: weight}, zero weights dropped."""
    if isinstance(loss, str):
        return {loss: 1.0}
    return {name: float(weight) for name, weight in loss.items() if weight > 0}


class Objective:
    """The training loss a spec asks for, applied to the filter's output on a batch of crops."""

    def __init__(self, spec: InflateSpec, scorer: Scorer | None) -> None:
        self.weights = loss_weights(spec.loss)
        self.pixel_kind = spec.pixel_loss
        self.scorer_loss: ScorerLoss | None = None
        if "scorer" in self.weights:
            if scorer is None:
                raise ValueError("the scorer loss needs the scorer's networks")
            size = scorer_input_size(spec.crop)
            self.scorer_loss = ScorerLoss(scorer, (size, size))
        self.paired = self.scorer_loss is not None

    def __call__(self, model: nn.Module, cand: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        out = model(cand.flatten(0, 1)).view_as(cand)
        total = torch.zeros((), device=out.device)
        if "pixel" in self.weights:
            total = total + self.weights["pixel"] * pixel_loss(out, ref, self.pixel_kind)
        if self.scorer_loss is not None:
            total = total + self.weights["scorer"] * self.scorer_loss(out, ref)
        return total


@dataclass
class TrainResult:
    """A trained filter: what ships, the EMA model it came from, and how training went."""

    packed: PackedFilter
    ema: QATFilter
    curve: list[tuple[int, float]]  # (step, probe loss of the quantised EMA filter)
    steps: int
    seconds: float

    def summary(self) -> dict[str, Any]:
        """The loss curve's first, best and last points and the speed, for the run record."""
        best_step, best = min(self.curve, key=lambda point: point[1])
        return {
            "steps": self.steps,
            "steps_per_s": round(self.steps / self.seconds, 3) if self.seconds > 0 else None,
            "loss_first": self.curve[0][1],
            "loss_best": best,
            "loss_best_step": best_step,
            "loss_last": self.curve[-1][1],
            "curve": [[step, loss] for step, loss in self.curve],
        }


def train_filter(
    pairs: FramePairs,
    spec: InflateSpec,
    seed: int,
    scorer: Scorer | None = None,
    device: str | torch.device = "cpu",
    progress: Progress | None = None,
    log: Log | None = None,
) -> TrainResult:
    """Train a filter on `pairs` as `spec` says; returns the quantised EMA filter, ready to ship."""
    model = QATFilter(spec.hidden, spec.depth, spec.quant, torch.Generator().manual_seed(seed)).to(device)
    ema = Ema(model, spec.ema_decay)
    objective = Objective(spec, scorer)
    rng = np.random.default_rng([seed, 1])
    probe_rng = np.random.default_rng([seed, 2])  # its own stream: the probe stays put whatever the steps
    probe = [t.to(device) for t in sample_crops(pairs, probe_rng, 2 * spec.batch, spec.crop, objective.paired)]

    def probe_loss() -> float:
        with torch.no_grad():
            return float(objective(ema.model, *probe))

    optimizer = torch.optim.Adam(model.parameters(), lr=spec.lr)
    every = max(1, spec.steps // CURVE_POINTS)
    curve = [(0, probe_loss())]
    recent: list[float] = []
    start = time.monotonic()
    for step in range(1, spec.steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = spec.lr * lr_factor(step, spec.steps)
        cand, ref = (t.to(device) for t in sample_crops(pairs, rng, spec.batch, spec.crop, objective.paired))
        loss = objective(model, cand, ref)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
        optimizer.step()
        ema.update(model)
        recent.append(loss.item())
        if progress:
            progress(step, spec.steps)
        if step % every == 0 or step == spec.steps:
            curve.append((step, probe_loss()))
            if log:
                log(f"train step {step}/{spec.steps}: batch loss {np.mean(recent):.6f}, probe {curve[-1][1]:.6f}")
            recent.clear()
    seconds = time.monotonic() - start
    return TrainResult(ema.model.packed(), ema.model, curve, spec.steps, seconds)


def write_filter(path: Path, packed: PackedFilter) -> int:
    """Write postfilter.bin; returns its size in bytes."""
    data = pack_filter(packed)
    path.write_bytes(data)
    return len(data)
