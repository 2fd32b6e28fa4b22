"""How the console feels: on a big ledger (10,000 runs; try --runs 100000), and while a run scores.

    python benchmarks/tui_speed.py [--runs 10000] [--repeat 20] [--size 160x48] [--keep DIR]
    python benchmarks/tui_speed.py --while-scoring [--assets DIR] [--hog N] [--repeat 10]

Runs the real app headless under Pilot. Prints figures with their targets; asserts nothing.
"key to repaint" is the wall time from a key press until the app is idle again after the
repaint it caused; "net" takes away Pilot's own overhead (the "no-op key").

The first mode uses a generated lab (`benchmarks/ledger_speed.py`'s, with its --keep: written
straight into segment files, whose summaries are built before timing starts, as any lab's are
after its first open). Targets on the 2-core dev box: first paint (the first screen of rows)
<= 1.5 s, every key <= 50 ms net of Pilot's overhead, resident memory <= 400 MB.

The second (`tui_scoring.py`) makes demo assets (or reuses `--assets`), lets a run score, and
times keys while it does: with no run, beside a pool worker (lower priority, a core left free),
and beside a plain `comma-tui run` at the console's own priority, as every run was before.
`--hog N` adds N busy processes, as a second heavy job on the machine would. Target: a key
answers within 150 ms on a 2-core machine while a run scores.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]  # run from a checkout, installed or not

from ledger_speed import lab_in  # noqa: E402
from textual.geometry import Region  # noqa: E402
from textual.pilot import Pilot  # noqa: E402
from textual.strip import Strip  # noqa: E402

from comma_tui import lab_actions  # noqa: E402
from comma_tui.app import CommaApp  # noqa: E402
from comma_tui.screens.run_detail import RunDetailScreen  # noqa: E402
from comma_tui.widgets.ledger_table import LedgerTable  # noqa: E402
from comma_tui.widgets.score_plot import ScorePlot  # noqa: E402
from ledger import Lab, Ledger  # noqa: E402

PAINT_TARGET = 1.5
KEY_TARGET = 0.05
RSS_TARGET_MB = 400


async def until(pilot: Pilot, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Let the app run until `condition` holds."""
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the app did not get there")
        await pilot.pause(0.005)


Times = list[tuple[float, float]]  # (wall, CPU) seconds of each try: on a busy box the CPU time is the steadier


def medians(times: Times) -> tuple[float, float]:
    """The median wall and CPU seconds."""
    return statistics.median(w for w, _ in times), statistics.median(c for _, c in times)


def line(name: str, times: Times, overhead: Times | None = None) -> None:
    """Median and worst wall time, median CPU time; with `overhead`, both net of it, and the target."""
    (wall, cpu), worst = medians(times), max(w for w, _ in times)
    net = ""
    if overhead is not None:
        base_wall, base_cpu = medians(overhead)
        value, target = (wall - base_wall) * 1000, KEY_TARGET * 1000
        net = f"   net {value:6.1f} ms (cpu {(cpu - base_cpu) * 1000:5.1f})  target <= {target:.0f} ms"
        net += "  ok" if value <= target else "  MISSED"
    head = f"{name:<40} median {wall * 1000:8.1f} ms   worst {worst * 1000:8.1f} ms   cpu {cpu * 1000:7.1f} ms"
    print(f"{head}   n={len(times):<3}{net}")


