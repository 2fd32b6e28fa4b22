"""SVG snapshots of every screen and dialog at 80x24 and 160x48, on a fixed ledger.

Where layout can break: the main screen (and its paused queue), a run's detail, its compare
view, review mode, help, the filter dialog with a dropdown open, a confirmation, the new-run
form with an invalid field, the sweep form's preview. Each screen's Footer is in its shots.

The ledger is made with a pinned clock (`app_fixtures.frozen_time`), so ids, verdict reasons and
progress read the same on every run. Update after an intended change with
`pytest tests/comma_tui/test_app_snapshots.py --snapshot-update`, and look at the SVGs before keeping them.
"""

from __future__ import annotations

import fcntl
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select

from comma_tui.app import CommaApp
from comma_tui.screens.compare import CompareScreen
from comma_tui.screens.confirm import Confirm
from comma_tui.screens.filter import FilterScreen
from comma_tui.screens.help import HelpScreen
from comma_tui.screens.review import ReviewScreen
from comma_tui.screens.run_detail import RunDetailScreen
from comma_tui.screens.run_form import RunForm
from comma_tui.screens.sweep_form import SweepForm
from comma_tui.widgets.score_plot import ScorePlot
from ledger import Ledger
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
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[CommaApp]:
    """The console on the fixed ledger, with no scheduler.

    The lab is `~/lab` in a home folder at a fixed path: the console shows paths (the lab, a
    run's artifacts, the form's source), so they must read the same on every run. Test runs at
    once (several checkouts on one machine) take turns on it under a lock.
    """
    home = Path(tempfile.gettempdir()) / "comma-tui-snapshot-home"
    with open(f"{home}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(home, ignore_errors=True)
        monkeypatch.setenv("HOME", str(home))
        assets = stand_in_assets(home / "assets")
        lab = make_lab(home / "lab", assets.clip, assets.models)
        fill_fixed(lab)
        # A failed run's log says where it died (the detail of a failure shows it).
        failed = Ledger(lab).get("r0007")
        (Path(failed.artifacts) / "log.txt").write_text(
            "12:00:00 stage encode: start\n12:00:12 encode frame 40 of 60\n12:00:13 out of memory\n"
        )
        yield CommaApp(lab, start_scheduler=False)
        shutil.rmtree(home, ignore_errors=True)


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


def after(app: CommaApp, *keys: str, until: Callable[[], bool] = lambda: True) -> Callable[[Pilot], Awaitable[None]]:
    """Before the shot: the ledger loaded, these keys pressed, and `until` true."""

    async def press(pilot: Pilot) -> None:
        await loaded(app)(pilot)
        await pilot.press(*keys)
        await _until(pilot, until)
        app.clear_notifications()  # a toast lives for seconds of wall time: on a busy machine it may be gone
        await pilot.pause()

    return press


def detail_of(app: CommaApp, run_id: str) -> Callable[[Pilot], Awaitable[None]]:
    """Before the shot: the detail screen of `run_id`, loaded."""

    async def open_detail(pilot: Pilot) -> None:
        await loaded(app)(pilot)
        app.screen.select_run(run_id)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, RunDetailScreen))

    return open_detail


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen(snap_compare: Callable[..., bool], app: CommaApp, size: tuple[int, int]) -> None:
    assert snap_compare(app, terminal_size=size, run_before=loaded(app))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_detail_of_a_rejected_run(snap_compare: Callable[..., bool], app: CommaApp, size: tuple[int, int]) -> None:
    assert snap_compare(app, terminal_size=size, run_before=detail_of(app, "r0003"))


