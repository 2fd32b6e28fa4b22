"""How fast the ledger is on a big lab (10,000 runs; try --runs 100000): open, lists, floors, append.

    python benchmarks/ledger_speed.py [--runs 10000] [--repeat 15] [--keep DIR]

With --keep, the lab is made in DIR and kept, or reused as it is when DIR holds one already.

Targets on the 2-core dev box, whatever the lab's size: open <= 1 s (in a new process, imports
included), filtered list <= 100 ms, floors + counts <= 100 ms, append <= 50 ms, and
`comma-tui ledger show RUN` <= 0.5 s from process start to exit. The script prints figures (the
new processes' CPU time beside their wall time, since a busy box stretches wall times) and never
asserts them. The generated lab has no segment summaries, as one written by an older comma-tui:
the first open builds them. For comparison it also times one insert into the same runs held in a
single plain TinyDB file (JSONStorage), which is what the segmented layout of `ledger.segments`
avoids.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, installed or not

from tinydb import TinyDB

from engine.scoring.report import ScoreReport
from ledger import Lab, Ledger, RunResult
from ledger.segments import EVENTS_TABLE, KIND, RUNS_PER_FILE, RUNS_TABLE
from ledger.storage import AtomicJSONStorage

TRACKS = ("main", "small", "grain", "night")
SCORERS = ("9f3c2a1b7e44", "demo-1a2b3c4d")


def make_spec(rng: random.Random) -> dict[str, Any]:
    """A spec shaped like the engine's, with its axes drawn at random."""
    return {
        "source": {"clip": "/data/comma/videos/0.mkv", "models": "/data/comma/models", "frames": 1200},
        "run": {"seed": rng.randrange(100), "timeout_s": 3600, "device": "auto", "batch_size": 16},
        "preprocess": {"scale": rng.choice([1.0, 0.75, 0.5]), "denoise": rng.choice(["none", "hqdn3d", "nlmeans"])},
        "encode": {
            "codec": rng.choice(["svt-av1", "x265", "libaom"]),
            "crf": rng.randrange(20, 50),
            "preset": rng.randrange(0, 13),
            "film_grain": rng.choice([0, 8, 16, 22]),
            "keyint": rng.choice([60, 120, 240]),
            "tune": rng.choice(["psnr", "ssim", "vq"]),
            "pix_fmt": "yuv420p10le",
            "params": {"enable-qm": 1, "qm-min": rng.randrange(0, 8), "sharpness": rng.randrange(-2, 3)},
        },
        "archive": {"format": "zip", "level": 9, "strip_metadata": True},
        "inflate": {"decoder": "pyav", "upscale": rng.choice(["bicubic", "lanczos"]), "post_filter": None},
        "score": {"device": "cuda", "batch_size": 16, "pairs": 600},
    }


