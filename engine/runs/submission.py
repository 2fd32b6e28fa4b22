"""External submissions in the official layout, scored the way the official evaluate.sh does.

A submission folder holds archive.zip (or a compress.sh that makes one, run in the challenge
repo's layout) and inflate.sh. We unzip the archive into `archive/`, run
`bash inflate.sh ARCHIVE_DIR INFLATED_DIR NAMES_FILE` under a time limit (30 minutes, as the
official one), check that every `.raw` exists with the right size, and score.

The score charges archive.zip only, as the official one does. Files the inflate may read from
beside inflate.sh (model weights, tables) are not charged there, so we also report a "charged"
byte count that includes them, and nobody fools themselves.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from engine.media.video import FRAME_BYTES
from engine.runs.archive import unpack_archive
from engine.runs.pipeline import FloorLookup, Log, begin_run, kept_archive, score_run, work_folder
from engine.runs.progress import Sink
from engine.runs.source import check_submission
from engine.runs.spec import RunSpec
from ledger import RunResult
from ledger.artifacts import ARCHIVE_NAME
from ledger.errors import UserError

OFFICIAL_TIMEOUT = 30 * 60
_FREE_SUFFIXES = {".sh", ".py", ".md", ".txt", ".rst", ".toml", ".cfg", ".ini", ".yaml", ".yml"}
_GENERATED = {"archive", "inflated", "__pycache__", ".git"}


def charged_extras(submission: Path) -> dict[str, int]:
    """Files beside inflate.sh that are not code or docs: {relative path: bytes}."""
    extras = {}
    for path in sorted(submission.rglob("*")):
        rel = path.relative_to(submission)
        if not path.is_file() or rel.parts[0] in _GENERATED or rel.name == ARCHIVE_NAME:
            continue
        if path.suffix.lower() in _FREE_SUFFIXES or rel.name.upper().startswith("LICENSE"):
            continue
        extras[str(rel)] = path.stat().st_size
    return extras


def _run_script(cmd: list[str], cwd: Path, timeout: float, log: Log, what: str) -> None:
    """Run a submission's script in its own process group, killing the whole group on timeout."""
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise UserError(f"{what} ran past the {timeout:.0f} s limit and was stopped: make it faster") from None
    except BaseException:
        # The run itself is being stopped (Ctrl-C, or a cluster stopping its job): the script's
        # session is its own, so nothing else would end it.
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    for line in out.splitlines():
        log(f"{what}: {line}")
    if proc.returncode != 0:
        tail = " | ".join(out.strip().splitlines()[-3:])
        raise UserError(f"{what} failed with exit status {proc.returncode}: {tail or 'no output'}")


def _archive(submission: Path, timeout: float, log: Log) -> Path:
    archive = submission / ARCHIVE_NAME
    if archive.is_file():
        return archive
    if (submission / "compress.sh").is_file():
        _run_script(["bash", "compress.sh"], submission, timeout, log, "compress.sh")
        if archive.is_file():
            return archive
        raise UserError(f"compress.sh ran but left no {archive}: it must write archive.zip beside itself")
    raise UserError(f"{submission} has no archive.zip and no compress.sh: add one of them")


def score_submission(
    submission: Path,
    spec: RunSpec,
    run_dir: Path,
    sink: Sink | None = None,
    log: Log = print,
    timeout: float = OFFICIAL_TIMEOUT,
    cache_dir: Path | None = None,
    floor: FloorLookup | None = None,
    rescore: bool = False,
) -> RunResult:
    """Score an official-layout submission folder against the spec's source clip.

    `cache_dir` (a lab's cache folder) keeps the reference side's network outputs between runs;
    `floor` finds the floor it is judged against early. `rescore` scores the archive the run kept
    in full (its inflate.sh runs again; compress.sh does not).
    """
    submission = check_submission(submission)
    frames, scorer, stages = begin_run(spec, run_dir, sink, log)
    clip = Path(spec.source.clip)

    if rescore:
        archive = kept_archive(run_dir)
    else:
        with stages.stage("archive") as clock:
            archive = _archive(submission, timeout, log)
            shutil.copy2(archive, run_dir / ARCHIVE_NAME)
            clock(1, 1)
    with work_folder(run_dir) as work:
        with stages.stage("inflate") as clock:
            raw = _inflate(submission, archive, work, clip, frames, timeout, log)
            clock(1, 1)
        archive_bytes = archive.stat().st_size
        extras = charged_extras(submission)
        extra = {"submission": str(submission), "charged_files": extras}
        charged = archive_bytes + sum(extras.values())
        return score_run(spec, scorer, clip, raw, stages, run_dir, cache_dir, archive_bytes, charged, extra, floor)


def _inflate(submission: Path, archive: Path, work: Path, clip: Path, frames: int, timeout: float, log: Log) -> Path:
    """Unzip the archive and run the submission's inflate.sh on it, as evaluate.sh does; returns the .raw."""
    archive_dir, inflated = work / "archive", work / "inflated"
    unpack_archive(archive, archive_dir)
    inflated.mkdir(parents=True)
    names = work / "video_names.txt"
    names.write_text(clip.name + "\n")
    cmd = ["bash", str(submission / "inflate.sh"), str(archive_dir), str(inflated), str(names)]
    _run_script(cmd, submission, timeout, log, "inflate.sh")
    raw = inflated / (clip.stem + ".raw")
    if not raw.is_file():
        raise UserError(f"inflate.sh wrote no {raw.name}: it must write <name>.raw into its second argument")
    if raw.stat().st_size != frames * FRAME_BYTES:
        raise UserError(
            f"{raw.name} is {raw.stat().st_size:,} bytes, expected {frames * FRAME_BYTES:,} "
            f"({frames} frames of 874x1164 packed RGB24)"
        )
    return raw
