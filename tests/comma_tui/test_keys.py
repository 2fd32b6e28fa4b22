"""The console's keys: what the Footer offers, what a key does when it cannot apply, and modals that hold keys.

Each test drives the real app with Pilot on the fixed synthetic lab (no scheduler).
"""

from __future__ import annotations

import pytest
from textual.widgets import Input, Select

from comma_tui.screens.confirm import Confirm
from comma_tui.screens.filter import FilterScreen
from comma_tui.screens.prompt import TextPrompt
from comma_tui.screens.run_detail import RunDetailScreen
from comma_tui.screens.run_form import RunForm
from comma_tui.widgets.status_line import lab_text
from engine.runs.spec import lab_source, parse_spec
from engine.sched.state import hold, holder
from ledger import Lab, Ledger
from tests.comma_tui.pilot import footer_keys, greyed, open_console, select, shown_keys, wait_for

pytestmark = pytest.mark.anyio


async def test_keys_that_cannot_apply_are_greyed_and_say_why(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    async with open_console(the_lab) as (app, pilot, table):
        await select(pilot, table, roles["floor"])  # done
        assert {"Cancel", "Retry"} <= greyed(app) and not {"Export", "Promote", "Clone"} & greyed(app)
        await pilot.press("x")
        await wait_for(pilot, lambda: any(n.severity == "warning" for n in app._notifications))
        said = next(n.message for n in app._notifications if n.severity == "warning")
        assert said == f"{roles['floor']} is done: only queued, running or interrupted runs can be cancelled"
        assert Ledger(the_lab).get(roles["floor"]).status == "done"
        await select(pilot, table, roles["failed"])
        assert {"Export", "Cancel", "Promote"} <= greyed(app) and "Retry" not in greyed(app)
        await select(pilot, table, roles["queued"])
        assert {"Export", "Retry", "Promote"} <= greyed(app) and "Cancel" not in greyed(app)
        await select(pilot, table, roles["running"])
        assert {"Export", "Retry", "Promote"} <= greyed(app) and "Cancel" not in greyed(app)
        await pilot.press("e", "P")  # greyed: nothing opens
        await pilot.pause()
        assert not isinstance(app.screen, TextPrompt)


async def test_the_footer_shows_whole_keys_that_fit(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    async with open_console(the_lab, size=(80, 24)) as (app, pilot, table):
        for width in (80, 120, 160):
            await pilot.resize_terminal(width, 36)
            await pilot.pause()
            shown = shown_keys(app)
            # The most important keys are always there, and none runs under the palette key.
            assert {"New", "Cancel", "Quit", "Help", "palette"} <= set(shown), (width, shown)
            keys = footer_keys(app)
            palette = keys.pop("palette").region
            assert all(k.region.right <= palette.x for k in keys.values() if k.display), (width, shown)
        assert {"Filter", "Review", "Track", "Pareto"} <= set(shown_keys(app))  # 160 columns hold them all
        await select(pilot, table, roles["floor"])
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert {"Back", "Quit", "palette"} <= set(shown_keys(app))


async def test_ctrl_r_clears_the_filter_and_typing_never_reaches_the_screen_below(
    lab: tuple[Lab, dict[str, str]],
) -> None:
    the_lab, _ = lab
    before = len(Ledger(the_lab).all())
    async with open_console(the_lab) as (app, pilot, table):
        await pilot.press("slash")
        await wait_for(pilot, lambda: isinstance(app.screen, FilterScreen))
        await pilot.press(*"verdict:rejected", "ctrl+r")
        assert isinstance(app.screen, FilterScreen)  # cleared, still open
        assert app.screen.query_one("#filter-text", Input).value == ""
        await pilot.press(*"crf=39")  # `c` cloned, `r` retried, `=` bumped before: now it is filter text
        await pilot.pause()
        assert app.screen.query_one("#filter-text", Input).value == "crf=39"
        verdict = app.screen.query_one("#verdict", Select)
        # One line, no border: the detail screen's #verdict box once took it and showed an empty box.
        assert verdict.outer_size.height == 1 and not verdict.styles.border_top[0]
        verdict.focus()
        await pilot.press(*"crfq?")  # on a dropdown, letters are not the screen's keys (nor q, nor ?)
        await pilot.pause(0.3)
        assert isinstance(app.screen, FilterScreen) and app.is_running
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, FilterScreen))
        assert len(Ledger(the_lab).all()) == before and len(table.runs) == before


async def test_cancelling_a_running_run_asks_and_a_queued_one_does_not(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    async with open_console(the_lab) as (app, pilot, table):
        await select(pilot, table, roles["running"])
        await pilot.press("x", "x")  # a double tap asks once, and the second x does not confirm it
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
        assert "inflate 18/60" in str(app.screen.detail)
        await pilot.press("enter")  # the focused button is the safe one
        await wait_for(pilot, lambda: not isinstance(app.screen, Confirm))
        assert Ledger(the_lab).get(roles["running"]).status == "running"
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.press("y")
        await wait_for(pilot, lambda: Ledger(the_lab).get(roles["running"]).status == "cancelled")
        await select(pilot, table, roles["queued"])
        await pilot.press("x")
        await wait_for(pilot, lambda: Ledger(the_lab).get(roles["queued"]).status == "cancelled")
        assert not isinstance(app.screen, Confirm)


async def test_promoting_by_hand_says_when_the_floor_moves_up(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    async with open_console(the_lab) as (app, pilot, table):
        await select(pilot, table, roles["rejected"])  # r0003 scored worse than the floor
        await pilot.press("P")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt))
        assert f"The floor of main moves UP, to a worse score: {roles['floor']}" in app.screen.warning
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, TextPrompt))
        assert Ledger(the_lab).get(roles["rejected"]).verdict == "rejected"


