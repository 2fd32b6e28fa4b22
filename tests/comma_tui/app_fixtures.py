"""A fixed lab for the console's tests, snapshots and benchmark: synthetic runs, no encoding.

Runs are added and "measured" through the ledger's own API with made-up metrics, so a lab of
thirty runs (or ten thousand, for the benchmark) is ready in moments. `frozen_time` pins the
ledger's clock so ids, times and verdict reasons are the same on every run of the tests.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import numpy as np

from engine.demo.layout import DemoAssets
from engine.scoring.report import ScoreReport
from engine.scoring.weights import POSENET_FILE, SEGNET_FILE
from ledger import Lab, Ledger, Metrics, RunRecord, RunResult
from ledger.artifacts import PER_PAIR_NAME
from ledger.records import short_fingerprint

ORIGINAL = 37_545_489
# A demo scorer's fingerprint as the engine writes it: sha256 hex, shown as demo-1a2b3c4d.
SCORER = "1a2b3c4d" + "5e6f" * 14
START = 1_767_000_000.0  # a fixed clock (2025-12-29): stable snapshots


def spec(crf: int = 35, film_grain: int = 22, width: int = 524, height: int = 394, preset: str = "10") -> dict:
    """A valid engine spec (the lab supplies [source])."""
    return {
        "preprocess": {"width": width, "height": height, "scaler": "lanczos"},
        "encode": {"codec": "libsvtav1", "crf": crf, "preset": preset, "film_grain": film_grain},
        "inflate": {"scaler": "lanczos"},
    }


def metrics(crf: int, film_grain: int, jitter: float = 0.0) -> Metrics:
    """Made-up distortions that move with crf and film grain the way real ones roughly do, scored for real."""
    archive = int(900_000 * 1.09 ** (35 - crf) * (1 - film_grain / 200))
    segnet = 0.004 + 0.0004 * (crf - 30) + 0.00002 * film_grain + jitter
    posenet = 0.02 + 0.003 * (crf - 30) - 0.0001 * film_grain + jitter
    return ScoreReport(posenet, segnet, 30, archive, ORIGINAL, short_fingerprint(SCORER, True), "cpu").metrics()


def result(crf: int, film_grain: int, jitter: float = 0.0, finished: float | None = None) -> RunResult:
    """A finished run's result with made-up metrics (what the engine hands `Ledger.record_result`)."""
    return RunResult(
        metrics=metrics(crf, film_grain, jitter),
        scorer_fingerprint=SCORER,
        scorer_demo=True,
        clip_fingerprint="clip-0123456789",
        device_kind="cpu",
        engine_version="0.1.0",
        host="lab-host",
        stage_timings={"encode": 12.4, "archive": 0.1, "inflate": 3.2, "score": 21.7},
        log_tail=f"12:00:01 stage encode: start\n12:00:13 stage encode: done\n12:00:38 verdict for crf {crf}",
        finished=finished,
        started=None if finished is None else finished - 37.4,
    )


@contextlib.contextmanager
def frozen_time(start: float = START, step: float = 60.0) -> Iterator[None]:
    """The ledger's clock ticks `step` seconds per call from `start` (times in records are fixed)."""
    ticks = itertools.count()
    with mock.patch("ledger.ledger.time.time", side_effect=lambda: start + step * next(ticks)):
        yield


def write_per_pair(run: RunRecord, pairs: int, seed: int) -> None:
    """A per-pair file in the run's folder, as the engine writes one."""
    rng = random.Random(seed)
    posenet = [0.02 + 0.01 * rng.random() + 0.004 * (i % 7 == 0) for i in range(pairs)]
    segnet = [0.004 + 0.002 * rng.random() for _ in range(pairs)]
    np.savez_compressed(Path(run.artifacts) / PER_PAIR_NAME, posenet=posenet, segnet=segnet)


def stand_in_assets(root: Path) -> DemoAssets:
    """Files where demo assets go, enough for `DemoAssets.exist()` and `Lab.create` (never decoded)."""
    assets = DemoAssets(root)
    assets.clip.parent.mkdir(parents=True, exist_ok=True)
    assets.clip.write_bytes(b"stand-in clip")
    assets.models.mkdir(parents=True, exist_ok=True)
    for name in (POSENET_FILE, SEGNET_FILE):
        (assets.models / name).write_bytes(b"stand-in weights")
    return assets


def make_lab(root: Path, clip: Path, models: Path) -> Lab:
    """A lab in `root` on this clip and scorer."""
    return Lab.create(root, clip, models, original_bytes=ORIGINAL)


def fill_fixed(lab: Lab) -> dict[str, str]:
    """A small history: promotions, rejections, a failure, a running run and queued runs.

    Returns the ids by role: first, floor, rejected, failed, running, queued.
    """
    ledger = Ledger(lab)
    roles: dict[str, str] = {}
    with frozen_time():
        first = _measure(ledger, 35, 22, None, "first svt-av1")
        roles["first"] = first.id
        write_per_pair(first, 30, 1)
        parent = first
        for crf, grain, label in ((33, 22, ""), (37, 22, ""), (35, 10, ""), (34, 30, "grain 30"), (36, 0, "")):
            child = _measure(ledger, crf, grain, parent.id, label)
            write_per_pair(child, 30, crf * 100 + grain)
            if child.verdict == "promoted":
                parent = child
            else:
                roles.setdefault("rejected", child.id)
        roles["floor"] = ledger.floors()["main"].id
        failed = ledger.add_run(spec(crf=12), track="main", label="crf 12 (oom)", parent=first.id)
        ledger.update(failed.id, status="running", pid=os.getpid(), slot=0)
        ledger.record_failure(failed.id, "worker killed by signal 9 (SIGKILL): out of memory?", "encode 40/60")
        roles["failed"] = failed.id
        other = ledger.add_run(spec(crf=30, width=0, height=0), track="native", label="native size")
        ledger.update(other.id, status="running", pid=os.getpid(), slot=0)
        ledger.record_result(other.id, result(30, 22, finished=START + 3000))
        running = ledger.add_run(spec(crf=32), track="main", label="", parent=roles["floor"])
        ledger.update(running.id, status="running", pid=os.getpid(), slot=0)
        ledger.set_progress(running.id, "inflate", 18, 60, elapsed=20.0, eta=14.0)
        roles["running"] = running.id
        for crf in (31, 29):
            roles["queued"] = ledger.add_run(spec(crf=crf), track="main", parent=roles["floor"]).id
    return roles


def _measure(ledger: Ledger, crf: int, grain: int, parent: str | None, label: str) -> RunRecord:
    run = ledger.add_run(spec(crf=crf, film_grain=grain), track="main", label=label, parent=parent)
    ledger.update(run.id, status="running", pid=os.getpid(), slot=0)
    return ledger.record_result(run.id, result(crf, grain, finished=START + 100 * run.number))


def fill_many(lab: Lab, count: int, seed: int = 0) -> None:
    """`count` measured runs (for the benchmark), written in one go through the ledger."""
    ledger = Ledger(lab)
    rng = random.Random(seed)
    parent = None
    for _ in range(count):
        crf, grain = rng.randint(25, 45), rng.choice((0, 10, 22, 30))
        run = ledger.add_run(spec(crf=crf, film_grain=grain), track="main", parent=parent)
        ledger.update(run.id, status="running", pid=os.getpid(), slot=0)
        done = ledger.record_result(run.id, result(crf, grain, jitter=rng.uniform(-0.001, 0.001)))
        if done.verdict == "promoted" or parent is None:
            parent = done.id
