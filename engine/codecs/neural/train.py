"""Training the neural codec's decoder and latents on the clip, resumable, with live curves.

Choices, and why:
- What is optimised is what is scored: each step decodes a batch of pairs, upsamples them to
  1164x874 and rounds them as the inflate does (straight-through), then resizes them back to
  384x512 bilinearly as the evaluator does. The loss terms are measured there, in score units:
  `segnet` = 100 x SegNet's expected disagreement with the reference's classes, `posenet` =
  sqrt(10 x PoseNet's squared error), `pixel` = mean |difference| on the 0..1 scale; the spec
  weights them. The scorer's networks are frozen (the post-filter's `ScorerLoss`).
- Adam, linear warm-up then cosine decay (the post-filter's schedule), gradient norm clipped at 1;
  an EMA of the weights and latents is what ships, quantised as training ran it from `qat_from`.
- A batch is drawn from a generator seeded by (seed, step), so a resumed run draws what the
  uninterrupted one would have; a checkpoint every `checkpoint_every` steps loses at most that.
- Live figures: every step's progress event carries the step, the loss and each term; at ten
  points (and the last step) the shipped model - the EMA, quantised, packed - is measured on a
  fixed probe batch: the score it would get there (100 x SegNet disagreement + sqrt(10 x PoseNet
  error) + 25 x its bytes over the clip's), the "estimate". The curve file keeps them by step.
- On CUDA the scorer's networks run in bfloat16 during training only; what ships, the inflate
  and the score are float32, so the final numbers do not depend on it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine.codecs.neural.checkpoint import CheckpointError, Header, read_checkpoint, write_checkpoint
from engine.codecs.neural.keys import NeuralKeys
from engine.codecs.neural.model import Trainable
from engine.codecs.neural.runtime import OUT_H, OUT_W, Arch, Packed, pack, to_camera
from engine.codecs.neural.targets import Targets
from engine.runs.codec import CHECKPOINT_NAME
from engine.runs.postfilter import CLIP_NORM, Ema, ScorerLoss, lr_factor, round_ste
from engine.scoring.scorer import Scorer
from ledger.artifacts import CURVE_NAME

EVAL_POINTS = 10
CURVE_POINTS = 200
# Keys that do not change what is learned: a checkpoint made under other values still resumes.
RESUMABLE_DESPITE = ("checkpoint_every", "device", "init_from")
Progress = Callable[..., None]
Log = Callable[[str], None]


@dataclass(frozen=True)
class Trained:
    """What training gives the codec: the packed archive file's arrays and a summary for the record."""

    packed: Packed
    summary: dict[str, Any]