def make_doc(number: int, rng: random.Random, t0: float) -> dict[str, Any]:
    """One stored run document; most are measured, some failed, a few queued."""
    run = f"r{number:04d}"
    created = t0 + number * 60.0
    status = rng.choices(["done", "failed", "queued", "cancelled"], weights=[85, 8, 5, 2])[0]
    doc: dict[str, Any] = {
        "id": run,
        "created": created,
        "started": created + 5 if status != "queued" else None,
        "finished": created + 300 if status in ("done", "failed", "cancelled") else None,
        "track": rng.choice(TRACKS),
        "label": f"crf sweep point {number % 17}",
        "notes": "",
        "spec": make_spec(rng),
        "parent": f"r{number - rng.randrange(1, 20):04d}" if number > 20 else None,
        "changed": [f"crf {rng.randrange(20, 50)} -> {rng.randrange(20, 50)}"],
        "status": status,
        "priority": 0,
        "position": number,
        "stage_timings": {"preprocess": 3.1, "encode": 120.5, "archive": 0.4, "inflate": 20.2, "score": 60.7},
        "artifacts": f"/data/labs/main/runs/{run}",
        "engine_version": "0.1.0",
        "host": "gpu-box",
        "pid": None,
        "slot": None,
        "requeued": 0,
        "approximate": False,
        "extra": {},
    }
    if status == "done":
        posenet, segnet = rng.uniform(0.01, 0.2), rng.uniform(0.002, 0.01)
        archive, original = rng.randrange(200_000, 2_000_000), 3_623_878_656
        doc["metrics"] = ScoreReport(posenet, segnet, 600, archive, original, "", "cuda").metrics().to_dict()
        doc |= {"scorer_fingerprint": rng.choice(SCORERS), "clip_fingerprint": "5d41402abc4b", "device_kind": "cuda"}
        doc |= {"scorer_demo": False, "decoder": "pyav"}
        verdict = rng.choices(["promoted", "rejected"], weights=[5, 95])[0]
        doc["review"] = {"verdict": verdict, "reason": f"+0.021 vs floor 2.190 (r{max(1, number - 3):04d})"}
        doc["review"] |= {"floor": f"r{max(1, number - 3):04d}", "at": created + 300}
    elif status == "failed":
        doc["failure_reason"] = "worker killed by SIGKILL (out of memory?)"
        doc["log_tail"] = "\n".join(f"[encode] frame {i}/1200 ..." for i in range(60))
    return doc


def generate(lab: Lab, runs: int, seed: int = 0) -> None:
    """Write `runs` runs straight into segment files, as the ledger would have written them."""
    rng = random.Random(seed)
    t0 = time.time() - runs * 60.0
    docs = [make_doc(n, rng, t0) for n in range(1, runs + 1)]
    for index, start in enumerate(range(0, runs, RUNS_PER_FILE)):
        chunk = docs[start : start + RUNS_PER_FILE]
        tables = {RUNS_TABLE: {str(start + i + 1): d for i, d in enumerate(chunk)}, EVENTS_TABLE: {}}
        AtomicJSONStorage(lab.ledger_dir / f"runs-{index:04d}.json", kind=KIND, durable=False).write(tables)
    single = TinyDB(lab.root / "single-file.json")  # plain TinyDB, for comparison only
    single.storage.write({"_default": {str(i + 1): d for i, d in enumerate(docs)}})
    single.close()


def timed(fn: Callable[[], Any], repeat: int) -> list[tuple[float, float]]:
    """Wall and CPU seconds of each of `repeat` calls (on a busy box the CPU time is the steadier)."""
    times = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


REPO = Path(__file__).resolve().parent.parent


def open_in_new_process(lab: Lab) -> tuple[float, float]:
    """Wall and CPU seconds a fresh interpreter takes to import the ledger and read every run's summary."""
    code = "import sys, time; t, c = time.perf_counter(), time.process_time(); from ledger import Ledger; "
    code += "len(Ledger(sys.argv[1]).all()); print(time.perf_counter() - t, time.process_time() - c)"
    out = subprocess.run(
        [sys.executable, "-c", code, str(lab.root)], cwd=REPO, capture_output=True, text=True, check=True
    )
    wall, cpu = out.stdout.split()
    return float(wall), float(cpu)


def show_in_new_process(lab: Lab, run: str) -> tuple[float, float]:
    """Wall and CPU seconds of `comma-tui ledger show RUN`, from process start to exit."""
    code = "import sys; from comma_tui.cli import main; sys.exit(main())"
    argv = [sys.executable, "-c", code, "ledger", "show", run, "--lab", str(lab.root)]
    before = os.times()
    start = time.perf_counter()
    subprocess.run(argv, cwd=REPO, capture_output=True, check=True)
    wall, after = time.perf_counter() - start, os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def report(name: str, times: list[tuple[float, float]], target: float | None) -> None:
    """One line: wall median and worst, CPU median, and the target (judged on the wall median)."""
    med, worst = statistics.median(w for w, _ in times), max(w for w, _ in times)
    cpu = statistics.median(c for _, c in times)
    goal = f"target <= {target * 1000:6.0f} ms  {'ok' if med <= target else 'MISSED'}" if target else ""
    line = f"{name:<36} median {med * 1000:8.1f} ms   worst {worst * 1000:8.1f} ms   cpu {cpu * 1000:7.1f} ms"
    print(f"{line}   n={len(times):<3} {goal}".rstrip())


