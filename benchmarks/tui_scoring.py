"""Key latency of the console while a run scores on the same machine (`tui_speed.py --while-scoring`).

Three rounds on one lab made on demo assets, each timing the same keys in the real app under
Pilot: "down" (the ledger's cursor), "n" until the new-run form is up (and Escape), and one
keystroke in the form until it has validated the spec again.

1. quiet: no run at all (the floor of what a key costs here);
2. pool worker: the lab's scheduler runs the run, as the console's queue does (its worker lowers
   its priority);
3. plain run: `comma-tui run` in a terminal beside the console, at the console's own priority,
   as pool workers ran before.

Keys are timed only while the run is in its score stage (the longest, every core busy).

Pilot's own cost grows with the widgets on screen (it waits for every one to take a message
after each key): a key that does nothing costs ~15 ms of CPU on the main screen and ~55 ms in
the form's hundreds of fields. Each round also times such a no-op key on both screens, and the
figures are given net of it too ("net": what the person waits for, Pilot's share taken away).
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from comma_tui.app import CommaApp
from comma_tui.screens.run_form import RunForm
from engine.sched import control
from ledger import Lab, Ledger

TARGET_MS = 150.0
CLI = "import sys; from comma_tui.cli import main; sys.exit(main(sys.argv[1:]))"  # `comma-tui`, installed or not
SPEC = """
[run]
label = "scoring beside the console"

[preprocess]
width = 256
height = 192

[encode]
codec = "libsvtav1"
crf = 40
preset = "12"
"""


def stage_of_log(log: Path) -> str:
    """The stage a run's log says it is in ("" before any)."""
    try:
        lines = [line for line in log.read_text().splitlines() if " stage " in line and ": start" in line]
    except OSError:
        return ""
    return lines[-1].split(" stage ", 1)[1].split(":", 1)[0] if lines else ""


def wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll until `condition` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.2)


@contextmanager
def hogs(count: int) -> Iterator[None]:
    """`count` busy processes at normal priority for the duration (a second heavy job on the machine)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


@contextmanager
def pool_worker_scoring(lab: Lab, spec: Path) -> Iterator[Callable[[], bool]]:
    """The lab's scheduler runs the spec; yields "is it still scoring?" once it is."""
    from engine.runs.spec import lab_source, load_spec

    record = control.queue_sweep(lab, load_spec(spec, lab_source(lab)), {})[0]
    control.start(lab, slots=1)
    log = Path(record.artifacts) / "log.txt"
    try:
        wait(lambda: stage_of_log(log) == "score", 900, "the pool worker to reach its score stage")
        yield lambda: stage_of_log(log) == "score" and Ledger(lab).get(record.id).status == "running"
    finally:
        control.stop(lab, now=True, wait=True, timeout=60)


@contextmanager
def plain_run_scoring(lab: Lab, spec: Path) -> Iterator[Callable[[], bool]]:
    """`comma-tui run SPEC` in a process of its own at normal priority; yields "is it still scoring?"."""
    before = {r.id for r in Ledger(lab).all()}
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "run", str(spec), "--lab", str(lab.root)],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait(lambda: {r.id for r in Ledger(lab).all()} - before != set() or proc.poll() is not None, 900, "the run")
        if proc.poll() is not None and {r.id for r in Ledger(lab).all()} == before:
            raise RuntimeError(f"`comma-tui run` exited with status {proc.returncode} before recording a run (above)")
        (run_id,) = {r.id for r in Ledger(lab).all()} - before
        log = Path(Ledger(lab).get(run_id).artifacts) / "log.txt"
        wait(lambda: stage_of_log(log) == "score", 900, "the plain run to reach its score stage")
        yield lambda: stage_of_log(log) == "score" and proc.poll() is None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


Timing = tuple[float, float]  # (wall seconds, the console's own CPU seconds)
MAIN_NOOP, FORM_NOOP = "no-op key, main screen", "no-op key, in the form"
#: Each key, and the no-op key whose cost (Pilot's) it is given net of: `n` ends on the form.
NET_OF = {"down": MAIN_NOOP, "n (form up)": FORM_NOOP, "keystroke in the form": FORM_NOOP}


