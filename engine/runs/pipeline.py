"""A native run: preprocess+encode -> archive -> inflate -> score, each stage timed and reported.

Everything streams: source frames are decoded, shrunk and encoded one at a time; inflate writes
the `.raw` frame by frame; scoring reads it back in batches. A learned post-filter adds two stages
between encode and archive (train-data, train): it keeps only a bounded random subset of frame
pairs (engine.runs.postfilter), and its file ships inside archive.zip, so its bytes are scored.
The run's folder keeps what a person needs to understand or reproduce it: the spec as run,
archive.zip, the log, report.json, per-pair distortions and stage timings.
"""

from __future__ import annotations

import json
import platform
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import numpy as np

from engine import __version__
from engine.media.codecs import VideoEncoder
from engine.media.inflate_runtime import (
    HEIGHT,
    LEARNED_FILTER_FILE,
    VIDEO_SUFFIX,
    WIDTH,
    inflate_video,
    make_postfilter,
)
from engine.media.preprocess import preprocess_frames
from engine.media.video import CLIP_FPS, count_frames, iter_frames
from engine.runs.archive import unpack_archive, write_archive
from engine.runs.postfilter import gather_pairs, train_filter, write_filter
from engine.runs.progress import ProgressEvent, Sink, StageClock
from engine.runs.spec import RunSpec, spec_to_toml
from engine.scoring.evaluate import Evaluation, evaluate
from engine.scoring.reference_cache import ReferenceCache, clip_sha256
from engine.scoring.scorer import Scorer
from ledger import RunResult
from ledger.errors import UserError

VIDEO_NAME = "0" + VIDEO_SUFFIX
Log = Callable[[str], None]


class Stages:
    """Times each stage and turns its counts into progress events."""

    def __init__(self, sink: Sink | None, log: Log) -> None:
        self.sink = sink
        self.log = log
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[StageClock]:
        self.log(f"stage {name}: start")
        if self.sink is not None:
            # Said at once (0 of an unknown total): the console shows the stage that runs, not the last one's 60/60.
            self.sink(ProgressEvent(name, 0, 0, 0.0, None))
        clock = StageClock(name, self.sink)
        start = time.monotonic()
        yield clock
        self.timings[name] = round(time.monotonic() - start, 3)
        self.log(f"stage {name}: done in {self.timings[name]:.1f} s")


def _check_source(spec: RunSpec) -> tuple[Path, Path, int]:
    clip, models = Path(spec.source.clip), Path(spec.source.models)
    if not clip.is_file():
        raise UserError(f"source clip {clip} not found: set [source] clip, or the lab's source (comma-tui init)")
    frames = count_frames(clip)
    if frames < 2:
        raise UserError(f"source clip {clip} has {frames} frame(s): a run needs at least one pair")
    return clip, models, frames


def encode_stage(spec: RunSpec, clip: Path, frames: int, out: Path, progress: Callable[[int, int], None]) -> Path:
    """Decode the source, denoise and shrink it, and encode it; returns the encoded file."""
    p = spec.preprocess
    width, height = (p.width, p.height) if p.width else (WIDTH, HEIGHT)
    video = out / VIDEO_NAME
    with VideoEncoder(video, spec.encode.settings(), width, height, CLIP_FPS) as encoder:
        shrunk = preprocess_frames(iter_frames(clip), p.width, p.height, p.scaler, p.denoise)
        for done, rgb in enumerate(shrunk, start=1):
            encoder.write(rgb)
            progress(done, frames)
    return video


def train_stage(
    spec: RunSpec, clip: Path, frames: int, video: Path, scorer: Scorer, work: Path, stages: Stages, log: Log
) -> tuple[Path, dict[str, Any]]:
    """Learn the post-filter on this run's own encode; returns postfilter.bin and its summary.

    `train-data` decodes the encode, upscaled as inflate will, beside the clip and keeps a random
    subset of pairs; `train` fits the filter on the scorer's device and writes the int8 file.
    """
    i = spec.inflate
    with stages.stage("train-data") as clock:
        pairs = gather_pairs(video, clip, i.scaler, frames, spec.run.seed, progress=clock)
    log(f"post-filter: training on {len(pairs)} of {frames // 2} pairs, {i.steps} steps on {scorer.device}")
    with stages.stage("train") as clock:
        trained = train_filter(pairs, i, spec.run.seed, scorer, scorer.device, clock, log)
    path = work / LEARNED_FILTER_FILE
    size = write_filter(path, trained.packed)
    summary = {"bytes": size, "hidden": i.hidden, "depth": i.depth, "quant": i.quant, "loss": i.loss}
    summary |= {"pairs": len(pairs)} | trained.summary()
    log(
        f"post-filter: {size:,} bytes, probe loss {summary['loss_first']:.6f} -> {summary['loss_last']:.6f} "
        f"(best {summary['loss_best']:.6f} at step {summary['loss_best_step']}), {summary['steps_per_s']} steps/s"
    )
    return path, summary