def lab_in(base: Path, runs: int) -> Lab:
    """The lab in `base/lab`, as it is when there is one (say from --keep), else made with `runs` runs."""
    if (base / "lab" / "lab.toml").is_file():
        lab = Lab.open(base / "lab")
        print(f"reusing {lab.root}: {len(Ledger(lab).all())} runs")
        return lab
    (base / "clip.mkv").touch()
    (base / "models").mkdir(parents=True, exist_ok=True)
    lab = Lab.create(base / "lab", base / "clip.mkv", base / "models", original_bytes=3_623_878_656)
    start = time.perf_counter()
    generate(lab, runs)
    size = sum(p.stat().st_size for p in lab.ledger_dir.glob("runs-*.json"))
    print(f"generated {runs} runs in {time.perf_counter() - start:.1f} s: {size / 1e6:.1f} MB ledger")
    report("first open (builds every summary)", timed(lambda: len(Ledger(lab).all()), 1), None)
    return lab


def main() -> int:
    """Generate the lab, time the operations, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--keep", type=Path, help="the lab's folder: made there and kept, or reused when there")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lab = lab_in(args.keep or Path(tmp), args.runs)
        report("open (reads every summary)", timed(lambda: len(Ledger(lab).all()), max(3, args.repeat // 3)), 1.0)
        report("open in a new process (+imports)", [open_in_new_process(lab) for _ in range(3)], 1.0)
        ledger = Ledger(lab)
        newest = max(ledger.all(), key=lambda run: run.number)  # queued or running, in a lab at work
        for name, run in (("an early run", "r0042"), (f"the newest ({newest.status})", newest.id)):
            report(f"comma-tui ledger show, {name}", [show_in_new_process(lab, run) for _ in range(3)], 0.5)
        filtered = lambda: ledger.runs(track="main", verdict="rejected", sort="score")  # noqa: E731
        report("filtered list (track+verdict,sort)", timed(filtered, args.repeat), 0.1)
        report("text search list", timed(lambda: ledger.runs(text="nlmeans"), args.repeat), 0.1)
        report("floor query", timed(lambda: ledger.floor("main"), args.repeat), None)
        report("floors + counts", timed(lambda: (ledger.floors(), ledger.counts()), args.repeat), 0.1)
        report("one run in full (get)", timed(lambda: ledger.get("r0042"), args.repeat), None)
        spec = make_spec(random.Random(1))
        report("append (add_run, fsynced)", timed(lambda: ledger.add_run(spec, parent="r0042"), args.repeat), 0.05)
        appended = lambda: len(ledger.add_run(spec).id) + len(ledger.all())  # noqa: E731
        report("append, then every summary again", timed(appended, max(3, args.repeat // 3)), None)
        metrics = ScoreReport(0.05, 0.004, 600, 900_000, 3_623_878_656, SCORERS[0], "cuda").metrics()
        result = RunResult(metrics, scorer_fingerprint=SCORERS[0], clip_fingerprint="5d41402abc4b", device_kind="cuda")
        pending = iter(ledger.queued())
        report(
            "record_result (with review)",
            timed(lambda: ledger.record_result(next(pending).id, result), args.repeat),
            None,
        )
        report("set_progress", timed(lambda: ledger.set_progress("r0001", "encode", 5, 10, 1.0, 2.0), 50), None)
        report("refresh, nothing changed", timed(ledger.revision, 50), None)

        single = TinyDB(lab.root / "single-file.json")
        n = len(ledger.all()) + 1000
        times = timed(lambda: single.insert({"id": f"r{n}", "spec": spec}), 1)  # seconds a call at 100,000 runs
        single.close()
        report("for comparison: plain TinyDB insert", times, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
