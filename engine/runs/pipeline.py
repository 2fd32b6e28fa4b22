"""A native run: the codec's stages -> archive -> inflate -> score, each stage timed and reported.

Every run kind goes this way (see `engine.runs.codec`): the checks and the scorer first, then the
codec's own stages (the PyAV codecs encode, a learned post-filter trains, the neural codec
learns the clip), then archive.zip from the files they made, the archive unpacked as the
evaluator would and inflated by the codec, and the score. Everything streams: inflate writes
the `.raw` frame by frame; scoring reads it back in batches. The run's folder keeps what a
person needs to understand or reproduce it: the spec as run, archive.zip, the log, report.json,
per-pair distortions and stage timings.
"""

from __future__ import annotations

import hashlib
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
from engine.media.video import FRAME_BYTES, SEQ_LEN, count_frames
from engine.runs.archive import unpack_archive, write_archive
from engine.runs.codec import Job
from engine.runs.progress import Sink, Stages
from engine.runs.registry import codec_named
from engine.runs.source import check_source, check_space, check_submission
from engine.runs.spec import RunSpec, spec_to_toml
from engine.scoring.early import EarlyPlan, Floor
from engine.scoring.evaluate import Evaluation, evaluate
from engine.scoring.previews import PreviewKeeper, write_previews
from engine.scoring.reference_cache import ReferenceCache, clip_sha256
from engine.scoring.scorer import Scorer
from engine.scoring.weights import file_sha256
from ledger import RunResult
from ledger.artifacts import ARCHIVE_NAME, PER_PAIR_NAME
from ledger.errors import MachineFault, UserError
from ledger.files import atomic_write
from ledger.previews import PREVIEWS_FOLDER

Log = Callable[[str], None]
#: The floor of a run's comparison group (scorer fingerprint, clip fingerprint, device kind), or None.
FloorLookup = Callable[[str, str, str], Floor | None]


def preflight(spec: RunSpec, folder: Path, runs_dir: Path | None = None) -> int:
    """Check in a moment what a run of `spec` reads, and that its files fit in `folder`; returns the frame count.

    A run keeps its inflated frames on disk whole (a full clip's are ~3.7 GB, for each run going
    at once), so a run that cannot fit them is refused here rather than failing at inflate.
    `runs_dir` (the lab's run folders) lets the codec check what it reads of other runs.
    """
    clip = Path(spec.source.clip)
    frames = check_source(clip, Path(spec.source.models))
    if spec.run.submission:
        check_submission(Path(spec.run.submission))
    else:
        codec_named(spec.encode.codec).preflight(spec, runs_dir or folder)
    # The inflated frames, and the encode and its archive (each at most about the clip's size).
    check_space(folder, frames * FRAME_BYTES + 2 * clip.stat().st_size)
    return frames


def begin_run(spec: RunSpec, run_dir: Path, sink: Sink | None, log: Log) -> tuple[int, Scorer, Stages]:
    """What every run does before its first stage: the checks, the scorer, the spec as run; returns frames too."""
    frames = preflight(spec, run_dir, run_dir.parent)
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


def inflate_stage(spec: RunSpec, archive: Path, work: Path, frames: int, progress: Callable[[int, int], None]) -> Path:
    """Unpack the archive as the evaluator would and let the run's codec rebuild full-size frames into a .raw."""
    unpacked = work / "archive"
    shutil.rmtree(unpacked, ignore_errors=True)
    unpack_archive(archive, unpacked)
    raw = work / "inflated" / "0.raw"
    raw.parent.mkdir(parents=True, exist_ok=True)
    written = codec_named(spec.encode.codec).inflate(spec, unpacked, raw, lambda n: progress(n, frames))
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
    floor: FloorLookup | None = None,
) -> RunResult:
    """Run one spec end to end in `run_dir` and return what it measured.

    `cache_dir` (a lab's cache folder) keeps the reference side's network outputs between runs;
    `floor` finds the floor the run is judged against early (None: scored in full).
    """
    frames, scorer, stages = begin_run(spec, run_dir, sink, log)
    clip = Path(spec.source.clip)
    log(f"run on {socket.gethostname()} ({platform.platform()}), engine {__version__}, {frames} frames of {clip}")
    codec = codec_named(spec.encode.codec)
    with work_folder(run_dir) as work:
        encoded = codec.encode(Job(spec, run_dir, work, clip, frames, scorer, stages, cache_dir))
        with stages.stage("archive") as clock:
            archive = run_dir / ARCHIVE_NAME
            archive_bytes = write_archive(archive, encoded.files, spec.archive.compression)
            for path in encoded.files.values():
                path.unlink()
            clock(1, 1)
        log(f"archive.zip: {archive_bytes:,} bytes")
        with stages.stage("inflate") as clock:
            raw = inflate_stage(spec, archive, work, frames, clock)
        result = score_run(
            spec,
            scorer,
            clip,
            raw,
            stages,
            run_dir,
            cache_dir,
            archive_bytes,
            archive_bytes,
            dict(encoded.extra),
            floor,
        )
        if keep_raw:
            raw.replace(run_dir / "0.raw")
        return result