async def time_keys(lab: Lab, size: tuple[int, int], repeat: int, busy: Callable[[], bool]) -> dict[str, list[Timing]]:
    """Wall and CPU seconds each key took, while `busy()` holds (at most `repeat` of each).

    CPU is this process's (the console and Pilot): what the key costs, whatever else runs;
    wall is what the person waits, the machine's load included.
    """
    app = CommaApp(lab, start_scheduler=False)
    times: dict[str, list[Timing]] = {key: [] for key in (*NET_OF, *NET_OF.values())}
    async with app.run_test(size=size) as pilot:
        while app.snapshot is None or app.live is None:
            await pilot.pause(0.05)

        async def press(key: str, until: Callable[[], bool] = lambda: True) -> Timing:
            began, cpu = time.perf_counter(), time.process_time()
            await pilot.press(key)
            while not until():
                await pilot.pause(0.005)
            await pilot.pause()
            return time.perf_counter() - began, time.process_time() - cpu

        for _ in range(repeat):
            if not busy():
                break
            times[MAIN_NOOP].append(await press("f12"))  # bound to nothing
            times["down"].append(await press("down"))
            times["n (form up)"].append(await press("n", lambda: isinstance(app.screen, RunForm)))
            await pilot.pause(0.2)
            times[FORM_NOOP].append(await press("f12"))
            times["keystroke in the form"].append(await press("5"))  # the form validates the spec on each key
            await press("escape", lambda: not isinstance(app.screen, RunForm))
            await pilot.pause(0.3)  # a person's pace: the poll timer and the run go on meanwhile
    return times


def report(name: str, times: dict[str, list[Timing]]) -> None:
    """Median and worst wall time per key, and the median CPU time, in milliseconds; net of Pilot, with the target."""
    print(f"{name}:")
    for key, values in times.items():
        if not values:
            print(f"  {key:<24} (no sample: the stage ended first)")
            continue
        walls, cpus = [w * 1000 for w, _ in values], [c * 1000 for _, c in values]
        median, worst, cpu = statistics.median(walls), max(walls), statistics.median(cpus)
        figures = f"wall median {median:7.1f} ms  worst {worst:7.1f} ms  cpu {cpu:6.1f} ms  n={len(values):<3}"
        base = times.get(NET_OF.get(key, ""), [])
        if base:
            net = median - statistics.median(w * 1000 for w, _ in base)
            net_cpu = cpu - statistics.median(c * 1000 for _, c in base)
            verdict = "within" if net <= TARGET_MS else "OVER"
            figures += f"  net {net:7.1f} ms (cpu {net_cpu:6.1f})  {verdict} {TARGET_MS:.0f} ms"
        print(f"  {key:<24} {figures}")


def while_scoring(assets_dir: Path | None, hog: int, repeat: int, size: tuple[int, int]) -> int:
    """Make (or reuse) demo assets and a lab, then print key latency quiet and beside a scoring run."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        if assets_dir is None:
            from engine.demo.assets import make_demo_assets

            began = time.perf_counter()
            assets = make_demo_assets(base / "assets")
            print(f"made demo assets in {time.perf_counter() - began:.0f} s")
        else:
            from engine.demo.assets import DemoAssets

            assets = DemoAssets(assets_dir)
        lab = Lab.create(base / "lab", assets.clip, assets.models)
        spec = base / "scoring.toml"
        spec.write_text(SPEC)
        print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, {hog} hog(s), terminal {size[0]}x{size[1]}")
        report("quiet (no run)", asyncio.run(time_keys(lab, size, repeat, lambda: True)))
        with hogs(hog), pool_worker_scoring(lab, spec) as busy:
            print(f"load {os.getloadavg()[0]:.1f} as the pool worker scores")
            report("beside a pool worker scoring", asyncio.run(time_keys(lab, size, repeat, busy)))
        with hogs(hog), plain_run_scoring(lab, spec) as busy:
            print(f"load {os.getloadavg()[0]:.1f} as the plain run scores")
            report("beside a plain `comma-tui run` scoring", asyncio.run(time_keys(lab, size, repeat, busy)))
    return 0
