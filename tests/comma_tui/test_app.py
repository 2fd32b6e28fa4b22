"""The console driven by real keys (Pilot) against a real lab filled with synthetic runs.

No scheduler is started (`start_scheduler=False`): queue actions are checked in the ledger. The
lab's clip and scorer are stand-in files (`stand_in_assets`): the console and the ledger never
read them, and the real demo assets cost a minute to make on a busy two-core machine.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console
from textual import events
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, Static, TextArea

from comma_tui import demo
from comma_tui.app import CommaApp
from comma_tui.cli import main
from comma_tui.lab_client import LabClient
from comma_tui.screens.autopilot_form import AutopilotForm
from comma_tui.screens.ffmpeg_line import FfmpegLinePrompt
from comma_tui.screens.help import HelpScreen, keys_table
from comma_tui.screens.kept import build_unseen
from comma_tui.screens.main import MainScreen
from comma_tui.screens.review import ReviewScreen
from comma_tui.screens.run_detail import RunDetailScreen
from comma_tui.screens.run_form import RunForm
from comma_tui.screens.sweep_form import SweepForm
from comma_tui.widgets.curve_plot import CurvePlot
from comma_tui.widgets.format import progress_text
from comma_tui.widgets.queue_pane import QueueBody, stage_bars
from engine.demo.layout import DemoAssets
from engine.runs.spec import stage_names
from engine.sched import autopilot
from engine.sched.state import SchedulerState, acquire_lock, write_state
from ledger import Lab, Ledger, LedgerError, Progress, segments
from tests.comma_tui.app_fixtures import spec, stand_in_assets
from tests.comma_tui.pilot import open_console, select, wait_for, widget_lines

pytestmark = pytest.mark.anyio


async def test_new_run_from_form_is_queued(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    async with open_console(the_lab) as (app, pilot, table):
        await select(pilot, table, roles["floor"])
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, RunForm))
        assert app.screen.query_one("#ax-encode-crf", Input).has_focus
        await pilot.press("backspace", "backspace", "9", "9")
        await wait_for(pilot, lambda: "encode.crf" in str(app.screen.query_one("#form-error", Label).content))
        assert app.screen.query_one("#ax-encode-crf", Input).has_class("-invalid")
        await pilot.press("ctrl+s")  # refused: the form stays
        assert isinstance(app.screen, RunForm)
        await pilot.press("backspace", "backspace", "3", "0")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: len(Ledger(the_lab).all()) == 12)
        (new,) = Ledger(the_lab).records(Ledger(the_lab).all()[-1:])
        assert new.status == "queued" and new.parent == roles["floor"]
        assert new.spec["encode"]["crf"] == 30 and "crf 33 -> 30" in new.changed
        await wait_for(pilot, lambda: table.current is not None and table.current.id == new.id)


async def test_the_kept_form_takes_a_theme_changed_while_it_was_away(lab: tuple[Lab, dict[str, str]]) -> None:
    # The kept form skips Textual's restyle on resume (most of what `n` cost), but not after a theme change.
    the_lab, roles = lab
    async with open_console(the_lab) as (app, pilot, table):
        await select(pilot, table, roles["floor"])
        backgrounds = []
        for theme in ("textual-dark", "textual-light"):
            app.theme = theme
            await pilot.press("n")
            await wait_for(pilot, lambda: isinstance(app.screen, RunForm))
            dialog = app.screen.query_one(".dialog")
            assert dialog.styles.background.hex == app.get_css_variables()["surface"].upper()
            backgrounds.append(dialog.styles.background)
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, RunForm))
        assert backgrounds[0] != backgrounds[1]


async def test_new_run_form_fills_from_a_pasted_ffmpeg_line(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    line = (
        'ffmpeg -nostdin -y -r 20 -i "$IN" \\\n'
        '  -vf "scale=trunc(iw*0.45/2)*2:trunc(ih*0.45/2)*2:flags=lanczos,hqdn3d=1.5" \\\n'
        '  -pix_fmt yuv420p -c:v libsvtav1 -preset 0 -crf 33 -svtav1-params "film-grain=22:keyint=180:scd=0" "$OUT"'
    )
    async with open_console(the_lab) as (app, pilot, table):
        await select(pilot, table, roles["floor"])
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, RunForm))
        form = app.screen
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: isinstance(app.screen, FfmpegLinePrompt))
        app.screen.query_one(TextArea).post_message(events.Paste(line))
        notes = app.screen.query_one("#ffmpeg-notes", Label)
        await wait_for(pilot, lambda: "hqdn3d" in str(notes.content))
        assert "left out: -vf hqdn3d=1.5" in str(notes.content) and "atadenoise" in str(notes.content)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is form)
        values = {key: form.query_one(f"#ax-{key}", Input).value for key in ("preprocess-width", "encode-crf")}
        assert values == {"preprocess-width": "522", "encode-crf": "33"}
        assert form.query_one("#ax-encode-params", Input).value == "scd=0"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: len(Ledger(the_lab).all()) == 12)
        (new,) = Ledger(the_lab).records(Ledger(the_lab).all()[-1:])
        spec = new.spec
        assert (spec["encode"]["film_grain"], spec["encode"]["keyint"], spec["preprocess"]["height"]) == (22, 180, 392)


async def test_cancel_queued_run(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    async with open_console(the_lab) as (_app, pilot, table):
        await select(pilot, table, roles["queued"])
        await pilot.press("x")
        await wait_for(pilot, lambda: Ledger(the_lab).get(roles["queued"]).status == "cancelled")
        await wait_for(pilot, lambda: table.current is not None and table.current.status == "cancelled")


async def test_clone_retry_and_priority_keys(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    async with open_console(the_lab) as (_app, pilot, table):
        await select(pilot, table, roles["queued"])
        await pilot.press("plus", "plus", "minus")
        await wait_for(pilot, lambda: Ledger(the_lab).get(roles["queued"]).priority == 1)
        await select(pilot, table, roles["failed"])
        await pilot.press("r")
        await wait_for(pilot, lambda: len(Ledger(the_lab).all()) == 12)
        retried = Ledger(the_lab).all()[-1]
        assert retried.parent == roles["failed"] and retried.status == "queued"
        await wait_for(pilot, lambda: table.current is not None and table.current.id == retried.id)
        await select(pilot, table, roles["floor"])
        await pilot.press("c")
        await wait_for(pilot, lambda: len(Ledger(the_lab).all()) == 13)
        (clone,) = Ledger(the_lab).records(Ledger(the_lab).all()[-1:])
        assert clone.parent == roles["floor"] and clone.changed == [] and clone.label == f"clone of {roles['floor']}"


async def test_export_writes_a_submission_folder(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    (the_lab.run_dir(roles["floor"]) / "archive.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    async with open_console(the_lab) as (_app, pilot, table):
        await select(pilot, table, roles["floor"])
        await pilot.press("e")
        await pilot.pause()
        await pilot.press("enter")  # the proposed folder: <lab>/exports/<run>
        dest = the_lab.root / "exports" / roles["floor"]
        await wait_for(pilot, lambda: (dest / "inflate.sh").is_file())
        assert (dest / "archive.zip").is_file() and (dest / "inflate.py").is_file()


async def test_command_palette_runs_the_screens_keys(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, _ = lab
    async with open_console(the_lab) as (_app, pilot, _):
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"pause (p)")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: Ledger(the_lab).paused())


async def test_filter_to_rejected(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, _ = lab
    async with open_console(the_lab) as (_app, pilot, table):
        await pilot.press("slash")
        await pilot.pause()
        await pilot.press(*"verdict:rejected", "enter")
        await wait_for(pilot, lambda: len(table.runs) == 4)
        assert {r.verdict for r in table.runs} == {"rejected"}
        assert "verdict:rejected" in str(table.border_title)
        await pilot.press("slash")
        await pilot.pause()
        await pilot.press("ctrl+r", "enter")  # clear every field, then apply
        await wait_for(pilot, lambda: len(table.runs) == 11)


async def test_detail_shows_delta_table_whole_every_time(lab: tuple[Lab, dict[str, str]]) -> None:
    # The table once lost its row names and cut Delta to five characters on some reopenings.
    the_lab, roles = lab
    async with open_console(the_lab, size=(80, 24)) as (app, pilot, table):
        for run_id in (roles["rejected"], roles["floor"], roles["rejected"], roles["first"], roles["rejected"]):
            await select(pilot, table, run_id)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
            await pilot.pause()
            lines = [line.strip(" │") for line in widget_lines(app.screen.query_one("#delta", Static))[1:-1]]
            rows = {cells[0]: cells[1:] for line in lines[1:] if (cells := re.split(r"\s{2,}", line.strip()))[0]}
            assert list(rows) == ["score", "bytes", "PoseNet", "SegNet", "SegNet term", "PoseNet term", "rate term"]
            if run_id == roles["rejected"]:
                assert lines[0].split() == ["Floor", roles["floor"], "Current", roles["rejected"], "Delta"]
                assert rows["bytes"] == ["951,668", "674,185", "-277,483"]
                assert rows["PoseNet"][-1] == "+0.01200" and rows["SegNet term"][-1] == "+0.160 ◀ most"
            verdict = str(app.screen.query_one("#verdict", Static).content)
            assert run_id != roles["rejected"] or f"Lost to {roles['floor']}" in verdict
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, RunDetailScreen))


async def test_detail_panes_take_each_runs_size(lab: tuple[Lab, dict[str, str]]) -> None:
    # The panes are laid out once per run shown: a failed run's verdict (with its last log lines)
    # is taller than a promoted run's, and the stage timings sit right under it, never over it or
    # after a gap.
    the_lab, roles = lab
    async with open_console(the_lab) as (app, pilot, table):
        heights = []
        for run_id in (roles["failed"], roles["floor"], roles["failed"]):
            await select(pilot, table, run_id)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
            await pilot.pause()
            verdict = app.screen.query_one("#verdict", Static)
            timings = app.screen.query_one("#timings", Static)
            inside = [line.strip(" │") for line in widget_lines(verdict)[1:-1]]
            assert inside[0] and inside[-1], inside  # neither cut short nor padded
            assert timings.region.y == verdict.region.bottom
            heights.append(verdict.region.height)
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, RunDetailScreen))
        assert heights[0] == heights[2] > heights[1]


async def test_a_run_read_ahead_opens_as_it_is_now(lab: tuple[Lab, dict[str, str]]) -> None:
    # The detail of the run under the cursor is read ahead, so that enter opens it at once; once
    # the run changes, what was read ahead is not what enter shows.
    the_lab, roles = lab
    async with open_console(the_lab) as (app, pilot, table):
        await select(pilot, table, roles["queued"])
        await pilot.pause(0.5)  # the cursor rests: read ahead
        Ledger(the_lab).record_failure(roles["queued"], "cancelled by hand", "", status="cancelled")
        await wait_for(pilot, lambda: table.current is not None and table.current.status == "cancelled")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        assert "cancelled" in str(app.screen.query_one("#detail-title", Static).content)
        await pilot.press("escape")
        await pilot.pause(0.5)  # read ahead again, as it is now
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        assert "cancelled" in str(app.screen.query_one("#detail-title", Static).content)


async def detail_built_ahead(app: CommaApp, pilot: Pilot) -> RunDetailScreen:
    """The detail screen the console installs before any `enter`, once it is there."""
    await wait_for(pilot, lambda: app.is_screen_installed("detail"))
    built = app.get_screen("detail")
    assert isinstance(built, RunDetailScreen)
    return built


async def test_the_detail_screen_is_built_and_drawn_unseen_before_enter(lab: tuple[Lab, dict[str, str]]) -> None:
    # Composing the detail screen made the first enter of a session take 0.3 s, and drawing a run
    # into it 50 ms more each time: it is built while the console waits, the run under the resting
    # cursor is drawn into it unseen, and enter only shows it.
    the_lab, roles = lab
    async with open_console(the_lab) as (app, pilot, table):
        built = await detail_built_ahead(app, pilot)
        await wait_for(pilot, lambda: built.is_mounted and built.query_one("#spec", Static).size.height > 0)
        assert isinstance(app.screen, MainScreen)  # built, not shown
        await select(pilot, table, roles["rejected"])  # not the run it was built with
        await wait_for(pilot, lambda: built.run_id == roles["rejected"])  # the cursor rests: drawn unseen
        assert isinstance(app.screen, MainScreen)
        verdict = built.query_one("#verdict", Static)
        await wait_for(pilot, lambda: f"Lost to {roles['floor']}" in "".join(widget_lines(verdict)))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is built)
        await pilot.pause()
        assert str(built.query_one("#detail-title", Static).content).startswith(roles["rejected"])
        assert f"Lost to {roles['floor']}" in "".join(widget_lines(verdict))
        await pilot.press("escape", "down")  # another run: enter shows it, drawn ahead or not
        await wait_for(pilot, lambda: table.current is not None and table.current.id != roles["rejected"])
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is built and table.current is not None)
        assert table.current is not None and built.run_id == table.current.id


async def test_a_closing_console_builds_no_screen_unseen(lab: tuple[Lab, dict[str, str]]) -> None:
    # A screen started as the console closes is closed before its children mount, and its first
    # query failed (seen when a build began as a test's console quit): a closing app builds nothing.
    the_lab, _ = lab
    async with open_console(the_lab) as (app, pilot, _table):
        built = await detail_built_ahead(app, pilot)
    late = RunDetailScreen(built.detail)
    await build_unseen(app, late, "late")
    assert not app.is_screen_installed("late") and not late.is_mounted


async def test_detail_of_a_running_run_follows_its_log(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    log = Path(Ledger(the_lab).get(roles["running"]).artifacts) / "log.txt"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("encode: starting\n")
    async with open_console(the_lab) as (app, pilot, table):
        await select(pilot, table, roles["running"])
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        shown = app.screen.query_one("#log", Static)
        await wait_for(pilot, lambda: "encode: starting" in str(shown.content))
        assert shown.border_title == "Log tail · live"
        with log.open("a") as f:
            f.write("encode: frame 30 of 60\n")
        await wait_for(pilot, lambda: "frame 30 of 60" in str(shown.content))


async def test_detail_of_a_training_run_plots_its_curve_live(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    folder = Path(Ledger(the_lab).get(roles["running"]).artifacts)
    folder.mkdir(parents=True, exist_ok=True)
    curve = folder / "curve.jsonl"
    curve.write_text('{"step":1,"loss":3.5,"segnet":2.0,"posenet":1.0}\n{"step":2,"loss":3.0,"segnet":1.8}\n')
    async with open_console(the_lab) as (app, pilot, table):
        await select(pilot, table, roles["running"])
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.run_id == roles["running"])
        plot = app.screen.query_one("#curve-plot", CurvePlot)
        await wait_for(pilot, lambda: plot.display and plot.border_title == "Training · step 2 · live")
        with curve.open("a") as f:
            f.write('{"step":3,"loss":2.5,"segnet":1.5,"estimate":4.25}\n')
        await wait_for(pilot, lambda: plot.border_title == "Training · step 3 · live")
        assert plot.border_subtitle == "loss 2.5 segnet 1.5 estimate 4.25"
        await pilot.press("escape")
        await select(pilot, table, roles["floor"])
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        # From its first frame the kept screen shows the run asked for, not the one shown before it.
        assert str(app.screen.query_one("#detail-title", Static).content).startswith(roles["floor"])
        assert not plot.display  # a run that did not train: no plot


async def test_a_queue_on_a_ray_cluster_shows_the_cluster_and_each_jobs_state(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    job = {"job": "comma-tui-abc-r0009-a1", "state": "PENDING", "note": "cannot be placed: each run asks for 1 GPU"}
    state = SchedulerState(os.getpid(), 8, (), time.time(), "running", backend="ray", address="http://127.0.0.1:8265")
    state = replace(state, resources={"CPU": [3.0, 64.0], "GPU": [3.0, 8.0]}, jobs={roles["running"]: job})
    fd = acquire_lock(the_lab)  # this test plays the lab's scheduler, on a Ray cluster
    try:
        write_state(the_lab, state)
        async with open_console(the_lab) as (app, pilot, _):
            status = app.screen.query_one("#status", Static)
            await wait_for(pilot, lambda: "ray 127.0.0.1:8265 · 3 of 8 GPUs busy" in str(status.content))
            body = app.screen.query_one(QueueBody)
            await wait_for(pilot, lambda: f"▶ {roles['running']} [ray PENDING]" in body.render().plain)
            assert "cannot be placed: each run asks for 1 GPU" in body.render().plain
    finally:
        os.close(fd)


async def test_pause_and_resume_queue(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, _ = lab
    async with open_console(the_lab) as (app, pilot, _):
        await pilot.press("p")
        await wait_for(pilot, lambda: Ledger(the_lab).paused())
        queue = app.screen.query_one("#queue")
        await wait_for(pilot, lambda: "paused" in str(queue.border_title))
        await pilot.press("p")
        await wait_for(pilot, lambda: not Ledger(the_lab).paused())


async def test_sweep_form_queues_the_grid(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    async with open_console(the_lab) as (app, pilot, table):
        await select(pilot, table, roles["floor"])
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepForm))
        await pilot.press(*"36,38", "enter")
        await wait_for(pilot, lambda: len(Ledger(the_lab).all()) == 13)
        new = Ledger(the_lab).records(Ledger(the_lab).all()[-2:])
        assert [r.spec["encode"]["crf"] for r in new] == [36, 38]
        assert {r.parent for r in new} == {roles["floor"]} and all(r.status == "queued" for r in new)
        # Labels name the point; the parent lives in the ledger, not in the spec (or every child
        # would list it among its changed axes).
        assert [r.label for r in new] == ["crf=36", "crf=38"]
        assert all(not r.spec["run"].get("parent") for r in new)


async def test_sweep_form_reads_values_as_the_command_line_does(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    async with open_console(the_lab) as (app, pilot, table):
        await select(pilot, table, roles["floor"])
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepForm))
        await pilot.press(*"31,33..37:2")
        preview = app.screen.query_one("#sweep-preview", Label)
        # 33, 35 and 37 (with the floor's film grain) were measured: only 31 is new.
        await wait_for(pilot, lambda: "Queues 1 run: crf 31, 33, 35, 37" in str(preview.content))
        assert "3 of 4 already measured: r0002 (crf=33), r0001 (crf=35), r0003 (crf=37)" in str(preview.content)
        await pilot.press(*"..")  # "31,33..37:2.." is no range
        error = app.screen.query_one("#sweep-error", Label)
        await wait_for(pilot, lambda: "needs numbers" in str(error.content))
        assert str(preview.content) == ""


async def test_promote_by_hand_with_a_note(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    async with open_console(the_lab) as (_app, pilot, table):
        await select(pilot, table, roles["rejected"])
        await pilot.press("P")
        await pilot.pause()
        await pilot.press("enter")  # an empty note is refused
        await pilot.press(*"looks better", "enter")
        await wait_for(pilot, lambda: Ledger(the_lab).get(roles["rejected"]).verdict == "promoted")
        assert "looks better" in Ledger(the_lab).get(roles["rejected"]).verdict_reason


async def test_review_mode_clones_a_rejection_into_a_variant(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, _ = lab
    async with open_console(the_lab) as (app, pilot, _):
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen))
        review = app.screen.query_one("#review", DataTable)
        assert review.row_count == 4
        newest = app.screen.selected_run()
        assert newest is not None and newest.id == "r0006"  # newest first
        assert "cost most" in str(app.screen.query_one("#review-reason", Static).content).lower()
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, RunForm))
        assert app.screen.start.parent is not None and app.screen.start.parent.id == "r0006"


async def test_resizing_and_views_never_crash(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, _ = lab
    async with open_console(the_lab, size=(80, 24)) as (app, pilot, _):
        for size in ((160, 48), (20, 8), (80, 24)):
            await pilot.resize_terminal(*size)
            await pilot.press("f")  # Pareto on and off, at every size
            await pilot.pause()
        app.theme = "textual-light"  # the plots register the light theme with plotext
        await pilot.press("f", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        await pilot.press("escape")
        await pilot.press("t", "t", "o", "o", "O", "question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        console = Console(width=120, record=True, file=io.StringIO())
        console.print(keys_table(app.screen.behind))
        keys = console.export_text()
        for key, words in (("x", "Cancel the selected"), ("p", "Pause the queue"), ("/", "Filter"), ("q", "Quit")):
            assert any(line.split()[:1] == [key] and words in line for line in keys.splitlines()), key


def test_cli_without_a_lab_says_how_to_make_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([]) == 2
    assert "comma-tui init" in capsys.readouterr().err
    assert main(["--lab", str(tmp_path / "nowhere")]) == 2
    assert "no lab in" in capsys.readouterr().err


def test_demo_lab_is_made_once_with_a_sweep_around_a_first_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[int] = []

    def fake_assets(root: Path, frames: int, progress: object = None) -> DemoAssets:
        made.append(frames)
        return stand_in_assets(Path(root))

    monkeypatch.setattr(demo, "make_assets", fake_assets)
    root = tmp_path / "data" / "demo-lab"
    lab = demo.make_demo_lab(root)  # what `comma-tui --demo` has a child process do
    runs = Ledger(lab).records(Ledger(lab).all())
    first, rest = runs[0], runs[1:]
    assert lab.root == root and demo.demo_ready(root)
    assert first.spec["encode"]["crf"] == 35 and first.spec["preprocess"]["width"] == 524
    assert len(rest) == 7 and {r.parent for r in rest} == {first.id}
    assert [r.changed for r in rest[:2]] == [["crf 35 -> 31"], ["crf 35 -> 33"]]  # only the swept axis
    assert [r.label for r in rest[-3:]] == ["film_grain=0", "film_grain=10", "film_grain=30"]
    assert all(r.status == "queued" for r in runs)
    assert len(Ledger(demo.make_demo_lab(root)).all()) == 8  # made again: nothing queued twice
    assert made == [demo.DEMO_FRAMES]  # and the assets were made once


def test_the_demo_console_does_not_hold_torch(tmp_path: Path) -> None:
    # The demo lab exists: `comma-tui --demo` opens it, and the console it builds has no torch in it.
    made = stand_in_assets(tmp_path / "data" / "demo-lab" / "assets")
    lab = Lab.create(tmp_path / "data" / "demo-lab", made.clip, made.models)
    Ledger(lab).add_run({}, label="first")
    script = (
        "import sys\n"
        "from comma_tui.demo import ensure_demo_lab\n"
        "from comma_tui.app import CommaApp\n"
        "CommaApp(ensure_demo_lab(), start_scheduler=False)\n"
        "print('torch' in sys.modules)\n"
    )
    env = {**os.environ, demo.DATA_ENV: str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_queue_bars_follow_each_runs_own_stages() -> None:
    # A learned post-filter run trains between encode and archive; a submission has no encode.
    learned = stage_names({"inflate": {"postfilter": "learned"}})
    training = Progress("r0001", "train", 30, 100, 12.0, 28.0, 0.0)
    tokens = stage_bars(learned, training, 80).plain.split()
    bars = dict(zip(tokens[::2], tokens[1::2], strict=True))
    assert list(bars) == ["enc", "dat", "trn", "arc", "inf", "scr"]
    assert set(bars["enc"] + bars["dat"]) == {"█"} and set(bars["arc"] + bars["inf"] + bars["scr"]) == {"·"}
    assert "█" in bars["trn"] and bars["trn"].endswith("·")
    submission = stage_names({"run": {"submission": "/sub"}})
    assert stage_bars(submission, None, 80).plain.split()[::2] == ["arc", "inf", "scr"]


def test_queue_pane_shows_a_training_runs_latest_figures() -> None:
    figures = {"step": 40.0, "loss": 1.5, "segnet": 0.8, "posenet": 0.31, "pixel": 0.042, "estimate": 2.125}
    training = Progress("r0001", "train", 40, 100, 8.0, 12.0, 0.0, metrics=figures)
    assert progress_text(training) == "train 40/100 · 12s left · loss 1.5 seg 0.8 pose 0.31 pix 0.042 est 2.125"
    assert progress_text(Progress("r0001", "score", 1, 4, 1.0, None, 0.0)) == "score 1/4"


async def test_key_a_starts_the_autopilot_on_the_track_shows_it_and_stops_it(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, roles = lab
    async with open_console(the_lab) as (app, pilot, table):
        await select(pilot, table, roles["floor"])
        await pilot.press("A")
        await wait_for(pilot, lambda: isinstance(app.screen, AutopilotForm))
        axes = app.screen.query_one("#ap-axes", Input).value
        floor = Ledger(the_lab).get(roles["floor"])
        crf, grain = floor.spec["encode"]["crf"], floor.spec["encode"]["film_grain"]
        assert axes.startswith(f"crf={crf - 6}..{crf + 6} film_grain=") and str(grain) in axes  # from the floor
        await pilot.press("ctrl+a", *"crf=30..31-", "tab")  # a malformed axis shows its error in the form
        error = app.screen.query_one("#ap-error", Label)
        await wait_for(pilot, lambda: "needs numbers" in str(error.content))
        app.screen.query_one("#ap-axes", Input).value = "crf=30..40"
        app.screen.query_one("#ap-budget", Input).value = "8"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: autopilot.read_state(the_lab, "main") is not None)
        state = autopilot.read_state(the_lab, "main")
        assert state is not None and state.state == "running" and state.base == roles["floor"] and state.budget == 8
        status = app.screen.query_one("#status", Static)
        await wait_for(pilot, lambda: "autopilot 0/8" in str(status.render()))

        await pilot.press("A")  # again: it stops (no scheduler runs here, so the console stops it itself)
        await wait_for(pilot, lambda: getattr(autopilot.read_state(the_lab, "main"), "state", "") == "stopped")
        await wait_for(pilot, lambda: "autopilot 0/8" not in str(status.render()))


async def test_rows_and_totals_from_summaries_match_the_full_records(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, _roles = lab
    ledger = Ledger(the_lab)
    records = ledger.records(ledger.all())
    newest_first = sorted(records, key=lambda r: r.number, reverse=True)
    by_score = sorted((r for r in records if r.score is not None), key=lambda r: (r.score, r.number))
    by_score += sorted((r for r in records if r.score is None), key=lambda r: r.number, reverse=True)
    async with open_console(the_lab) as (app, pilot, table):
        assert [r.id for r in table.runs] == [r.id for r in newest_first]
        for shown, record in zip(table.runs, newest_first, strict=True):
            posenet = record.metrics.posenet if record.metrics else None
            assert (shown.track, shown.label, shown.status, shown.verdict) == (
                record.track,
                record.label,
                record.status,
                record.verdict,
            )
            assert (shown.score, shown.total_bytes, shown.posenet) == (record.score, record.total_bytes, posenet)
        status = str(app.screen.query_one("#status", Static).render())
        measured = sum(r.measured for r in records)
        promoted = sum(r.verdict == "promoted" for r in records)
        assert f"{measured} measured · ✓{promoted} promoted" in status
        assert f"!{sum(r.status == 'failed' for r in records)} failed" in status
        while table.sort_key != "score":
            await pilot.press("o")
        await wait_for(pilot, lambda: table.sort_key == "score" and not table.sort_reverse)
        assert [r.id for r in table.runs] == [r.id for r in by_score]


def test_the_first_page_reads_the_newest_files_alone(
    lab: tuple[Lab, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    the_lab, _roles = lab
    monkeypatch.setattr(segments, "RUNS_PER_FILE", 4)
    ledger = Ledger(the_lab)
    for i in range(8):  # two more files after the fixed history's
        ledger.add_run(spec(crf=20 + i), label=f"more {i}")
    (the_lab.ledger_dir / "runs-0000.json").write_bytes(b"{ damaged")  # a first page that read it would fail
    client = LabClient(the_lab)
    page = client.first_page(8)
    assert page.newest_only and page.table.numbers.tolist() == list(range(12, 20))
    with pytest.raises(LedgerError, match="runs-0000.json is damaged"):
        client.snapshot()