def rescore_spec(
    spec: RunSpec, run_dir: Path, sink: Sink | None = None, log: Log = print, cache_dir: Path | None = None
) -> RunResult:
    """Score a run's kept archive in full (inflate, then every pair): no encode, no training."""
    archive = kept_archive(run_dir)
    frames, scorer, stages = begin_run(spec, run_dir, sink, log)
    log(f"scoring {archive} fully: inflate and score every pair, on {socket.gethostname()}")
    with work_folder(run_dir) as work:
        with stages.stage("inflate") as clock:
            raw = inflate_stage(spec, archive, work, frames, clock)
        size = archive.stat().st_size
        return score_run(spec, scorer, Path(spec.source.clip), raw, stages, run_dir, cache_dir, size, size, {})


def kept_archive(run_dir: Path) -> Path:
    """The archive a finished run kept in its folder; a clear error when it is gone."""
    archive = run_dir / ARCHIVE_NAME
    if not archive.is_file():
        raise UserError(f"{archive} is gone: the run cannot be scored again from it; queue the run again (clone it)")
    return archive


def early_plan(
    spec: RunSpec, scorer: Scorer, clip_fingerprint: str, floor: FloorLookup | None, charged_bytes: int, archive: Path
) -> EarlyPlan | None:
    """How this run may be rejected early: against the floor of its comparison group, if it has one."""
    found = floor(scorer.fingerprint.full, clip_fingerprint, scorer.device.type) if floor is not None else None
    if found is None:
        return None
    # Seeded by the archive: the same run visits the same order, and no two runs share one by chance.
    seed = int(hashlib.sha256(f"{spec.run.seed}:{file_sha256(archive)}".encode()).hexdigest()[:15], 16)
    return EarlyPlan(found, spec.score.confidence, seed, charged_bytes)


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
    floor: FloorLookup | None = None,
) -> RunResult:
    """The score stage and what every run leaves behind: its result, artifacts and report lines in the log.

    With `floor` (early verdicts on), a run that has lost to its group's floor for sure stops
    scoring early and its metrics are estimates; a run without a floor is scored in full.
    """
    log = stages.log
    clip_fingerprint = clip_sha256(clip)[:16]  # the reference cache's key hashes it too (remembered)
    plan = early_plan(spec, scorer, clip_fingerprint, floor, charged_bytes, run_dir / ARCHIVE_NAME)
    if plan is not None:
        log(
            f"early verdict: on, against floor {plan.floor.score:.4f} ({plan.floor.run_id}) + epsilon "
            f"{plan.floor.epsilon:g} at {plan.confidence * 100:g}% confidence; batches in a random order"
        )
    with stages.stage("score") as clock:
        original = spec.source.original_bytes or None
        cache = ReferenceCache(cache_dir, log) if cache_dir is not None else None
        keeper = PreviewKeeper(count_frames(raw) // SEQ_LEN, spec.score.previews) if spec.score.previews else None
        evaluation = evaluate(
            scorer, clip, raw, archive_bytes, original, spec.score.batch_size, clock, cache, plan, keeper
        )
        if keeper is not None:
            started = time.process_time()
            size = write_previews(keeper, run_dir / PREVIEWS_FOLDER, clip, raw)
            spent = time.process_time() - started
            log(f"previews: {len(keeper.kept)} pairs, {size:,} bytes in {PREVIEWS_FOLDER}/, {spent:.2f} s CPU to write")
    write_artifacts(run_dir, evaluation, charged_bytes, stages.timings)
    for line in evaluation.report.lines():
        log(line)
    return RunResult(
        metrics=evaluation.report.metrics(charged_bytes),
        scorer_fingerprint=scorer.fingerprint.full,
        scorer_demo=scorer.fingerprint.demo,
        clip_fingerprint=clip_fingerprint,
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
