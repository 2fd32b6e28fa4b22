"""Driving the console in tests: open it on a lab, wait for it, move the cursor, read the Footer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets._footer import FooterKey

from comma_tui.app import CommaApp
from comma_tui.widgets.key_footer import KeyFooter
from comma_tui.widgets.ledger_table import LedgerTable
from ledger import Lab

SIZE = (120, 36)


async def wait_for(pilot: Pilot, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Let the app work until `condition` holds (polled, with a deadline generous enough for a busy machine)."""
    steps = int(timeout / 0.05)
    for _ in range(steps):
        await pilot.pause(0.05)
        if condition():
            return
    raise AssertionError("the console did not get there in time")


async def loaded(pilot: Pilot) -> LedgerTable:
    """Wait for the first ledger load; the ledger table."""
    app = pilot.app
    assert isinstance(app, CommaApp)
    await wait_for(pilot, lambda: app.snapshot is not None and app.live is not None)
    await pilot.pause()
    return app.screen.query_one("#ledger", LedgerTable)


@asynccontextmanager
async def open_console(
    the_lab: Lab, size: tuple[int, int] = SIZE, **options: object
) -> AsyncIterator[tuple[CommaApp, Pilot, LedgerTable]]:
    """The console on `the_lab` (no scheduler unless asked) once its ledger has loaded: app, pilot, ledger table."""
    app = CommaApp(the_lab, **{"start_scheduler": False, **options})  # type: ignore[arg-type]
    async with app.run_test(size=size) as pilot:
        yield app, pilot, await loaded(pilot)


async def select(pilot: Pilot, table: LedgerTable, run_id: str) -> None:
    """Move the cursor onto a run with the arrow keys."""
    await pilot.press("home")
    for _ in range(len(table.runs)):
        if table.current is not None and table.current.id == run_id:
            await pilot.pause()
            return
        await pilot.press("down")
    raise AssertionError(f"{run_id} is not in the table")


def footer_keys(app: CommaApp) -> dict[str, FooterKey]:
    """The Footer's keys on the screen in front, by description, shown or not."""
    return {key.description: key for key in app.screen.query_one(KeyFooter).query(FooterKey)}


def shown_keys(app: CommaApp) -> list[str]:
    """The descriptions of the keys the Footer shows, in order."""
    return [name for name, key in footer_keys(app).items() if key.display]


def greyed(app: CommaApp) -> set[str]:
    """The descriptions of the Footer's greyed-out keys."""
    return {name for name, key in footer_keys(app).items() if key.has_class("-disabled")}


def widget_lines(widget: Widget) -> list[str]:
    """The lines a widget shows on screen now, as plain text (borders included)."""
    width, height = widget.outer_size
    return ["".join(segment.text for segment in strip) for strip in widget.render_lines(Region(0, 0, width, height))]