async def test_sort_label_follows_the_sort_at_once(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, _ = lab
    async with open_console(the_lab) as (_app, pilot, table):
        assert table.border_subtitle == "id ▼ (o: sort)"
        await pilot.press("o")
        assert table.sort_key != "id" and table.border_subtitle == f"{table.sort_key} ▲ (o: sort)"
        await pilot.press("O")
        assert table.border_subtitle == f"{table.sort_key} ▼ (o: sort)"


async def test_pause_reads_resume_while_the_queue_is_paused(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, _ = lab
    async with open_console(the_lab) as (app, pilot, _):
        assert "Pause" in shown_keys(app) and "Resume" not in shown_keys(app)
        await pilot.press("p")
        await wait_for(pilot, lambda: "Resume" in shown_keys(app))
        assert Ledger(the_lab).paused() and "Pause" not in shown_keys(app)
        await pilot.press("p")
        await wait_for(pilot, lambda: "Pause" in shown_keys(app))
        assert not Ledger(the_lab).paused()


async def test_a_scheduler_stopped_by_hand_stays_stopped(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, _ = lab
    hold(the_lab, True)  # what `comma-tui sched stop` leaves behind
    async with open_console(the_lab, start_scheduler=True) as (app, pilot, _):
        await wait_for(pilot, lambda: "stopped by hand" in str(app.screen.query_one("#status").content))
        await app.workers.wait_for_complete([w for w in app.workers if w.group == "scheduler"])
        assert holder(the_lab) is None
        status = str(app.screen.query_one("#status").content)
        assert "sched stopped (stopped by hand; S starts it)" in status
        assert status.startswith(lab_text(str(the_lab.root)))  # which lab is open
        assert "scheduler stopped" in str(app.screen.query_one("#queue").border_title)
        assert "Start sched" in shown_keys(app)
    assert app.live is not None and app.live.scheduler.state == "stopped"


async def test_the_new_run_form_offers_choices_as_dropdowns(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    async with open_console(the_lab) as (app, pilot, table):
        await select(pilot, table, roles["floor"])
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, RunForm))
        form = app.screen
        for axis in ("encode-codec", "preprocess-scaler", "encode-pix_fmt", "inflate-postfilter"):
            assert isinstance(form.query_one(f"#ax-{axis}"), Select), axis
        error = form.query_one("#form-error")
        form.query_one("#ax-encode-codec", Select).value = "libx264"  # svt-av1's preset 10 and film grain 22 go
        await wait_for(pilot, lambda: "encode.preset (for libx264) = '10' is not allowed" in str(error.content))
        form.query_one("#ax-encode-preset", Input).value = "medium"
        await wait_for(pilot, lambda: "film_grain is an svt-av1 feature" in str(error.content))
        form.query_one("#ax-encode-film_grain", Input).value = "0"
        await wait_for(pilot, lambda: form.spec is not None and form.spec.encode.codec == "libx264")


async def test_n_on_a_neural_run_opens_a_form_with_its_section(lab: tuple[Lab, dict[str, str]]) -> None:
    # The form's codec list once lacked the neural codec, and the one kept form had the first
    # run's fields: `n` on a neural run ended the console.
    the_lab, roles = lab
    spec = parse_spec({"encode": {"codec": "neural"}, "neural": {"steps": 7}}, lab_source(the_lab))
    neural = Ledger(the_lab).add_run(spec.to_dict(), label="neural").id
    async with open_console(the_lab) as (app, pilot, table):
        await select(pilot, table, roles["floor"])
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, RunForm))
        assert not app.screen.query("#ax-neural-steps")
        await pilot.press("escape")
        await select(pilot, table, neural)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, RunForm) and bool(app.screen.query("#ax-neural-steps")))
        form = app.screen
        assert isinstance(form, RunForm)
        assert form.query_one("#ax-encode-codec", Select).value == "neural"
        assert form.query_one("#ax-neural-steps", Input).value == "7"
        form.query_one("#ax-encode-codec", Select).value = "libsvtav1"  # the [neural] keys stay behind
        await wait_for(pilot, lambda: form.spec is not None and form.spec.encode.codec == "libsvtav1")
        assert form.spec is not None and "neural" not in form.spec.plugins
        await pilot.press("escape")
        await select(pilot, table, roles["floor"])
        await pilot.press("n")  # the first form again, for the first shape of spec
        await wait_for(pilot, lambda: isinstance(app.screen, RunForm) and not app.screen.query("#ax-neural-steps"))
