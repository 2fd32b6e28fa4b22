"""A test oracle: the official evaluator's computation, structured the way the evaluator is.

comma-tui's scorer is refactored (functional ReLUs, separate reference and candidate sides,
uint8 reference class maps). This oracle keeps the evaluator's own layout instead: in-place
ReLU modules inside Sequentials, both sides run through the networks together, distortions
accumulated per batch in float32. Tests compare the two on the same weights and inputs.
"""

from __future__ import annotations

import math

import numpy as np
import timm
import torch
from segmentation_models_pytorch import Unet
from torch import nn
from torch.nn import functional as F


class _AllNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(1, 1e-3, 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x.view(-1, 1)).view(x.shape)


class _ResBlock(nn.Module):
    def __init__(self, f: int) -> None:
        super().__init__()
        self.block_a = nn.Sequential(
            nn.Linear(f, 2 * f), _AllNorm(), nn.ReLU(inplace=True), nn.Linear(2 * f, f), _AllNorm()
        )
        self.block_b = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Linear(f, 2 * f),
            _AllNorm(),
            nn.ReLU(inplace=True),
            nn.Linear(2 * f, f),
            _AllNorm(),
        )
        self.final_relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x + self.block_a(x)
        return self.final_relu(a + self.block_b(a))  # block_b's in-place ReLU rectifies `a` first


class _Hydra(nn.Module):
    def __init__(self, f: int) -> None:
        super().__init__()
        self.resblock = _ResBlock(f)
        self.relu = nn.ReLU(inplace=True)
        self.in_layer = nn.ModuleDict({"pose": nn.Linear(f, 32)})
        self.res_layer = nn.ModuleDict(
            {"pose": nn.Sequential(nn.Linear(32, 32), nn.ReLU(inplace=True), nn.Linear(32, 32))}
        )
        self.final_layer = nn.ModuleDict({"pose": nn.Linear(32, 12)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resblock(x)
        h = self.relu(self.in_layer["pose"](x))
        h = self.relu(h + self.res_layer["pose"](h))
        return self.final_layer["pose"](h)


class OraclePoseNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("_mean", torch.tensor([255 / 2] * 12).view(1, 12, 1, 1))
        self.register_buffer("_std", torch.tensor([255 / 4] * 12).view(1, 12, 1, 1))
        act = timm.layers.get_act_layer("gelu_tanh")
        self.vision = timm.create_model("fastvit_t12", pretrained=False, num_classes=2048, in_chans=12, act_layer=act)
        self.summarizer = nn.Sequential(nn.Linear(2048, 512), nn.ReLU(inplace=True), _ResBlock(512))
        self.hydra = _Hydra(512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hydra(self.summarizer(self.vision((x - self._mean) / self._std)))


def _yuv6(rgb: torch.Tensor) -> torch.Tensor:
    r, g, b = rgb[..., 0, :, :], rgb[..., 1, :, :], rgb[..., 2, :, :]
    y = (r * 0.299 + g * 0.587 + b * 0.114).clamp_(0.0, 255.0)
    u = ((b - y) / 1.772 + 128.0).clamp_(0.0, 255.0)
    v = ((r - y) / 1.402 + 128.0).clamp_(0.0, 255.0)
    us = (u[..., 0::2, 0::2] + u[..., 1::2, 0::2] + u[..., 0::2, 1::2] + u[..., 1::2, 1::2]) * 0.25
    vs = (v[..., 0::2, 0::2] + v[..., 1::2, 0::2] + v[..., 0::2, 1::2] + v[..., 1::2, 1::2]) * 0.25
    return torch.stack([y[..., 0::2, 0::2], y[..., 1::2, 0::2], y[..., 0::2, 1::2], y[..., 1::2, 1::2], us, vs], dim=-3)


def _outputs(posenet: nn.Module, segnet: nn.Module, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    b, t = batch.shape[:2]
    x = batch.permute(0, 1, 4, 2, 3).float()
    frames = F.interpolate(x.reshape(b * t, 3, x.shape[-2], x.shape[-1]), size=(384, 512), mode="bilinear")
    pose_in = _yuv6(frames).reshape(b, t * 6, 192, 256)
    seg_in = F.interpolate(x[:, -1, ...], size=(384, 512), mode="bilinear")
    return posenet(pose_in), segnet(seg_in)


def oracle_evaluate(posenet: nn.Module, segnet: nn.Module, batches: list[tuple[np.ndarray, np.ndarray]], rate: float):
    """(posenet, segnet, score, per-pair posenet, per-pair segnet) the evaluator's way."""
    pose_sum, seg_sum, n = torch.zeros([]), torch.zeros([]), torch.zeros([])
    per_pose, per_seg = [], []
    with torch.inference_mode():
        for gt, comp in batches:
            pg, sg = _outputs(posenet, segnet, torch.from_numpy(gt))
            pc, sc = _outputs(posenet, segnet, torch.from_numpy(comp))
            pose_d = (pg[..., :6] - pc[..., :6]).pow(2).mean(dim=1)
            diff = (sg.argmax(dim=1) != sc.argmax(dim=1)).float()
            seg_d = diff.mean(dim=(1, 2))
            pose_sum += pose_d.sum()
            seg_sum += seg_d.sum()
            n += gt.shape[0]
            per_pose.append(pose_d.numpy())
            per_seg.append(seg_d.numpy())
    pose, seg = (pose_sum / n).item(), (seg_sum / n).item()
    return pose, seg, 100 * seg + math.sqrt(pose * 10) + 25 * rate, np.concatenate(per_pose), np.concatenate(per_seg)


def oracle_networks(models_dir) -> tuple[nn.Module, nn.Module]:
    from safetensors.torch import load_file

    posenet = OraclePoseNet()
    posenet.load_state_dict(load_file(str(models_dir / "posenet.safetensors")), strict=True)
    segnet = Unet("tu-efficientnet_b2", classes=5, activation=None, encoder_weights=None)
    segnet.load_state_dict(load_file(str(models_dir / "segnet.safetensors")), strict=True)
    return posenet.eval(), segnet.eval()