def resident_mb() -> tuple[float, float]:
    """This process's resident memory now and at its peak, in MB."""
    now = next(int(f.split()[1]) for f in Path("/proc/self/status").read_text().splitlines() if f.startswith("VmRSS"))
    return now / 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def measure(lab: Lab, runs: int, repeat: int, size: tuple[int, int]) -> None:
    """Open the app on `lab`, time the first paint, then keys."""
    # When the table first draws rows: Pilot's `pause` waits until the whole process is idle (up to
    # a second), and while the worker reads the rest of a big history it is not, so the time a
    # pause ends says when the read ended, not when the rows were painted. Both are printed.
    rows_drawn: list[float] = []
    draw = LedgerTable.render_lines

    def render_lines(table: LedgerTable, crop: Region) -> list[Strip]:
        if not rows_drawn and len(table.runs):
            rows_drawn.append(time.perf_counter())
        return draw(table, crop)

    LedgerTable.render_lines = render_lines  # type: ignore[method-assign,assignment]
    # What `enter` no longer pays is paid when the cursor comes to rest: the run under it is drawn
    # into the detail screen, unseen. A key pressed meanwhile waits for that.
    drawn_ahead: Times = []
    render_unseen = lab_actions.render_unseen

    def timed_render(screen: RunDetailScreen) -> None:
        began, cpu = time.perf_counter(), time.process_time()
        render_unseen(screen)
        drawn_ahead.append((time.perf_counter() - began, time.process_time() - cpu))

    lab_actions.render_unseen = timed_render  # type: ignore[assignment]
    start = time.perf_counter()
    app = CommaApp(lab, start_scheduler=False, poll_seconds=3600)  # no timer reloads while timing keys
    async with app.run_test(size=size) as pilot:
        shown = time.perf_counter()
        table = app.screen.query_one("#ledger", LedgerTable)
        await until(pilot, lambda: len(table.runs) > 0)
        await pilot.pause()
        idle, first = time.perf_counter(), rows_drawn[0]
        LedgerTable.render_lines = draw  # type: ignore[method-assign]
        await until(pilot, lambda: len(table.runs) == runs and app.live is not None)
        await pilot.pause()
        painted = time.perf_counter()
        plot = app.screen.query_one(ScorePlot)
        await until(pilot, lambda: plot.prepared)  # the other tracks' plots, built while idle
        prepared = time.perf_counter()
        print(f"{'start-up to first frame (empty panes)':<40} {(shown - start) * 1000:8.1f} ms")
        goal = f"target <= {PAINT_TARGET * 1000:.0f} ms  {'ok' if first - start <= PAINT_TARGET else 'MISSED'}"
        print(f"{'start-up to first paint (a screen of rows)':<40} {(first - start) * 1000:8.1f} ms   {goal}")
        print(f"{'start-up to rows shown, Pilot idle':<40} {(idle - start) * 1000:8.1f} ms")
        print(f"{'start-up to every run shown':<40} {(painted - start) * 1000:8.1f} ms")
        print(f"{'start-up to every track plotted (idle)':<40} {(prepared - start) * 1000:8.1f} ms")

        async def key(*keys: str, wait: Callable[[], bool] | None = None) -> tuple[float, float]:
            began, cpu = time.perf_counter(), time.process_time()
            await pilot.press(*keys)
            if wait is not None:
                await until(pilot, wait)
            await pilot.pause()
            return time.perf_counter() - began, time.process_time() - cpu

        async def timed(
            name: str,
            action: Callable[[], Awaitable[tuple[float, float]]],
            n: int = repeat,
            overhead: Times | None = None,
        ) -> None:
            line(name, [await action() for _ in range(n)], overhead)

        overhead = [await key("z") for _ in range(repeat)]
        line("no-op key (Pilot overhead)", overhead)
        await timed("down (move the cursor)", lambda: key("down"), overhead=overhead)
        await timed("pagedown (scroll a screen)", lambda: key("pagedown"), overhead=overhead)
        await timed(
            f"end / home (jump {runs:,} rows)", lambda: key("end" if table.cursor == 0 else "home"), overhead=overhead
        )
        sorts = max(10, repeat // 2)  # every column in turn, label and delta included
        await timed(f"o (sort {runs:,} runs by next column)", lambda: key("o"), n=sorts, overhead=overhead)
        await timed(f"t (next track: refilter {runs:,})", lambda: key("t"), n=max(5, repeat // 2), overhead=overhead)
        await timed("f (plot: history / Pareto)", lambda: key("f"), n=max(3, repeat // 4), overhead=overhead)
        # The plot is built in a worker, after the key's repaint: how long until it shows.
        drawn = lambda: key("t", wait=lambda: plot.settled)  # noqa: E731
        await timed("t, until the new track's plot is drawn", drawn, n=max(5, repeat // 4))

        async def open_detail(rest: float) -> tuple[float, float]:
            await key("down")  # another run each time, under a cursor that rests `rest` seconds
            await pilot.pause(rest)
            took = await key(
                "enter", wait=lambda: isinstance(app.screen, RunDetailScreen) and app.screen.detail is not None
            )
            await key("escape", wait=lambda: not isinstance(app.screen, RunDetailScreen))
            return took

        # The detail screen is built unseen while the console waits. Once the cursor rests (0.15 s)
        # its run is read ahead, and 0.1 s later drawn into that screen, unseen: `enter` then shows
        # it. An `enter` right after a move draws the run itself, as every `enter` did before.
        quick, rested = lambda: open_detail(0.05), lambda: open_detail(0.6)
        await timed("enter, the first time (screen built ahead)", rested, n=1, overhead=overhead)
        await timed("enter, the cursor rested (drawn ahead)", rested, n=max(5, repeat // 2), overhead=overhead)
        await timed("enter 0.05 s after a move (not yet drawn)", quick, n=max(5, repeat // 2), overhead=overhead)
        line("at rest: the cursor's run drawn unseen", drawn_ahead)

        snapshot = app.snapshot
        assert snapshot is not None
        screen = app.screen
        reloads = []
        for _ in range(max(3, repeat // 4)):
            began, cpu = time.perf_counter(), time.process_time()
            screen._on_ledger(snapshot)  # type: ignore[attr-defined]
            await pilot.pause()
            reloads.append((time.perf_counter() - began, time.process_time() - cpu))
        line("ledger changed: redraw every pane", reloads)
        began = time.perf_counter()
        app.client.snapshot()
        print(f"{f'read a snapshot of {runs:,} runs (worker)':<40} {(time.perf_counter() - began) * 1000:8.1f} ms")
        now, peak = resident_mb()
        goal = f"target <= {RSS_TARGET_MB} MB  {'ok' if peak <= RSS_TARGET_MB else 'MISSED'}"
        print(f"{'resident memory (now / peak)':<40} {now:6.0f} / {peak:.0f} MB   {goal}")


def main() -> int:
    """Generate the lab and print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--size", default="160x48", help="terminal size, WIDTHxHEIGHT")
    parser.add_argument("--while-scoring", action="store_true", help="time keys while a run scores beside the console")
    parser.add_argument("--assets", type=Path, help="demo assets to reuse (made in a temporary folder otherwise)")
    parser.add_argument("--hog", type=int, default=0, help="busy processes to add beside the run (a loaded machine)")
    parser.add_argument("--keep", type=Path, help="the lab's folder: made there and kept, or reused when there")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    if args.while_scoring:
        from tui_scoring import while_scoring

        return while_scoring(args.assets, args.hog, args.repeat, (width, height))
    with tempfile.TemporaryDirectory() as tmp:
        lab = lab_in(args.keep or Path(tmp), args.runs)  # its summaries built, as after any first open
        runs = len(Ledger(lab).all())
        print(f"{runs} runs; terminal {width}x{height}")
        asyncio.run(measure(lab, runs, args.repeat, (width, height)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
