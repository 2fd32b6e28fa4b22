"""A neural run's checkpoint: written whole or not at all, its header readable without torch.

`checkpoint.pt` in the run's folder is one JSON header line (what it is, its step, the decoder's
shape and the keys it trained with) followed by a `torch.save` blob of the weights, the
latents, their EMA and the optimiser. The header lets a spec check `init_from` in a moment; the
blob resumes a run that was interrupted, or starts another from it.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.runs.codec import CHECKPOINT_NAME
from ledger.errors import UserError
from ledger.files import atomic_write
from ledger.records import run_id, run_number

FORMAT = "comma-tui-neural-checkpoint"
VERSION = 1


class CheckpointError(UserError):
    """A checkpoint that is not there, or cannot serve the run that asks for it."""


@dataclass(frozen=True)
class Header:
    """What a checkpoint is for: its step of how many, the decoder's shape, the clip's pairs, the keys."""

    step: int
    steps: int
    arch: dict[str, int]
    pairs: int
    keys: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The header line's fields."""
        return {"format": FORMAT, "version": VERSION, "step": self.step, "steps": self.steps} | {
            "arch": self.arch,
            "pairs": self.pairs,
            "keys": self.keys,
        }


def write_checkpoint(folder: Path, header: Header, state: dict[str, Any]) -> Path:
    """Write `folder/checkpoint.pt` atomically (a crash leaves the previous one whole)."""
    import torch

    blob = io.BytesIO()
    torch.save(state, blob)
    line = json.dumps(header.to_dict(), sort_keys=True, separators=(",", ":")).encode() + b"\n"
    path = folder / CHECKPOINT_NAME
    atomic_write(path, line + blob.getvalue(), durable=False)
    return path


def read_header(path: Path) -> Header:
    """A checkpoint's header; CheckpointError when the file is missing or is not a checkpoint."""
    try:
        with open(path, "rb") as f:
            head = f.readline(1 << 16)
        data = json.loads(head)
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ValueError("not a neural checkpoint")
        return Header(int(data["step"]), int(data["steps"]), dict(data["arch"]), int(data["pairs"]), dict(data["keys"]))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path} is not a neural checkpoint ({exc})") from None


def read_checkpoint(path: Path, device: Any = "cpu") -> tuple[Header, dict[str, Any]]:
    """A checkpoint's header and state (tensors on `device`)."""
    import torch

    header = read_header(path)
    data = path.read_bytes()
    state = torch.load(io.BytesIO(data[data.index(b"\n") + 1 :]), map_location=device, weights_only=True)
    return header, state


def source_checkpoint(runs_dir: Path, init_from: str) -> Path:
    """The checkpoint `init_from` names, checked to be one; a one-line error says what to name instead."""
    run = run_id(run_number(init_from))
    path = runs_dir / run / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(
            f"neural.init_from = {init_from!r}: {run} has no checkpoint ({path}): "
            "name a neural run that trained (done, failed, interrupted and cancelled runs keep theirs)"
        )
    read_header(path)
    return path
