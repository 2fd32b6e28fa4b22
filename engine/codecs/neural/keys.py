"""The `[neural]` section: its keys, defaults and rules, read without torch."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.runs.spec import SpecError, in_range, one_of

ENTROPY = ("lzma", "zlib", "bz2", "none")  # as engine.codecs.neural.runtime.ENTROPY, which must not import us
LOSS_TERMS = ("segnet", "posenet", "pixel")
MAX_UPSAMPLE = 7  # 384x512 halves evenly seven times (to 3x4)
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_RUN_ID = re.compile(r"^r?\d+$", re.IGNORECASE)


def _default_loss() -> dict[str, float]:
    return {"segnet": 1.0, "posenet": 1.0, "pixel": 0.1}


@dataclass(frozen=True)
class NeuralKeys:
    """How the decoder is shaped, trained, quantised and stored (the README lists what each does)."""

    latent_dim: int = 28
    channels: int = 36
    upsample: int = 6  # x2 stages from the stem's grid to 384x512
    steps: int = 20_000
    lr: float = 2e-3
    batch: int = 8  # frame pairs per step
    loss: dict[str, float] = field(default_factory=_default_loss)  # weights of segnet, posenet and pixel
    ema_decay: float = 0.999
    qat_from: int = 0  # the step quantisation-aware training starts at
    weight_bits: int = 8  # per output channel
    latent_bits: int = 8
    entropy: str = "lzma"
    init_from: str = ""  # a run id: start from its checkpoint
    checkpoint_every: int = 500
    seed: int = 0
    device: str = "auto"


def check_keys(k: NeuralKeys) -> None:
    """SpecError for a value out of range or keys that do not go together."""
    in_range("neural.latent_dim", k.latent_dim, 1, 1024)
    in_range("neural.channels", k.channels, 4, 512)
    in_range("neural.upsample", k.upsample, 1, MAX_UPSAMPLE)
    in_range("neural.steps", k.steps, 0, 10_000_000)
    if not 0.0 < k.lr <= 1.0:
        raise SpecError(f"neural.lr = {k.lr} is out of range: use a positive rate up to 1.0")
    in_range("neural.batch", k.batch, 1, 1024)
    for term in k.loss:
        one_of("neural.loss key", term, LOSS_TERMS)
    if not any(k.loss.values()):
        raise SpecError("neural.loss has no positive weight: e.g. loss = { segnet = 1.0, posenet = 1.0, pixel = 0.1 }")
    in_range("neural.ema_decay", k.ema_decay, 0.0, 1.0)
    in_range("neural.qat_from", k.qat_from, 0, k.steps)
    in_range("neural.weight_bits", k.weight_bits, 2, 8)
    in_range("neural.latent_bits", k.latent_bits, 2, 8)
    one_of("neural.entropy", k.entropy, ENTROPY)
    if k.init_from and not _RUN_ID.match(k.init_from):
        raise SpecError(f"neural.init_from = {k.init_from!r} is not a run id: name a run such as r0042")
    in_range("neural.checkpoint_every", k.checkpoint_every, 1, 10_000_000)
    in_range("neural.seed", k.seed, 0, 2**31 - 1)
    if not _DEVICE.match(k.device):
        raise SpecError(f"neural.device = {k.device!r} is not allowed: use auto, cpu, cuda, cuda:N or mps")
