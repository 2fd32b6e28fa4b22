"""Helpers shared by the ledger's test modules: a lab, specs, results, child processes."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ledger import Lab, Ledger, Metrics, RunRecord, RunResult
from ledger.segments import KIND, PREFIX, Records
from ledger.storage import read_tables, read_version
from ledger.summary_file import read_summary, summary_path
from ledger.table import SummaryTable

REPO = Path(__file__).resolve().parents[2]
ORIGINAL = 1_000_000


def make_lab(root: Path, epsilon: float | None = None) -> Lab:
    """A lab in `root/lab` with a stand-in clip and models folder (the ledger never reads them)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "clip.mkv").write_bytes(b"not really a clip")
    (root / "models").mkdir(exist_ok=True)
    kwargs = {} if epsilon is None else {"epsilon": epsilon}
    return Lab.create(root / "lab", root / "clip.mkv", root / "models", original_bytes=ORIGINAL, **kwargs)


def spec(**encode: Any) -> dict[str, Any]:
    """A small spec with the engine's sections; `encode` overrides the encode section's axes."""
    return {
        "source": {"clip": "videos/0.mkv"},
        "run": {"seed": 0},
        "preprocess": {"scale": 1.0},
        "encode": {"codec": "svt-av1", "crf": 34, "preset": 8, **encode},
        "archive": {"format": "zip"},
        "inflate": {"decoder": "pyav"},
        "score": {"batch_size": 16},
    }


def metrics(
    score: float, archive_bytes: int = 100_000, original_bytes: int = ORIGINAL, charged_bytes: int | None = None
) -> Metrics:
    """Metrics with exactly this score (the ledger stores the engine's numbers; it never recomputes them)."""
    rate = archive_bytes / original_bytes
    return Metrics(
        posenet=0.01,
        segnet=0.005,
        archive_bytes=archive_bytes,
        original_bytes=original_bytes,
        rate=rate,
        score=score,
        segnet_term=0.5,
        posenet_term=score - 0.5 - 25 * rate,
        rate_term=25 * rate,
        charged_bytes=charged_bytes,
        charged_score=None if charged_bytes is None else score + 25 * (charged_bytes - archive_bytes) / original_bytes,
    )


def result(
    score: float,
    *,
    archive_bytes: int = 100_000,
    scorer: str = "scorer-a",
    clip: str = "clip-a",
    device: str = "cpu",
    approximate: bool = False,
    **fields: Any,
) -> RunResult:
    """A finished run's result with exactly this score (what the engine hands `record_result`)."""
    return RunResult(
        metrics=metrics(score, archive_bytes),
        scorer_fingerprint=scorer,
        clip_fingerprint=clip,
        device_kind=device,
        approximate=approximate,
        engine_version="0.1.0",
        decoder="pyav",
        stage_timings={"encode": 1.5, "score": 2.0},
        **fields,
    )


def measured(
    ledger: Ledger,
    score: float,
    *,
    track: str = "main",
    parent: str | None = None,
    the_spec: dict[str, Any] | None = None,
    **result_kwargs: Any,
) -> RunRecord:
    """Add a run, run it (in the ledger's eyes) and record this score; return the reviewed record."""
    record = ledger.add_run(the_spec or spec(), track=track, parent=parent)
    ledger.update(record.id, status="running", pid=os.getpid(), slot=0)
    return ledger.record_result(record.id, result(score, **result_kwargs))


def start_child(code: str, *args: str) -> subprocess.Popen[str]:
    """`python -c code args...` from the repo root, its stdout a pipe of lines."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
    """The child's next stdout line, waiting at most `timeout` seconds (a polled deadline)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.05)
        if ready:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"child ended before saying anything: {proc.stderr.read() if proc.stderr else ''}")
            return line.strip()
    raise AssertionError("child said nothing in time")


def end(proc: subprocess.Popen[str]) -> None:
    """Make sure a child process is gone (teardown)."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def assert_summaries_agree(lab: Lab) -> int:
    """Every segment's summary that a reader would use holds exactly what its records say.

    Returns how many summaries were usable (the others are missing or stale, and are rebuilt).
    """
    usable = 0
    for segment in sorted(lab.ledger_dir.glob(f"{PREFIX}*.json")):
        tables, sig = read_tables(segment, KIND)
        assert tables is not None and sig is not None
        found = read_version(segment)
        assert found is not None
        if found[1] != sig:
            continue  # replaced between the two reads (no writer runs here: never)
        summary = read_summary(summary_path(segment), found[0], lambda _numbers: b"")
        if summary is None:
            continue
        usable += 1
        truth = SummaryTable.of(list(Records(tables, segment).values()))
        assert list(summary.view()) == list(truth.view()), f"{summary_path(segment)} disagrees with its records"
        assert summary.search_blocks() == truth.search_blocks()
    return usable
