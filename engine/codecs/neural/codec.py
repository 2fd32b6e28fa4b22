"""`[encode] codec = "neural"`: the clip learned by a small decoder, as a run kind of the codec API.

Stages: `train-data` (the clip decoded once into what the decoder must match), `train` (the
decoder and latents learned against the scorer, checkpointed, resumable), then the shared
archive, inflate and score. archive.zip holds one file, `0.bin`: the quantised decoder and
latents, entropy-coded, so every byte of the model is scored. The inflate program is
`runtime.py`, shipped verbatim. [preprocess] and [inflate] do not apply to it.

This module is read whenever a spec is, so torch and the training code load only in `encode`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from engine.codecs.neural import runtime_path
from engine.codecs.neural.checkpoint import source_checkpoint
from engine.codecs.neural.keys import NeuralKeys, check_keys
from engine.runs.codec import Codec, Encoded, InflateProgram, Job
from engine.runs.spec import RunSpec

ARCHIVE_NAME = "0.bin"


def keys_of(spec: RunSpec) -> NeuralKeys:
    """The spec's [neural] section."""
    keys = spec.plugins["neural"]
    assert isinstance(keys, NeuralKeys)
    return keys


class NeuralCodec(Codec):
    """HNeRV-style: one latent per frame pair, a small convolutional decoder, int8 weights."""

    name = "neural"
    codecs = ("neural",)
    section = "neural"
    keys = NeuralKeys

    def check(self, spec: RunSpec) -> None:
        """The [neural] rules."""
        check_keys(keys_of(spec))

    def stages(self, spec: Mapping[str, Any]) -> tuple[str, ...]:
        """Decode the targets, then train."""
        return ("train-data", "train")

    def preflight(self, spec: RunSpec, runs_dir: Path) -> None:
        """`init_from` must name a run with a checkpoint."""
        keys = keys_of(spec)
        if keys.init_from:
            source_checkpoint(runs_dir, keys.init_from)

    def encode(self, job: Job) -> Encoded:
        """Make the targets, train, and write 0.bin."""
        from engine.codecs.neural.runtime import pack
        from engine.codecs.neural.targets import make_targets
        from engine.codecs.neural.train import train_decoder
        from engine.scoring.scorer import Scorer, pick_device

        spec, keys = job.spec, keys_of(job.spec)
        # Training runs where `neural.device` says ("auto": beside the scorer), with its own copy of
        # the networks when that is elsewhere; the score stage stays on [score] device.
        same = keys.device == "auto" or pick_device(keys.device) == job.scorer.device
        trainer = job.scorer if same else Scorer(spec.source.models, device=keys.device)
        with job.stages.stage("train-data") as clock:
            targets = make_targets(
                job.clip, job.frames, job.scorer, job.work, spec.score.batch_size, job.cache_dir, clock
            )
        source = source_checkpoint(job.run_dir.parent, keys.init_from) if keys.init_from else None
        original = spec.source.original_bytes or job.clip.stat().st_size
        job.log(
            f"neural: latent_dim {keys.latent_dim}, channels {keys.channels}, upsample {keys.upsample}, "
            f"{keys.steps} steps of {keys.batch} pair(s) on {trainer.device}"
        )
        with job.stages.stage("train") as clock:
            trained = train_decoder(keys, targets, job.frames, trainer, job.run_dir, original, source, clock, job.log)
        path = job.work / ARCHIVE_NAME
        path.write_bytes(pack(trained.packed, keys.entropy))
        job.log(f"neural: {ARCHIVE_NAME} is {path.stat().st_size:,} bytes")
        return Encoded({ARCHIVE_NAME: path}, {"neural": trained.summary | {"bytes": path.stat().st_size}})

    def inflate(self, spec: RunSpec, archive_dir: Path, raw: Path, progress: Callable[[int], None]) -> int:
        """Decode every frame pair and upsample it, as the exported inflate.py does."""
        from engine.codecs.neural.runtime import inflate_file

        return inflate_file(archive_dir / ARCHIVE_NAME, raw, progress)

    def program(self, spec: RunSpec) -> InflateProgram:
        """runtime.py as inflate.py; it needs no flags."""
        return InflateProgram({"inflate.py": runtime_path()})
