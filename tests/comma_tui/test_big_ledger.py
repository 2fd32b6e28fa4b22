"""A ledger of many pages: the keys that jump, scroll and sort show the right rows, and the plot
shows a view it drew before at once.

The table draws only the rows on screen and repaints only the lines a key changed, so these
read what the table holds on screen (its cached lines), not a fresh render.
"""

from __future__ import annotations

import pytest
from rich.style import Style
from textual.geometry import Region

from comma_tui.screens.filter import RunFilter
from comma_tui.widgets.ledger_table import LedgerTable
from comma_tui.widgets.score_plot import ScorePlot
from ledger import Lab, Ledger
from tests.comma_tui.app_fixtures import fill_many, make_lab, stand_in_assets
from tests.comma_tui.pilot import open_console, wait_for, widget_lines

pytestmark = pytest.mark.anyio
RUNS = 60  # several pages of an 80x24 terminal


@pytest.fixture(scope="module")
def big_lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    """A lab of `RUNS` measured runs on one track, made once: these tests only read it."""
    root = tmp_path_factory.mktemp("big")
    assets = stand_in_assets(root / "assets")
    lab = make_lab(root / "lab", assets.clip, assets.models)
    fill_many(lab, RUNS)
    return lab


def cursor_lines(table: LedgerTable) -> list[str]:
    """The lines on screen drawn with the cursor's background (the table's cached lines, as shown)."""
    width, height = table.outer_size
    cursor = table.get_component_rich_style("ledger-table--cursor").bgcolor
    lines = table.render_lines(Region(0, 0, width, height))

    def has_cursor(style: Style | None) -> bool:
        return style is not None and style.bgcolor == cursor

    return ["".join(s.text for s in line) for line in lines if any(has_cursor(s.style) for s in line)]


async def test_end_and_home_show_the_last_and_first_run(big_lab: Lab) -> None:
    ids = [r.id for r in Ledger(big_lab).all()]
    async with open_console(big_lab) as (_app, pilot, table):
        assert len(table.runs) == RUNS and table.current is not None and table.current.id == ids[-1]  # newest first
        await pilot.press("end")
        assert table.current is not None and table.current.id == ids[0]
        assert ids[0] in "\n".join(widget_lines(table))
        await pilot.press("home")
        assert table.current is not None and table.current.id == ids[-1]
        assert ids[0] not in "\n".join(widget_lines(table)) and ids[-1] in "\n".join(widget_lines(table))


async def test_moving_the_cursor_leaves_one_row_highlighted(big_lab: Lab) -> None:
    async with open_console(big_lab) as (_app, pilot, table):
        for key in ("down", "down", "up", "down", "down", "pagedown", "down", "up"):
            await pilot.press(key)
            assert table.current is not None
            shown = cursor_lines(table)
            assert len(shown) == 1 and table.current.id in shown[0], (key, shown)


async def test_a_sort_keeps_the_selected_run_under_the_cursor_and_on_screen(big_lab: Lab) -> None:
    async with open_console(big_lab) as (_app, pilot, table):
        await pilot.press("pagedown", "pagedown", "down")
        selected = table.current
        assert selected is not None
        for _ in range(4):  # label, status, score, Δ floor: each puts the run on another row
            await pilot.press("o")
            assert table.current == selected
            shown = cursor_lines(table)
            assert len(shown) == 1 and selected.id in shown[0]


async def test_the_plot_shows_a_view_it_drew_before_at_once(big_lab: Lab) -> None:
    async with open_console(big_lab, size=(160, 48)) as (app, pilot, _table):
        plot = app.screen.query_one(ScorePlot)
        await wait_for(pilot, lambda: plot.settled)
        await pilot.press("f")
        await wait_for(pilot, lambda: plot.settled)
        await pilot.press("f")
        assert plot.settled and not plot.pareto  # the history again, kept: no plot to build


async def test_a_filter_that_keeps_the_scrollbar_gives_it_the_new_range(big_lab: Lab) -> None:
    # Fewer rows that still overflow the pane: the table repaints alone (no layout), so it must tell
    # the scrollbar its new range itself, exactly as a layout would.
    async with open_console(big_lab, size=(80, 24)) as (app, pilot, table):
        bar = table.vertical_scrollbar
        for filters in (RunFilter(verdict="rejected"), RunFilter(), RunFilter(status="done")):
            app.set_filters(filters)
            await pilot.press("end")
            shown = (bar.window_virtual_size, bar.window_size, bar.position, table.max_scroll_y)
            assert shown[0] == len(table.runs) + 1 and len(table.runs) > shown[1]  # still a scrollbar
            app.screen.refresh(layout=True)
            await pilot.pause()
            assert (bar.window_virtual_size, bar.window_size, bar.position, table.max_scroll_y) == shown
