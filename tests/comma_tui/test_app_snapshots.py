"""SVG snapshots of the main and detail screens at 80x24 and 160x48, on a fixed ledger.

The ledger is made with a pinned clock (`app_fixtures.frozen_time`), so ids, verdict reasons and
progress read the same on every run. Update after an intended change with
`pytest tests/comma_tui/test_app_snapshots.py --snapshot-update`, and look at the SVGs before keeping them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from comma_tui.app import CommaApp
from comma_tui.screens.run_detail import RunDetailScreen
from comma_tui.widgets.score_plot import ScorePlot
from tests.comma_tui.app_fixtures import fill_fixed, make_lab, stand_in_assets

SIZES = [(80, 24), (160, 48)]


@pytest.fixture(autouse=True)
def no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inputs never blink, so a snapshot cannot catch a cursor half-way."""
    original = Input.__init__

    def steady(self: Input, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        self.set_reactive(Input.cursor_blink, False)

    monkeypatch.setattr(Input, "__init__", steady)


@pytest.fixture
def app() -> Iterator[CommaApp]:
    """The console on the fixed ledger, with no scheduler.

    The lab lives at a fixed path (the detail screen shows the run's artifacts folder).
    """
    root = Path(tempfile.gettempdir()) / "comma-tui-snapshot-lab"
    shutil.rmtree(root, ignore_errors=True)
    assets = stand_in_assets(root / "assets")
    lab = make_lab(root / "lab", assets.clip, assets.models)
    fill_fixed(lab)
    yield CommaApp(lab, start_scheduler=False)
    shutil.rmtree(root, ignore_errors=True)


async def _until(pilot: Pilot, condition: Callable[[], bool]) -> None:
    for _ in range(200):
        await pilot.pause(0.05)
        if condition():
            await pilot.pause()
            return
    raise AssertionError("the console did not settle")


def loaded(app: CommaApp) -> Callable[[Pilot], Awaitable[None]]:
    """Before the shot: the ledger and the live state are in, and the plot is drawn."""

    def settled() -> bool:
        plots = app.screen.query(ScorePlot)
        return app.snapshot is not None and app.live is not None and all(p.settled for p in plots)

    async def wait(pilot: Pilot) -> None:
        await _until(pilot, settled)

    return wait


def detail_of(app: CommaApp, run_id: str) -> Callable[[Pilot], Awaitable[None]]:
    """Before the shot: the detail screen of `run_id`, loaded."""

    async def open_detail(pilot: Pilot) -> None:
        await loaded(app)(pilot)
        app.screen.select_run(run_id)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.detail is not None)

    return open_detail


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen(snap_compare: Callable[..., bool], app: CommaApp, size: tuple[int, int]) -> None:
    assert snap_compare(app, terminal_size=size, run_before=loaded(app))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_detail_of_a_rejected_run(snap_compare: Callable[..., bool], app: CommaApp, size: tuple[int, int]) -> None:
    assert snap_compare(app, terminal_size=size, run_before=detail_of(app, "r0003"))
