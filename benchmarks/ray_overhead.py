"""What executing a run as a Ray job costs, next to a local worker process: per-run overhead.

Starts a Ray head on loopback (as the tests do: `tests.ray_head`), then runs the same N tiny runs
through the real detached scheduler twice, once per backend, one run at a time. Each run scores
a submission whose inflate.sh stamps the moment it starts and copies the reference frames, so
the run's own work is the same everywhere. Per run:

    submit -> start      from the scheduler marking the run running (the Ray job submitted, or the
                         worker process about to start) to the run's first step (interpreter and
                         imports included, on both sides)
    finish -> recorded   from the run's end (its result written) to the ledger holding it as done

    python benchmarks/ray_overhead.py [--runs 3]

Figures only, no pass/fail; the machine's load is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' Ray head helper

from engine.runs.spec import lab_source, parse_spec
from engine.sched import control
from ledger import Lab, Ledger
from ledger.scheduler_settings import SchedulerSettings
from tests.engine.sched.gated import Assets, make_assets
from tests.ray_head import start_head

INFLATE = """#!/bin/bash
date +%s.%N > "$(dirname "$0")/started.txt"
cp "{reference}" "$2/0.raw"
"""


def queue_stamped(lab: Lab, assets: Assets, folder: Path) -> tuple[str, Path]:
    """A run whose inflate.sh writes when it started; returns its id and that file."""
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "archive.zip", "w") as zf:
        zf.writestr("payload.bin", b"\0" * 64)
    (folder / "inflate.sh").write_text(INFLATE.format(reference=assets.reference))
    spec = parse_spec({"run": {"submission": str(folder), "label": folder.name}}, lab_source(lab))
    return Ledger(lab).add_run(spec.to_dict(), label=folder.name).id, folder / "started.txt"


def measure(lab: Lab, assets: Assets, runs: int) -> tuple[list[float], list[float]]:
    """Run `runs` stamped runs one at a time; (submit->start, finish->recorded) seconds per run."""
    ledger = Ledger(lab)
    control.pause(lab)  # queued first, then released together: one at a time on one slot
    queued = [queue_stamped(lab, assets, lab.root.parent / f"{lab.root.name}-sub{i}") for i in range(runs)]
    control.start(lab, slots=1)
    control.resume(lab)
    launched: dict[str, float] = {}
    recorded: dict[str, float] = {}
    deadline = time.monotonic() + 600 * runs
    try:
        while len(recorded) < runs and time.monotonic() < deadline:
            for run_id, _ in queued:
                record = ledger.get(run_id)
                if record.status == "running" and record.started and run_id not in launched:
                    launched[run_id] = record.started
                if record.status == "done" and run_id not in recorded:
                    recorded[run_id] = time.time()
                elif record.status in ("failed", "cancelled", "interrupted"):
                    raise SystemExit(f"{run_id} {record.status}: {record.failure_reason}")
            time.sleep(0.02)
    finally:
        control.stop(lab, now=True, wait=True, timeout=120)
    starts, ends = [], []
    for run_id, stamp in queued:
        record = ledger.get(run_id)
        assert record.finished is not None
        starts.append(float(stamp.read_text()) - launched[run_id])
        ends.append(recorded[run_id] - record.finished)
    return starts, ends


def line(name: str, values: list[float]) -> str:
    return f"{name:<22} median {statistics.median(values):6.2f} s   min {min(values):6.2f}   max {max(values):6.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per backend (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ray-overhead-") as tmp:
        root = Path(tmp)
        assets = make_assets(root / "assets")
        print(f"load before: {os.getloadavg()[0]:.1f} (1-min), {os.cpu_count()} CPUs")
        local = Lab.create(root / "local", assets.clip, assets.models)
        print("target: none set; issue 18 asks for both backends' figures side by side")
        report("local pool", measure(local, assets, args.runs))  # said before the head starts, which may fail
        head = start_head(root / "head")
        try:
            os.environ |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": head.token}  # the head uses token auth
            settings = SchedulerSettings("ray", head.address, cpus_per_run=1)
            ray = Lab.create(root / "ray", assets.clip, assets.models, scheduler=settings)
            report("ray (local head)", measure(ray, assets, args.runs))
        finally:
            head.stop()
        print(f"load after: {os.getloadavg()[0]:.1f}; {args.runs} runs per backend, one at a time")


def report(name: str, figures: tuple[list[float], list[float]]) -> None:
    """One backend's figures, as soon as they are measured."""
    starts, ends = figures
    print(name, f"(load now {os.getloadavg()[0]:.1f})", flush=True)
    print("  " + line("submit -> start", starts))
    print("  " + line("finish -> recorded", ends), flush=True)


if __name__ == "__main__":
    main()
