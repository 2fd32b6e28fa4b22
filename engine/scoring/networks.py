"""The two scoring networks, built so the official safetensors load with strict=True.

Module and buffer names are the contract: `posenet.safetensors` and `segnet.safetensors` only
load if every state-dict key matches, so the attribute names below must not change.
"""

from __future__ import annotations

from typing import ClassVar

import timm
import torch
from segmentation_models_pytorch import Unet
from timm.models._efficientnet_blocks import InvertedResidual
from torch import nn
from torch.nn import functional as F

MODEL_H, MODEL_W = 384, 512
POSE_OUT = 12
POSE_DISTORTION_DIMS = POSE_OUT // 2
SEG_CLASSES = 5
_IN_CHANS = 12
_VISION_FEATURES = 2048
_SUMMARY_FEATURES = 512
_POSE_HIDDEN = 32
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01


class AllNorm(nn.Module):
    """One BatchNorm1d(1) shared by every element of the input."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(1, eps=_BN_EPS, momentum=_BN_MOMENTUM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x.view(-1, 1)).view(x.shape)


def _mlp(features: int, *, lead_relu: bool) -> nn.Sequential:
    wide = features * 2
    layers: list[nn.Module] = [nn.ReLU()] if lead_relu else []
    layers += [nn.Linear(features, wide), AllNorm(), nn.ReLU(), nn.Linear(wide, features), AllNorm()]
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """Two residual MLP branches: a = x + A(x); out = relu(a + B(a)).

    The evaluator's B starts with an in-place ReLU that also rectifies `a` before the sum is
    taken, so the sum it really computes is relu(a) + B(a); we do the same on purpose.
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.block_a = _mlp(features, lead_relu=False)
        self.block_b = _mlp(features, lead_relu=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(x + self.block_a(x))
        return F.relu(a + self.block_b(a))


class Hydra(nn.Module):
    """Multi-head output; the challenge weights have one head, `pose`."""

    heads: ClassVar[dict[str, tuple[int, int]]] = {"pose": (_POSE_HIDDEN, POSE_OUT)}

    def __init__(self, features: int) -> None:
        super().__init__()
        self.resblock = ResBlock(features)
        self.in_layer = nn.ModuleDict({n: nn.Linear(features, h) for n, (h, _) in self.heads.items()})
        self.res_layer = nn.ModuleDict(
            {n: nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h)) for n, (h, _) in self.heads.items()}
        )
        self.final_layer = nn.ModuleDict({n: nn.Linear(h, o) for n, (h, o) in self.heads.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.resblock(x)
        out = {}
        for name in self.heads:
            hidden = F.relu(self.in_layer[name](x))
            hidden = F.relu(hidden + self.res_layer[name](hidden))
            out[name] = self.final_layer[name](hidden)
        return out


class PoseNet(nn.Module):
    """fastvit_t12 on two frames' YUV6 planes, a summariser MLP and the `pose` head."""

    _mean: torch.Tensor
    _std: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("_mean", torch.full((1, _IN_CHANS, 1, 1), 255 / 2))
        self.register_buffer("_std", torch.full((1, _IN_CHANS, 1, 1), 255 / 4))
        self.vision = timm.create_model(
            "fastvit_t12",
            pretrained=False,
            in_chans=_IN_CHANS,
            num_classes=_VISION_FEATURES,
            act_layer=timm.layers.get_act_layer("gelu_tanh"),
        )
        self.summarizer = nn.Sequential(
            nn.Linear(_VISION_FEATURES, _SUMMARY_FEATURES), nn.ReLU(), ResBlock(_SUMMARY_FEATURES)
        )
        self.hydra = Hydra(_SUMMARY_FEATURES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pose outputs (B, 12) from preprocessed input (B, 12, 192, 256)."""
        features = self.vision((x - self._mean) / self._std)
        return self.hydra(self.summarizer(features))["pose"]


class SegNet(Unet):
    """smp Unet on tu-efficientnet_b2, five classes, raw logits.

    With `frame_chunk` set, the two places that make the largest maps run that many frames at
    a time: the encoder's first expansion (16 -> 96 channels at 192x256, about 600 MB with its
    batch norm at batch 16) and the decoder with the head (32 channels at 384x512 are 400 MB).
    Both hold only convolutions, batch norms, activations, nearest upsampling and
    concatenation, whose per-frame values do not depend on how many frames share the call on
    CPU (tests check the classes against the whole-batch forward). Everything else stays
    whole: the encoder's squeeze-excite means are reductions whose CPU kernels split, and so
    round, by batch shape. GPU kernels are picked per shape, so there it stays unset.
    """

    def __init__(self) -> None:
        super().__init__("tu-efficientnet_b2", classes=SEG_CLASSES, activation=None, encoder_weights=None)
        self.frame_chunk: int | None = None
        block = self.encoder.model.blocks[1][0]
        if isinstance(block, InvertedResidual) and block.conv_s2d is None:
            block.forward = self._first_expansion  # type: ignore[method-assign]  # the state dict is untouched

    def _first_expansion(self, x: torch.Tensor) -> torch.Tensor:
        """timm's InvertedResidual.forward for blocks[1][0], its expansion `frame_chunk` frames at a time."""
        block = self.encoder.model.blocks[1][0]
        step = self.frame_chunk or x.shape[0]
        parts = [block.bn2(block.conv_dw(block.bn1(block.conv_pw(x[i : i + step])))) for i in range(0, len(x), step)]
        shortcut, x = x, parts[0] if len(parts) == 1 else torch.cat(parts)
        x = block.bn3(block.conv_pwl(block.se(block.aa(x))))
        return block.drop_path(x) + shortcut if block.has_skip else x

    def classes(self, x: torch.Tensor) -> torch.Tensor:
        """Argmax classes (B, 384, 512), as `forward(x).argmax(dim=1)` gives them, using less memory."""
        features = self.encoder(x)
        step = self.frame_chunk or x.shape[0]
        parts = [
            self.segmentation_head(self.decoder([f[i : i + step] for f in features])).argmax(dim=1)
            for i in range(0, x.shape[0], step)
        ]
        return parts[0] if len(parts) == 1 else torch.cat(parts)


def rgb_to_yuv6(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) float RGB -> (N, 6, H/2, W/2): four Y phases, then 2x2-averaged U and V."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    y = (r * 0.299 + g * 0.587 + b * 0.114).clamp_(0.0, 255.0)
    u = ((b - y) / 1.772 + 128.0).clamp_(0.0, 255.0)
    v = ((r - y) / 1.402 + 128.0).clamp_(0.0, 255.0)

    def pool(p: torch.Tensor) -> torch.Tensor:
        return (p[:, 0::2, 0::2] + p[:, 1::2, 0::2] + p[:, 0::2, 1::2] + p[:, 1::2, 1::2]) * 0.25

    phases = [y[:, 0::2, 0::2], y[:, 1::2, 0::2], y[:, 0::2, 1::2], y[:, 1::2, 1::2]]
    return torch.stack([*phases, pool(u), pool(v)], dim=1)


def to_model_input(batch: torch.Tensor) -> torch.Tensor:
    """uint8 pairs (B, 2, H, W, 3) -> float (B, 2, 3, H, W), laid out as the evaluator does."""
    return batch.permute(0, 1, 4, 2, 3).float()


def posenet_input(x: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3, H, W) float -> (B, 12, 192, 256): resize each frame, YUV6, frames side by side."""
    b, t = x.shape[:2]
    frames = x.reshape(b * t, *x.shape[2:])
    frames = F.interpolate(frames, size=(MODEL_H, MODEL_W), mode="bilinear")
    yuv = rgb_to_yuv6(frames)
    return yuv.reshape(b, t * 6, *yuv.shape[-2:])


def segnet_input(x: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3, H, W) float -> the last frame resized to (B, 3, 384, 512)."""
    return F.interpolate(x[:, -1, ...], size=(MODEL_H, MODEL_W), mode="bilinear")