class Objective:
    """The loss terms of decoded pairs, measured where the evaluator measures them."""

    def __init__(self, keys: NeuralKeys, scorer: Scorer) -> None:
        self.weights = {term: w for term, w in keys.loss.items() if w > 0}
        self.nets = ScorerLoss(scorer, (OUT_H, OUT_W))
        self.autocast = scorer.device.type == "cuda"

    @staticmethod
    def views(pairs: torch.Tensor) -> torch.Tensor:
        """Decoded pairs as the evaluator sees them: upsampled and rounded as inflated, resized back."""
        camera = round_ste(to_camera(pairs))
        small = F.interpolate(camera, size=(OUT_H, OUT_W), mode="bilinear", align_corners=False)
        return small.view(pairs.shape)

    def terms(self, views: torch.Tensor, target: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        """Each weighted term, in score units (pixel: 0..1)."""
        frames, pose_ref, seg_ref = target
        out = {}
        if "pixel" in self.weights:
            out["pixel"] = (views - frames).abs().mean() / 255.0
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
            if "segnet" in self.weights:
                out["segnet"] = self.nets.segnet_term(self.nets.seg(views).float(), seg_ref)
            if "posenet" in self.weights:
                out["posenet"] = self.nets.posenet_term(self.nets.pose(views).float(), pose_ref[:, :6])
        return out

    def loss(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """The weighted sum."""
        return sum(
            (self.weights[t] * v for t, v in terms.items()), torch.zeros((), device=next(iter(terms.values())).device)
        )

    @torch.no_grad()
    def measure(self, views: torch.Tensor, target: tuple[torch.Tensor, ...]) -> tuple[float, float]:
        """(SegNet disagreement, PoseNet mean squared error) as the score counts them."""
        _, pose_ref, seg_ref = target
        seg = self.nets.segnet(views[:, -1]).argmax(dim=1)
        pose = self.nets.pose(views)
        return float((seg != seg_ref.long()).float().mean()), float((pose - pose_ref[:, :6]).square().mean())


class CurveFile:
    """The run's curve.jsonl: one JSON line per point (step, terms, estimate), appended as training goes."""

    def __init__(self, path: Path, resume_step: int) -> None:
        self.path = path
        kept = []
        if resume_step and path.is_file():
            kept = [line for line in path.read_text().splitlines() if json.loads(line).get("step", 0) <= resume_step]
        path.write_text("".join(line + "\n" for line in kept))

    def add(self, point: dict[str, float]) -> None:
        """Append one point."""
        with open(self.path, "a") as f:
            f.write(json.dumps(point, separators=(",", ":")) + "\n")


def _header(keys: NeuralKeys, arch: Arch, pairs: int, step: int) -> Header:
    return Header(step, keys.steps, asdict(arch), pairs, asdict(keys))


def _start(
    keys: NeuralKeys, arch: Arch, pairs: int, run_dir: Path, source: Path | None, device: torch.device, log: Log
) -> tuple[Trainable, int, dict[str, Any]]:
    """The model, its step and saved state: from the run's own checkpoint, from init_from's, or fresh."""
    model = Trainable(arch, pairs, keys.seed)
    own = run_dir / CHECKPOINT_NAME
    if own.is_file():
        try:
            header, state = read_checkpoint(own, device)
        except (CheckpointError, RuntimeError, ValueError) as exc:  # damaged: training again is the honest way
            log(f"checkpoint {own} is unusable ({exc}): starting over")
        else:
            ours = {k: v for k, v in asdict(keys).items() if k not in RESUMABLE_DESPITE}
            if {k: v for k, v in header.keys.items() if k not in RESUMABLE_DESPITE} == ours and header.pairs == pairs:
                model.load_state_dict(state["model"])
                log(f"resumed at step {header.step} from {own}")
                return model, header.step, state
            log(f"checkpoint {own} is for other keys: starting over")
    if source is not None:
        header, state = read_checkpoint(source, device)
        if header.arch != asdict(arch) or header.pairs != pairs:
            raise CheckpointError(
                f"neural.init_from = {keys.init_from!r}: its decoder is {header.arch} over {header.pairs} pairs, "
                f"this run's is {asdict(arch)} over {pairs}: use the same latent_dim, channels, upsample and clip"
            )
        model.load_state_dict(state["ema"])
        log(f"warm start from {source} (its step {header.step})")
    return model, 0, {}


def train_decoder(
    keys: NeuralKeys,
    targets: Targets,
    frames: int,
    scorer: Scorer,
    run_dir: Path,
    original_bytes: int,
    init_source: Path | None,
    progress: Progress,
    log: Log,
) -> Trained:
    """Train (or resume, or fine-tune) the decoder as `keys` say; returns what ships, quantised."""
    device = scorer.device
    arch = Arch(keys.latent_dim, keys.channels, keys.upsample)
    latents = (frames + 1) // 2  # an odd last frame gets a pair of its own, never scored
    model, start, state = _start(keys, arch, latents, run_dir, init_source, device, log)
    model.to(device)
    ema = Ema(model, keys.ema_decay)
    optimizer = torch.optim.Adam(model.parameters(), lr=keys.lr)
    if state:
        ema.model.load_state_dict(state["ema"])
        ema.updates = int(state["ema_updates"])
        optimizer.load_state_dict(state["optimizer"])
    objective = Objective(keys, scorer)
    targets = targets.to(device)
    bits = (keys.weight_bits, keys.latent_bits)
    probe = np.linspace(0, targets.pairs - 1, min(targets.pairs, keys.batch)).round().astype(np.int64)
    curve = CurveFile(run_dir / CURVE_NAME, start)
    estimate: dict[str, float] = dict(state.get("estimate", {}))

    def measure(step: int) -> None:
        shipped = ema.model.packed(*bits, frames)
        size = len(pack(shipped, keys.entropy))  # the file archive.zip holds
        target = targets.batch(probe, device)
        with torch.no_grad():
            views = objective.views(ema.model(torch.from_numpy(probe).to(device), bits))
        seg, pose = objective.measure(views, target)
        score = 100 * seg + math.sqrt(10 * pose) + 25 * size / original_bytes
        estimate.update(estimate=score, segnet_d=seg, posenet_d=pose, bytes=float(size))
        log(
            f"train step {step}/{keys.steps}: estimate {score:.4f} "
            f"(segnet {seg:.5f}, posenet {pose:.6f}, {size:,} bytes)"
        )

    every = max(1, keys.steps // EVAL_POINTS)
    curve_every = max(1, keys.steps // CURVE_POINTS)
    sums: dict[str, float] = {}
    count, began = 0, time.monotonic()
    for step in range(start + 1, keys.steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = keys.lr * lr_factor(step, keys.steps)
        index = np.random.default_rng([keys.seed, step]).choice(targets.pairs, min(keys.batch, targets.pairs), False)
        target = targets.batch(index, device)
        views = objective.views(model(torch.from_numpy(index).to(device), bits if step >= keys.qat_from else None))
        terms = objective.terms(views, target)
        loss = objective.loss(terms)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
        optimizer.step()
        ema.update(model)
        figures = {"loss": float(loss.detach())} | {t: float(v.detach()) for t, v in terms.items()}
        for name, value in figures.items():
            sums[name] = sums.get(name, 0.0) + value
        count += 1
        if step % every == 0 or step == keys.steps:
            measure(step)
        if step % curve_every == 0 or step == keys.steps or step % every == 0:
            curve.add({"step": step} | {k: v / count for k, v in sums.items()} | estimate)
            sums, count = {}, 0
        progress(
            step, keys.steps, metrics={"step": float(step)} | figures | {"estimate": estimate.get("estimate", math.nan)}
        )
        if step % keys.checkpoint_every == 0 or step == keys.steps:
            save = {"model": model.state_dict(), "ema": ema.model.state_dict(), "ema_updates": ema.updates}
            save |= {"optimizer": optimizer.state_dict(), "estimate": estimate}
            write_checkpoint(run_dir, _header(keys, arch, latents, step), save)
    seconds = time.monotonic() - began
    if keys.steps == 0 or start == keys.steps:
        measure(keys.steps)
    trained = keys.steps - start
    summary = {
        "steps": keys.steps,
        "resumed_at": start,
        "steps_per_s": round(trained / seconds, 3) if trained else None,
    }
    return Trained(ema.model.packed(*bits, frames), summary | {k: v for k, v in estimate.items()})
