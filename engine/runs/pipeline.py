"""A native run: preprocess+encode -> archive -> inflate -> score, each stage timed and reported.

Everything streams: source frames are decoded, shrunk and encoded one at a time; inflate writes
the `.raw` frame by frame; scoring reads it back in batches. A learned post-filter adds two stages
between encode and archive (train-data, train): it keeps only a bounded random subset of frame
pairs (engine.runs.postfilter), and its file ships inside archive.zip, so its bytes are scored.
The run's folder keeps what a person needs to understand or reproduce it: the spec as run,
archive.zip, the log, report.json, per-pair distortions and stage timings.
"""

from __future__ import annotations

import io
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
from engine.media.codecs import encode_frames
from engine.media.inflate_runtime import LEARNED_FILTER_FILE, VIDEO_SUFFIX, inflate_video, make_postfilter
from engine.media.preprocess import preprocessed
from engine.media.video import CLIP_FPS, FRAME_BYTES, SEQ_LEN
from engine.runs.archive import unpack_archive, write_archive
from engine.runs.postfilter import gather_pairs, train_filter, write_filter
from engine.runs.progress import ProgressEvent, Sink, StageClock
from engine.runs.source import check_source, check_space, check_submission
from engine.runs.spec import RunSpec, spec_to_toml
from engine.scoring.evaluate import Evaluation, evaluate
from engine.scoring.reference_cache import ReferenceCache, clip_sha256
from engine.scoring.scorer import Scorer
from ledger import RunResult
from ledger.artifacts import PER_PAIR_NAME
from ledger.errors import MachineFault, UserError
from ledger.files import atomic_write

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


def preflight(spec: RunSpec, folder: Path) -> int:
    """Check in a moment what a run of `spec` reads, and that its files fit in `folder`; returns the frame count.

    A run keeps its inflated frames on disk whole (a full clip's are ~3.7 GB, for each run going
    at once), so a run that cannot fit them is refused here rather than failing at inflate.
    """
    clip = Path(spec.source.clip)
    frames = check_source(clip, Path(spec.source.models))
    if spec.run.submission:
        check_submission(Path(spec.run.submission))
    # The inflated frames, and the encode and its archive (each at most about the clip's size).
    check_space(folder, frames * FRAME_BYTES + 2 * clip.stat().st_size)
    return frames


def begin_run(spec: RunSpec, run_dir: Path, sink: Sink | None, log: Log) -> tuple[int, Scorer, Stages]:
    """What every run does before its first stage: the checks, the scorer, the spec as run; returns frames too."""
    frames = preflight(spec, run_dir)
    scorer = Scorer(spec.source.models, device=spec.score.device)  # bad weights fail before minutes of work
    run_dir.mkdir(parents=True, exist_ok=True)
    write_whole(run_dir / "spec.toml", spec_to_toml(spec).encode())
    return frames, scorer, Stages(sink, log)


@contextmanager
def work_folder(run_dir: Path) -> Iterator[Path]:
    """The run's scratch folder (encode, unpacked archive, inflated frames), removed however the run ends."""
    work = run_dir / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        yield work
    except FileNotFoundError as exc:
        if work.is_dir():
            raise  # the folder is there: a file the run should have made is not, a bug
        gone = work if run_dir.is_dir() else run_dir
        raise MachineFault(
            f"{gone} vanished while the run was using it: leave a running run's folder in place"
        ) from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)


def encode_stage(spec: RunSpec, clip: Path, frames: int, out: Path, progress: Callable[[int, int], None]) -> Path:
    """Decode the source, filter and shrink it, and encode it; returns the encoded file."""
    video = out / VIDEO_NAME
    settings = spec.encode.settings()
    source = preprocessed(clip, spec.preprocess.settings(), settings.pix_fmt)
    encode_frames(video, source, settings, CLIP_FPS, lambda done: progress(done, frames))
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
        pairs = gather_pairs(video, clip, i, frames, spec.run.seed, progress=clock)
    log(f"post-filter: training on {len(pairs)} of {frames // SEQ_LEN} pairs, {i.steps} steps on {scorer.device}")
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
    written = inflate_video(
        unpacked / VIDEO_NAME, raw, i.scaler, postfilter, lambda n: progress(n, frames), i.path, i.filters
    )
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
    frames, scorer, stages = begin_run(spec, run_dir, sink, log)
    clip = Path(spec.source.clip)
    log(f"run on {socket.gethostname()} ({platform.platform()}), engine {__version__}, {frames} frames of {clip}")
    with work_folder(run_dir) as work:
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


def write_whole(path: Path, payload: bytes) -> None:
    """A run's file, whole or absent: a full disk never leaves half of one."""
    atomic_write(path, payload, durable=False)


def write_artifacts(folder: Path, evaluation: Evaluation, charged_bytes: int, timings: dict[str, float]) -> None:
    """report.txt (the official lines), report.json, per_pair.npz and timings.json beside the archive."""
    write_whole(folder / "report.txt", ("\n".join(evaluation.report.lines()) + "\n").encode())
    report = evaluation.report.as_dict() | {"charged_bytes": charged_bytes}
    write_whole(folder / "report.json", (json.dumps(report, indent=2) + "\n").encode())
    write_whole(folder / "timings.json", (json.dumps(timings, indent=2) + "\n").encode())
    d = evaluation.distortions
    per_pair = io.BytesIO()
    np.savez_compressed(per_pair, posenet=d.posenet_per_pair, segnet=d.segnet_per_pair)
    write_whole(folder / PER_PAIR_NAME, per_pair.getvalue())
