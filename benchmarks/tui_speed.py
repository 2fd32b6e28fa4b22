"""How the console feels: on a 10,000-run ledger, and while a run scores on the same machine.

    python benchmarks/tui_speed.py [--runs 10000] [--repeat 20] [--size 160x48]
    python benchmarks/tui_speed.py --while-scoring [--assets DIR] [--hog N] [--repeat 10]

Runs the real app headless under Pilot. Prints figures; asserts nothing. "key to repaint" is
the wall time from a key press until the app is idle again after the repaint it caused,
Pilot's own overhead included (printed on its own as "no-op key").

The first mode uses a generated lab (the generator of `benchmarks/ledger_speed.py`). The second
(`tui_scoring.py`) makes demo assets (or reuses `--assets`), lets a run score, and times keys
while it does: with no run, beside a pool worker (lower priority, a core left free), and
beside a plain `comma-tui run` at the console's own priority, as every run was before.
`--hog N` adds N busy processes, as a second heavy job on the machine would. Target: a key
answers within 150 ms on a 2-core machine while a run scores.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]  # run from a checkout, installed or not

from ledger_speed import generate  # noqa: E402
from textual.pilot import Pilot  # noqa: E402

from comma_tui.app import CommaApp  # noqa: E402
from comma_tui.screens.run_detail import RunDetailScreen  # noqa: E402
from comma_tui.widgets.ledger_table import LedgerTable  # noqa: E402
from ledger import Lab  # noqa: E402


async def until(pilot: Pilot, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Let the app run until `condition` holds."""
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the app did not get there")
        await pilot.pause(0.005)


def line(name: str, times: list[float]) -> None:
    """Median and worst of a list of seconds, in milliseconds."""
    median, worst = statistics.median(times) * 1000, max(times) * 1000
    print(f"{name:<40} median {median:8.1f} ms   worst {worst:8.1f} ms   n={len(times)}")


async def measure(lab: Lab, runs: int, repeat: int, size: tuple[int, int]) -> None:
    """Open the app on `lab`, time the first paint, then keys."""
    start = time.perf_counter()
    app = CommaApp(lab, start_scheduler=False, poll_seconds=3600)  # no timer reloads while timing keys
    async with app.run_test(size=size) as pilot:
        shown = time.perf_counter()
        table = app.screen.query_one("#ledger", LedgerTable)
        await until(pilot, lambda: len(table.runs) == runs and app.live is not None)
        await pilot.pause()
        painted = time.perf_counter()
        print(f"{'start-up to first frame (empty panes)':<40} {(shown - start) * 1000:8.1f} ms")
        print(f"{'start-up to first paint with every run':<40} {(painted - start) * 1000:8.1f} ms")

        async def key(*keys: str, wait: Callable[[], bool] | None = None) -> float:
            began = time.perf_counter()
            await pilot.press(*keys)
            if wait is not None:
                await until(pilot, wait)
            await pilot.pause()
            return time.perf_counter() - began

        async def timed(name: str, action: Callable[[], Awaitable[float]], n: int = repeat) -> None:
            line(name, [await action() for _ in range(n)])

        await timed("no-op key (Pilot overhead)", lambda: key("z"))
        await timed("down (move the cursor)", lambda: key("down"))
        await timed("pagedown (scroll a screen)", lambda: key("pagedown"))
        await timed("end / home (jump 10,000 rows)", lambda: key("end" if table.cursor == 0 else "home"))
        await timed("o (sort 10,000 runs by next column)", lambda: key("o"), n=max(3, repeat // 4))
        await timed("t (next track: refilter 10,000)", lambda: key("t"), n=max(3, repeat // 4))
        await timed("f (plot: history / Pareto)", lambda: key("f"), n=max(3, repeat // 4))

        async def open_detail() -> float:
            took = await key(
                "enter", wait=lambda: isinstance(app.screen, RunDetailScreen) and app.screen.detail is not None
            )
            await key("escape", wait=lambda: not isinstance(app.screen, RunDetailScreen))
            return took

        await timed("enter (open a run's detail, loaded)", open_detail, n=max(3, repeat // 4))

        snapshot = app.snapshot
        assert snapshot is not None
        screen = app.screen
        reloads = []
        for _ in range(max(3, repeat // 4)):
            began = time.perf_counter()
            screen._on_ledger(snapshot)  # type: ignore[attr-defined]
            await pilot.pause()
            reloads.append(time.perf_counter() - began)
        line("ledger changed: redraw every pane", reloads)
        began = time.perf_counter()
        app.client.snapshot()
        print(f"{'read a snapshot of 10,000 runs (worker)':<40} {(time.perf_counter() - began) * 1000:8.1f} ms")


def main() -> int:
    """Generate the lab and print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--size", default="160x48", help="terminal size, WIDTHxHEIGHT")
    parser.add_argument("--while-scoring", action="store_true", help="time keys while a run scores beside the console")
    parser.add_argument("--assets", type=Path, help="demo assets to reuse (made in a temporary folder otherwise)")
    parser.add_argument("--hog", type=int, default=0, help="busy processes to add beside the run (a loaded machine)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    if args.while_scoring:
        from tui_scoring import while_scoring

        return while_scoring(args.assets, args.hog, args.repeat, (width, height))
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "clip.mkv").touch()
        (base / "models").mkdir()
        lab = Lab.create(base / "lab", base / "clip.mkv", base / "models", original_bytes=3_623_878_656)
        began = time.perf_counter()
        generate(lab, args.runs)
        print(f"generated {args.runs} runs in {time.perf_counter() - began:.1f} s; terminal {width}x{height}")
        asyncio.run(measure(lab, args.runs, args.repeat, (width, height)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