def compare_of(app: CommaApp, run_id: str, keys: tuple[str, ...] = ()) -> Callable[[Pilot], Awaitable[None]]:
    """Before the shot: the compare view of `run_id` opened from its detail screen, then `keys` pressed."""

    async def open_compare(pilot: Pilot) -> None:
        await detail_of(app, run_id)(pilot)
        await pilot.press("i")
        await _until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.compare is not None)
        await pilot.press(*keys)

    return open_compare


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_compare_of_a_rejected_run(snap_compare: Callable[..., bool], app: CommaApp, size: tuple[int, int]) -> None:
    assert snap_compare(app, terminal_size=size, run_before=compare_of(app, "r0003", ("w",)))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_detail_of_a_failed_run(snap_compare: Callable[..., bool], app: CommaApp, size: tuple[int, int]) -> None:
    assert snap_compare(app, terminal_size=size, run_before=detail_of(app, "r0007"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_paused_queue(snap_compare: Callable[..., bool], app: CommaApp, size: tuple[int, int]) -> None:
    assert snap_compare(app, terminal_size=size, run_before=after(app, "p", until=lambda: "Resume" in _footer(app)))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_review_screen(snap_compare: Callable[..., bool], app: CommaApp, size: tuple[int, int]) -> None:
    assert snap_compare(app, terminal_size=size, run_before=after(app, "v", until=lambda: _on(app, ReviewScreen)))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help_screen(snap_compare: Callable[..., bool], app: CommaApp, size: tuple[int, int]) -> None:
    assert snap_compare(
        app, terminal_size=size, run_before=after(app, "question_mark", until=lambda: _on(app, HelpScreen))
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_filter_dialog_with_its_verdict_dropdown_open(
    snap_compare: Callable[..., bool], app: CommaApp, size: tuple[int, int]
) -> None:
    async def open_dropdown(pilot: Pilot) -> None:
        await after(app, "slash", until=lambda: _on(app, FilterScreen))(pilot)
        await pilot.press(*"crf")
        app.screen.query_one("#verdict", Select).focus()
        await pilot.press("enter")
        await _until(pilot, lambda: app.screen.query_one("#verdict", Select).expanded)

    assert snap_compare(app, terminal_size=size, run_before=open_dropdown)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_confirming_the_cancel_of_a_running_run(
    snap_compare: Callable[..., bool], app: CommaApp, size: tuple[int, int]
) -> None:
    async def ask(pilot: Pilot) -> None:
        await loaded(app)(pilot)
        app.screen.select_run("r0009")  # type: ignore[attr-defined]
        await pilot.press("x")
        await _until(pilot, lambda: _on(app, Confirm))

    assert snap_compare(app, terminal_size=size, run_before=ask)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_run_form_with_an_invalid_field(
    snap_compare: Callable[..., bool], app: CommaApp, size: tuple[int, int]
) -> None:
    async def invalid(pilot: Pilot) -> None:
        await loaded(app)(pilot)
        app.screen.select_run("r0002")  # type: ignore[attr-defined]
        await pilot.press("n")
        await _until(pilot, lambda: _on(app, RunForm))
        await pilot.press("backspace", "backspace", "9", "9")
        await _until(pilot, lambda: "encode.crf" in str(app.screen.query_one("#form-error").content))

    assert snap_compare(app, terminal_size=size, run_before=invalid)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_sweep_form_preview(snap_compare: Callable[..., bool], app: CommaApp, size: tuple[int, int]) -> None:
    async def preview(pilot: Pilot) -> None:
        await loaded(app)(pilot)
        app.screen.select_run("r0002")  # type: ignore[attr-defined]
        await pilot.press("s")
        await _until(pilot, lambda: _on(app, SweepForm))
        await pilot.press(*"31,33..37:2")
        await _until(pilot, lambda: "already measured" in str(app.screen.query_one("#sweep-preview").content))

    assert snap_compare(app, terminal_size=size, run_before=preview)


def _on(app: CommaApp, screen: type) -> bool:
    return isinstance(app.screen, screen)


def _footer(app: CommaApp) -> str:
    from textual.widgets._footer import FooterKey

    return " ".join(key.description for key in app.screen.query(FooterKey) if key.display)
