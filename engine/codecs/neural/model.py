"""The decoder and its latents as they train: float weights, run quantised once training is told to.

The forward pass is the shipped one (`runtime.decode_pairs`) on weights that are, from
`qat_from` on, quantised in the loop (symmetric per output channel, straight-through rounding,
the post-filter's machinery) and on latents quantised per dimension between their min and max.
The weights and latents that ship are those same codes and scales, so the inflate decodes
exactly what training optimised.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.codecs.neural.runtime import (
    Arch,
    Packed,
    Params,
    decode_pairs,
    dequantize_latents,
    dequantize_weight,
    init_params,
    param_shapes,
    weight_qmax,
)
from engine.runs.postfilter import quantize, round_ste

MIN_STEP = 1e-8  # a latent dimension that does not vary still needs a positive step


def _key(name: str) -> str:
    return name.replace(".", "_")  # module attribute names cannot hold dots


def latent_grid(z: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mins, steps) per latent dimension: 2**bits levels from each dimension's min to its max."""
    z = z.detach()
    mins = z.amin(dim=0)
    steps = ((z.amax(dim=0) - mins) / (2**bits - 1)).clamp_min(MIN_STEP)
    return mins, steps


def latent_codes(z: torch.Tensor, mins: torch.Tensor, steps: torch.Tensor, bits: int) -> torch.Tensor:
    """Integer codes (held in float) of latents on their grid; the rounding passes gradients straight through."""
    return round_ste((z - mins) / steps).clamp(0, 2**bits - 1)


class Trainable(nn.Module):
    """The decoder's weights and one latent per frame pair, seeded."""

    def __init__(self, arch: Arch, pairs: int, seed: int) -> None:
        super().__init__()
        self.arch = arch
        generator = torch.Generator().manual_seed(seed)
        weights = init_params(arch, generator)
        self.weights = nn.ParameterDict({_key(n): nn.Parameter(w) for n, w in weights.items()})
        self.latents = nn.Parameter(torch.randn(pairs, arch.latent_dim, generator=generator))

    def params(self, weight_bits: int | None) -> Params:
        """The decoder's weights by name: as they are, or quantised to `weight_bits` (biases stay float)."""
        out = {}
        for name, shape in param_shapes(self.arch).items():
            w = self.weights[_key(name)]
            if weight_bits and len(shape) > 1:
                w = dequantize_weight(*quantize(w, "per-channel", weight_qmax(weight_bits)))
            out[name] = w
        return out

    def z(self, index: torch.Tensor, latent_bits: int | None) -> torch.Tensor:
        """The latents of pairs `index`: as they are, or on the grid all latents are quantised to."""
        if not latent_bits:
            return self.latents[index]
        mins, steps = latent_grid(self.latents, latent_bits)
        return dequantize_latents(latent_codes(self.latents[index], mins, steps, latent_bits), mins, steps)

    def forward(self, index: torch.Tensor, bits: tuple[int, int] | None) -> torch.Tensor:
        """Pairs `index` decoded, (B, 2, 3, 384, 512) float RGB; `bits` = (weight, latent) bits, or None: float."""
        weight_bits, latent_bits = bits if bits else (None, None)
        return decode_pairs(self.params(weight_bits), self.z(index, latent_bits), self.arch)

    @torch.no_grad()
    def packed(self, weight_bits: int, latent_bits: int, frames: int) -> Packed:
        """What ships: the same codes and scales the quantised forward pass uses."""
        codes, scales, biases = {}, {}, {}
        for name, shape in param_shapes(self.arch).items():
            w = self.weights[_key(name)].detach()
            if len(shape) > 1:
                q, scale = quantize(w, "per-channel", weight_qmax(weight_bits))
                codes[name] = q.to(torch.int8).cpu().numpy()
                scales[name] = scale.float().cpu().numpy()
            else:
                biases[name] = w.float().cpu().numpy()
        mins, steps = latent_grid(self.latents, latent_bits)
        q = latent_codes(self.latents.detach(), mins, steps, latent_bits)
        latents = q.to(torch.uint8).cpu().numpy()
        return Packed(
            self.arch, weight_bits, latent_bits, frames, codes, scales, biases, latents,
            mins.cpu().numpy().astype(np.float32), steps.cpu().numpy().astype(np.float32),
        )  # fmt: skip
