"""The challenge score, computed exactly as the official evaluator computes it.

The API keeps the two sides apart: `Scorer.reference` turns a batch of reference pairs into
`ReferenceOutputs` (PoseNet outputs and SegNet class maps), and `Scorer.distortions` compares a
batch of candidate pairs against them. Reference outputs can therefore be computed once and
reused for every run. Both take uint8 frame pairs or `NetworkInputs` already prepared pair by
pair (`engine.scoring.model_inputs`, bit-identical to the evaluator's whole-batch conversion). Per-pair
distortions are kept; the means are accumulated the evaluator's way (float32 batch sums), so the
printed digits agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from engine.scoring import networks
from engine.scoring.model_inputs import NetworkInputs, prepare_inputs
from engine.scoring.weights import POSENET_FILE, SEGNET_FILE, read_fingerprint
from ledger.errors import UserError

# SegNet's largest maps are made this many frames at a time on CPU: same numbers, a fraction
# of the memory, and faster (see `networks.SegNet`).
CPU_SEGNET_FRAME_CHUNK = 2


def pick_device(name: str | None = None) -> torch.device:
    """`auto`/None picks cuda, then mps, then cpu; an explicit name must be usable here."""
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"device {name!r} is not a device: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} asked for but no CUDA GPU is visible: use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device {name!r} asked for but MPS is not available: use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"device {name!r} is not supported: use auto, cpu, cuda, cuda:N or mps")
    return device


def _load_strict(model: torch.nn.Module, path: Path) -> None:
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path} cannot be read ({exc}): fetch it again (git lfs pull)") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or shapes:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing keys (first: {missing[0]})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected keys (first: {unexpected[0]})")
        if shapes:
            k = shapes[0]
            problems.append(
                f"{len(shapes)} shape mismatches (first: {k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)})"
            )
        raise UserError(
            f"{path} does not fit the {type(model).__name__} architecture: {'; '.join(problems)}: "
            "use the official weights from the challenge repo's models/ folder"
        )
    model.load_state_dict(state, strict=True)


@dataclass
class ReferenceOutputs:
    """What the networks see in a batch of reference pairs."""

    pose: torch.Tensor  # (B, 12) float32 PoseNet outputs
    seg: torch.Tensor  # (B, 384, 512) uint8 SegNet argmax classes


@dataclass(frozen=True)
class Distortions:
    """Per-pair and mean distortions over a clip."""

    posenet: float
    segnet: float
    posenet_per_pair: np.ndarray
    segnet_per_pair: np.ndarray

    @property
    def pairs(self) -> int:
        return len(self.posenet_per_pair)


class Scorer:
    """PoseNet and SegNet with their weights, on one device, ready to score batches."""

    def __init__(self, models_dir: str | Path, device: str | None = None, threads: int | None = None):
        if threads:
            torch.set_num_threads(threads)
        self.fingerprint = read_fingerprint(models_dir)
        self.device = pick_device(device)
        models_dir = Path(models_dir)
        self.posenet = networks.PoseNet()
        self.segnet = networks.SegNet()
        _load_strict(self.posenet, models_dir / POSENET_FILE)
        _load_strict(self.segnet, models_dir / SEGNET_FILE)
        # Built once per Scorer and never trained: no autograd state anywhere.
        for model in (self.posenet, self.segnet):
            model.eval().requires_grad_(False).to(self.device)
        if self.device.type == "cpu":
            self.segnet.frame_chunk = CPU_SEGNET_FRAME_CHUNK

    def numerics_key(self) -> dict[str, object]:
        """Everything besides the inputs and the batch size that can move this scorer's numbers.

        CPU kernels split their sums by thread count and GPU kernels differ between cards, so
        outputs computed under one of these must not be reused under another.
        """
        cuda = self.device.type == "cuda"
        device = f"cuda:{torch.cuda.get_device_name(self.device)}" if cuda else self.device.type
        return {
            "scorer": self.fingerprint.full,
            "device": device,
            "threads": torch.get_num_threads() if self.device.type == "cpu" else 0,
            "torch": torch.__version__,
        }

    def prepare(self, batch: np.ndarray | NetworkInputs) -> NetworkInputs:
        """A uint8 batch of pairs (B, 2, H, W, 3) as network inputs on this scorer's device."""
        return batch if isinstance(batch, NetworkInputs) else prepare_inputs(batch, self.device)

    @torch.inference_mode()
    def _outputs(self, inputs: NetworkInputs) -> tuple[torch.Tensor, torch.Tensor]:
        pose = self.posenet(inputs.pose)
        seg = self.segnet.classes(inputs.seg)
        return pose, seg

    def reference(self, batch: np.ndarray | NetworkInputs) -> ReferenceOutputs:
        """Network outputs for a batch of reference pairs: uint8 (B, 2, H, W, 3), or prepared."""
        pose, seg = self._outputs(self.prepare(batch))
        return ReferenceOutputs(pose=pose, seg=seg.to(torch.uint8))

    def distortions(
        self, ref: ReferenceOutputs, batch: np.ndarray | NetworkInputs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-pair (PoseNet, SegNet) distortions of candidate pairs against reference outputs."""
        pose_d, seg_d, _ = self.measure(ref, batch)
        return pose_d, seg_d

    @torch.inference_mode()
    def measure(
        self, ref: ReferenceOutputs, batch: np.ndarray | NetworkInputs
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`distortions`, and the candidate's SegNet classes (B, 384, 512) they came from."""
        pose, seg = self._outputs(self.prepare(batch))
        d = networks.POSE_DISTORTION_DIMS
        pose_d = (ref.pose[..., :d] - pose[..., :d]).pow(2).mean(dim=1)
        seg_d = (ref.seg.to(seg.dtype) != seg).float().mean(dim=(1, 2))
        return pose_d, seg_d, seg


class Tally:
    """Per-pair distortions of a clip's batches, taken in any order, summed in the evaluator's.

    The evaluator adds each batch's float32 sums in clip order, and float32 sums depend on their
    order, so the means are made only once every batch is in, in batch order: a clip scored in
    any order gets the evaluator's digits.
    """

    def __init__(self, batch_pairs: Sequence[int], device: torch.device) -> None:
        self.batch_pairs = list(batch_pairs)
        self.device = device
        self._pose: list[torch.Tensor | None] = [None] * len(self.batch_pairs)
        self._seg: list[torch.Tensor | None] = [None] * len(self.batch_pairs)

    def add(self, index: int, pose_d: torch.Tensor, seg_d: torch.Tensor) -> None:
        """Batch `index`'s per-pair distortions (as `Scorer.distortions` gives them)."""
        self._pose[index], self._seg[index] = pose_d, seg_d

    @property
    def complete(self) -> bool:
        """Whether every batch is in."""
        return all(p is not None for p in self._pose)

    def distortions(self) -> Distortions:
        """Means and per-pair values of the whole clip; every batch must be in."""
        if not self.batch_pairs:
            raise UserError("no frame pairs to score: the clip needs at least two frames")
        pose_sum = torch.zeros([], device=self.device)
        seg_sum = torch.zeros([], device=self.device)
        count = torch.zeros([], device=self.device)
        for pose_d, seg_d in zip(self._pose, self._seg, strict=True):
            if pose_d is None or seg_d is None:
                raise ValueError("a batch was not scored: the clip's means need every batch")
            pose_sum += pose_d.sum()
            seg_sum += seg_d.sum()
            count += pose_d.shape[0]
        posenet, segnet = self.per_pair()
        return Distortions((pose_sum / count).item(), (seg_sum / count).item(), posenet, segnet)

    def per_pair(self) -> tuple[np.ndarray, np.ndarray]:
        """(PoseNet, SegNet) per pair of the whole clip, NaN for the pairs of batches not scored."""
        pose_parts, seg_parts = [], []
        for size, pose_d, seg_d in zip(self.batch_pairs, self._pose, self._seg, strict=True):
            missing = np.full(size, np.nan, dtype=np.float32)
            pose_parts.append(missing if pose_d is None else pose_d.cpu().numpy())
            seg_parts.append(missing if seg_d is None else seg_d.cpu().numpy())
        return np.concatenate(pose_parts), np.concatenate(seg_parts)