def inflate_stage(spec: RunSpec, archive: Path, work: Path, frames: int, progress: Callable[[int, int], None]) -> Path:
    """Unpack the archive as the evaluator would and rebuild full-size frames into a .raw."""
    unpacked = work / "archive"
    shutil.rmtree(unpacked, ignore_errors=True)
    unpack_archive(archive, unpacked)
    i = spec.inflate
    postfilter = make_postfilter(i.postfilter, unpacked, i.unsharp_size, i.unsharp_amount)
    raw = work / "inflated" / "0.raw"
    raw.parent.mkdir(parents=True, exist_ok=True)
    written = inflate_video(unpacked / VIDEO_NAME, raw, i.scaler, postfilter, lambda n: progress(n, frames))
    if written != frames:
        raise UserError(f"inflate wrote {written} frames but the clip has {frames}: the encode dropped frames")
    shutil.rmtree(unpacked)
    return raw


def run_spec(
    spec: RunSpec,
    run_dir: Path,
    sink: Sink | None = None,
    log: Log = print,
    keep_raw: bool = False,
    cache_dir: Path | None = None,
) -> RunResult:
    """Run one spec end to end in `run_dir` and return what it measured.

    `cache_dir` (a lab's cache folder) keeps the reference side's network outputs between runs.
    """
    clip, models, frames = _check_source(spec)
    scorer = Scorer(models, device=spec.score.device)  # fail on bad weights before minutes of encoding
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "spec.toml").write_text(spec_to_toml(spec))
    work = run_dir / "work"
    work.mkdir(exist_ok=True)
    stages = Stages(sink, log)
    log(f"run on {socket.gethostname()} ({platform.platform()}), engine {__version__}, {frames} frames of {clip}")

    with stages.stage("encode") as clock:
        video = encode_stage(spec, clip, frames, work, clock)
    files, extra = {VIDEO_NAME: video}, {}
    if spec.inflate.postfilter == "learned":
        files[LEARNED_FILTER_FILE], extra["postfilter"] = train_stage(
            spec, clip, frames, video, scorer, work, stages, log
        )
    with stages.stage("archive") as clock:
        archive = run_dir / "archive.zip"
        archive_bytes = write_archive(archive, files, spec.archive.compression)
        for path in files.values():
            path.unlink()
        clock(1, 1)
    log(f"archive.zip: {archive_bytes:,} bytes")
    with stages.stage("inflate") as clock:
        raw = inflate_stage(spec, archive, work, frames, clock)
    result = score_run(spec, scorer, clip, raw, stages, run_dir, cache_dir, archive_bytes, archive_bytes, extra)
    if keep_raw:
        raw.replace(run_dir / "0.raw")
    shutil.rmtree(work)
    return result


def score_run(
    spec: RunSpec,
    scorer: Scorer,
    clip: Path,
    raw: Path,
    stages: Stages,
    run_dir: Path,
    cache_dir: Path | None,
    archive_bytes: int,
    charged_bytes: int,
    extra: dict[str, Any],
) -> RunResult:
    """The score stage and what every run leaves behind: its result, artifacts and report lines in the log."""
    log = stages.log
    with stages.stage("score") as clock:
        original = spec.source.original_bytes or None
        cache = ReferenceCache(cache_dir, log) if cache_dir is not None else None
        evaluation = evaluate(scorer, clip, raw, archive_bytes, original, spec.score.batch_size, clock, cache)
    write_artifacts(run_dir, evaluation, charged_bytes, stages.timings)
    for line in evaluation.report.lines():
        log(line)
    return RunResult(
        metrics=evaluation.report.metrics(charged_bytes),
        scorer_fingerprint=scorer.fingerprint.full,
        scorer_demo=scorer.fingerprint.demo,
        clip_fingerprint=clip_sha256(clip)[:16],  # the reference cache's key hashed it already
        device_kind=scorer.device.type,
        stage_timings=dict(stages.timings),
        decoder=f"PyAV {av.__version__} CPU decode, NVDEC colour rule",
        host=socket.gethostname(),
        artifacts=str(run_dir),
        engine_version=__version__,
        extra=extra,
    )


def write_artifacts(folder: Path, evaluation: Evaluation, charged_bytes: int, timings: dict[str, float]) -> None:
    """report.txt (the official lines), report.json, per_pair.npz and timings.json beside the archive."""
    (folder / "report.txt").write_text("\n".join(evaluation.report.lines()) + "\n")
    report = evaluation.report.as_dict() | {"charged_bytes": charged_bytes}
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (folder / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    d = evaluation.distortions
    np.savez_compressed(folder / "per_pair.npz", posenet=d.posenet_per_pair, segnet=d.segnet_per_pair)
