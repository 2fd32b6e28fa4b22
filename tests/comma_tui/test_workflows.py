"""What a user expects next from the console: marks, the palette's go-to, the plot following the
cursor, review's neighbours, measured specs left out, big sweeps asked about, failures explained.

Each test drives the real app with Pilot on the fixed synthetic lab (no scheduler).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.command import CommandList
from textual.widgets import DataTable, Input, Label, Static

from comma_tui.screens import main as main_screen
from comma_tui.screens.confirm import Confirm
from comma_tui.screens.prompt import TextPrompt
from comma_tui.screens.review import ReviewScreen
from comma_tui.screens.run_detail import RunDetailScreen
from comma_tui.screens.run_form import RunForm
from comma_tui.screens.sweep_form import SweepForm
from comma_tui.widgets.score_plot import ScorePlot
from ledger import Lab, Ledger
from tests.comma_tui.pilot import open_console, select, wait_for, widget_lines

pytestmark = pytest.mark.anyio


async def test_marked_runs_are_cancelled_and_retried_together(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    queued = [r.id for r in Ledger(the_lab).queued()]
    async with open_console(the_lab) as (_app, pilot, table):
        for run_id in queued:
            await select(pilot, table, run_id)
            await pilot.press("space")
        assert set(table.marked) == set(queued)
        await pilot.press("x")  # queued runs go without asking
        await wait_for(pilot, lambda: all(Ledger(the_lab).get(r).status == "cancelled" for r in queued))
        await wait_for(pilot, lambda: not table.marked)  # done with: the marks go
        await select(pilot, table, roles["failed"])
        await pilot.press("space")
        await select(pilot, table, queued[0])
        await pilot.press("space", "r")
        await wait_for(pilot, lambda: len(Ledger(the_lab).all()) == 13)
        retried = Ledger(the_lab).all()[-2:]
        assert {r.parent for r in retried} == {roles["failed"], queued[0]}
        assert all(r.status == "queued" for r in retried)


async def test_hiding_cancelled_runs_and_a_filter_that_matches_nothing(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    Ledger(the_lab).record_failure(roles["queued"], "cancelled by the user", status="cancelled")
    Ledger(the_lab).archive([roles["failed"]])  # `comma-tui ledger archive`: out of every view
    async with open_console(the_lab) as (_app, pilot, table):
        assert roles["queued"] in {r.id for r in table.runs} and roles["failed"] not in {r.id for r in table.runs}
        await pilot.press("h")
        await wait_for(pilot, lambda: roles["queued"] not in {r.id for r in table.runs})
        assert "-cancelled" in str(table.border_title)
        await pilot.press("slash")
        await pilot.pause()
        await pilot.press(*"no such thing", "enter")
        await wait_for(pilot, lambda: not table.runs)
        assert table.empty_text.startswith('no run matches "no such thing" -cancelled')
        await pilot.press("h")
        await wait_for(pilot, lambda: "-cancelled" not in table.empty_text)


async def test_the_palette_goes_to_a_run(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    async with open_console(the_lab) as (app, pilot, table):
        await pilot.press("slash")
        await pilot.pause()
        await pilot.press(*"track:native", "enter")  # the run we go to is filtered out
        await wait_for(pilot, lambda: len(table.runs) == 1)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*f"go to run {roles['rejected']}")
        hits = app.screen.query_one(CommandList)
        await wait_for(
            pilot, lambda: hits.option_count > 0 and roles["rejected"] in str(hits.get_option_at_index(0).prompt)
        )
        await pilot.press("enter")
        await wait_for(pilot, lambda: table.current is not None and table.current.id == roles["rejected"])
        assert not app.filters  # cleared, and said so


async def test_a_run_opened_before_the_cursor_rests_is_followed_by_the_plot_once_back(
    lab: tuple[Lab, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The plot follows the cursor once it rests. Under the detail screen it waits: Textual repaints
    # a screen wherever the one below it changed, which cost `enter` two more frames.
    monkeypatch.setattr(main_screen, "PLOT_FOLLOW_SECONDS", 0.3)
    the_lab, roles = lab
    async with open_console(the_lab) as (app, pilot, table):
        plot = app.screen.query_one("#plot", ScorePlot)
        await select(pilot, table, roles["rejected"])
        await wait_for(pilot, lambda: plot.highlighted == roles["rejected"])
        await select(pilot, table, roles["floor"])
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.run_id == roles["floor"])
        await pilot.pause(0.5)  # the cursor has rested, under the detail
        assert plot.highlighted == roles["rejected"]
        await pilot.press("escape")
        await wait_for(pilot, lambda: plot.highlighted == roles["floor"])


def marks(plot: ScorePlot) -> list[tuple[int, int]]:
    """Where the plot shows the selected run's mark (◉), as (line, column) on screen (inside its border,
    whose subtitle names the run with a ◉ too)."""
    inside = widget_lines(plot)[1:-1]
    return [(y, line.index("◉")) for y, line in enumerate(inside) if "◉" in line]


async def test_the_plot_highlights_the_selected_run(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    ledger = Ledger(the_lab)
    async with open_console(the_lab) as (app, pilot, table):
        plot = app.screen.query_one("#plot", ScorePlot)
        await select(pilot, table, roles["rejected"])
        await wait_for(pilot, lambda: plot.highlighted == roles["rejected"] and plot.settled)
        assert f"◉ {roles['rejected']}" in str(plot.border_subtitle)
        [(rejected_line, rejected_column)] = marks(plot)
        await select(pilot, table, roles["floor"])
        await wait_for(pilot, lambda: plot.highlighted == roles["floor"])
        # The mark moved over the plot already built: nothing to build, and it sits where the run does.
        assert plot.settled
        [(floor_line, floor_column)] = marks(plot)
        floor, rejected = ledger.get(roles["floor"]), ledger.get(roles["rejected"])
        assert floor.score is not None and rejected.score is not None and floor.score < rejected.score
        assert floor_line > rejected_line  # a lower score, lower in the plot
        assert (floor_column > rejected_column) == (floor.number > rejected.number)  # finish order, left to right
        await pilot.press("f")  # the Pareto view marks it too
        await wait_for(pilot, lambda: f"◉ {roles['floor']}" in str(plot.border_subtitle))


async def test_the_next_tracks_plot_is_built_before_t_is_pressed(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, _roles = lab
    async with open_console(the_lab) as (app, pilot, _table):
        plot = app.screen.query_one("#plot", ScorePlot)
        await wait_for(pilot, lambda: plot.prepared)
        shown = {plot.data.track}
        for _ in range(3):  # every track in turn, then all tracks again
            await pilot.press("t")
            shown.add(plot.data.track)
            assert plot.settled, f"track {plot.data.track}: its plot was not built ahead"
        assert shown == {"main", "native"}


async def test_review_queues_the_floors_neighbours_and_leaves_out_what_was_measured(
    lab: tuple[Lab, dict[str, str]],
) -> None:
    the_lab, roles = lab
    before = len(Ledger(the_lab).all())
    async with open_console(the_lab) as (app, pilot, _):
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen))
        review = app.screen.query_one("#review", DataTable)
        review.move_cursor(row=review.get_row_index(roles["rejected"]))  # crf 37 against the floor's 33
        await wait_for(pilot, lambda: app.screen.selected_run().id == roles["rejected"])  # type: ignore[union-attr]
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt))
        assert app.screen.query_one("#prompt-input", Input).value == "encode.crf=-2,+2"
        await pilot.press("enter")
        # crf 35 at the floor's film grain is r0001, measured: only crf 31 is queued.
        await wait_for(pilot, lambda: len(Ledger(the_lab).all()) == before + 1)
        (new,) = Ledger(the_lab).records(Ledger(the_lab).all()[-1:])
        assert new.spec["encode"]["crf"] == 31 and new.parent == roles["floor"] and new.label == "encode.crf=31"


async def test_a_spec_measured_already_is_not_queued_again_by_the_form(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    before = len(Ledger(the_lab).all())
    async with open_console(the_lab) as (app, pilot, table):
        await select(pilot, table, roles["floor"])
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, RunForm))
        await pilot.press("ctrl+s")  # the floor's own spec, unchanged
        error = app.screen.query_one("#form-error", Label)
        await wait_for(pilot, lambda: f"{roles['floor']} measured this spec already" in str(error.content))
        assert isinstance(app.screen, RunForm) and len(Ledger(the_lab).all()) == before
        await pilot.press("backspace", "backspace", "4", "0")  # crf 40: new
        await wait_for(pilot, lambda: str(error.content) == "")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: len(Ledger(the_lab).all()) == before + 1)


async def test_a_sweep_of_more_than_twenty_runs_asks_first(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    before = len(Ledger(the_lab).all())
    async with open_console(the_lab) as (app, pilot, table):
        await select(pilot, table, roles["floor"])
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepForm))
        await pilot.press(*"20..45", "enter")  # 26 points, 23 of them new
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
        assert app.screen.question == "Queue 23 runs?"
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepForm))
        await pilot.press("enter", "y")
        await wait_for(pilot, lambda: len(Ledger(the_lab).all()) == before + 23)


async def test_a_failed_runs_detail_says_where_it_died_and_its_last_log_lines(
    lab: tuple[Lab, dict[str, str]],
) -> None:
    the_lab, roles = lab
    failed = Ledger(the_lab).get(roles["failed"])
    log = Path(failed.artifacts) / "log.txt"
    log.write_text(
        "12:00:00 stage encode: start\n12:00:09 stage encode: done in 9.0 s\n12:00:09 stage archive: start\n"
        "12:00:09 stage archive: done in 0.1 s\n12:00:09 stage inflate: start\n12:00:30 frame 40 of 60\n"
    )
    async with open_console(the_lab) as (app, pilot, table):
        await select(pilot, table, roles["failed"])
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        verdict = str(app.screen.query_one("#verdict", Static).content)
        assert verdict.startswith("! failed in stage inflate: worker killed by signal 9")
        assert "Last log lines:" in verdict and "frame 40 of 60" in verdict
