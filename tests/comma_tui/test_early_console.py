"""Early verdicts on screen and on the command line: estimates marked `~`, the verdict's reason, score fully."""

from __future__ import annotations

import io
import os
from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from comma_tui.cli import main
from comma_tui.cli.progress_bar import ProgressBar
from comma_tui.screens.review import ReviewScreen
from comma_tui.screens.run_detail import RunDetailScreen
from comma_tui.widgets.comparison import comparison_rows
from comma_tui.widgets.format import progress_text
from comma_tui.widgets.queue_pane import QueueBody
from comma_tui.widgets.score_plot import ScorePlot
from engine.runs.progress import ProgressEvent
from ledger import Lab, Ledger, Progress
from ledger.records import Job
from tests.comma_tui.app_fixtures import fill_fixed, make_lab, result, spec, stand_in_assets
from tests.comma_tui.test_app import open_console, select, wait_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """Pilot runs on asyncio."""
    return "asyncio"


@pytest.fixture
def lab(tmp_path: Path) -> tuple[Lab, str]:
    """The fixed history plus a run rejected early against the floor; returns the lab and that run's id."""
    assets = stand_in_assets(tmp_path / "assets")
    made = make_lab(tmp_path / "lab", assets.clip, assets.models)
    fill_fixed(made)
    ledger = Ledger(made)
    floor = ledger.floors()["main"]
    assert floor.score is not None
    run = ledger.add_run(spec(crf=48), track="main", label="crf 48", parent=floor.id)
    ledger.update(run.id, status="running", pid=os.getpid(), slot=0)
    (Path(run.artifacts) / "archive.zip").write_bytes(b"PK a kept archive")
    done = result(48, 22)
    estimate = replace(
        done.metrics,
        estimated=True,
        pairs_scored=8,
        score_bound=floor.score + 0.5,
        confidence=0.999,
        early_floor=floor.score,
    )
    ledger.record_result(run.id, replace(done, metrics=estimate))
    return made, run.id


async def test_an_estimate_is_marked_in_the_ledger_review_and_detail_and_scored_fully_with_f(
    lab: tuple[Lab, str],
) -> None:
    the_lab, early = lab
    run = Ledger(the_lab).get(early)
    assert run.metrics is not None and run.score is not None
    assert run.compared_with is not None
    rows = {row.name: row for row in comparison_rows(run, Ledger(the_lab).get(run.compared_with))}
    assert rows["score"].current == f"~{run.score:.3f}" and rows["SegNet"].current.startswith("~")
    assert rows["SegNet"].delta.startswith("~")
    assert not rows["bytes"].current.startswith("~") and not rows["rate term"].current.startswith("~")  # exact
    async with open_console(the_lab) as (app, pilot, table):
        await select(pilot, table, early)
        cells, _ = table._row_cells(table.cursor)
        assert f"~{run.score:.3f}" in cells and "✗ early" in cells
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen))
        review = app.screen.query_one("#review", DataTable)
        assert [str(c) for c in review.get_row(early)][1] == f"~{run.score:.3f}"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        await pilot.pause()
        verdict = str(app.screen.query_one("#verdict", Static).content)
        assert "rejected early: score ≥" in verdict and "estimates from 8 of 30 pairs: F scores it fully" in verdict
        await pilot.press("F")
        await wait_for(pilot, lambda: Ledger(the_lab).get(early).job == Job.RESCORE)
        assert Ledger(the_lab).get(early).status == "queued"


async def test_the_plot_legend_names_estimates_only_where_there_are_some(lab: tuple[Lab, str], tmp_path: Path) -> None:
    assets = stand_in_assets(tmp_path / "plain-assets")
    plain = make_lab(tmp_path / "plain", assets.clip, assets.models)
    fill_fixed(plain)
    for each, legend in ((lab[0], True), (plain, False)):
        async with open_console(each) as (app, pilot, _table):
            plot = app.screen.query_one(ScorePlot)
            await wait_for(pilot, lambda plot=plot: plot.settled and plot.data.track == "main")
            assert ("~ estimate" in str(plot.border_subtitle)) is legend


async def test_the_queue_says_where_an_early_verdict_stands(lab: tuple[Lab, str]) -> None:
    the_lab, _ = lab
    ledger = Ledger(the_lab)
    running = ledger.running()[0]
    ledger.set_progress(running.id, "score", 6, 38, 30.0, 90.0, "batches · bound 23.90 vs floor 23.10")
    progress = ledger.progress()[running.id]
    assert progress_text(progress) == "score 6/38 batches · bound 23.90 vs floor 23.10 · 1m30s left"
    async with open_console(the_lab) as (app, pilot, _):
        body = app.screen.query_one(QueueBody)
        await wait_for(pilot, lambda: "bound 23.90 vs floor 23.10" in str(body.render()))


def test_sched_status_says_where_an_early_verdict_stands(lab: tuple[Lab, str], capsys) -> None:
    the_lab, _ = lab
    ledger = Ledger(the_lab)
    running = ledger.running()[0]
    ledger.set_progress(running.id, "score", 6, 38, 30.0, 90.0, "batches · bound 23.90 vs floor 23.10")
    assert main(["sched", "status", "--lab", str(the_lab.root)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if running.id in line)
    assert "score 6/38 batches · bound 23.90 vs floor 23.10" in line


def test_progress_without_a_detail_reads_as_before() -> None:
    plain = Progress("r0001", "inflate", 18, 60, 20.0, 14.0, 0.0)
    assert progress_text(plain) == "inflate 18/60 · 14s left"


def test_ledger_cli_marks_estimates_shows_the_bound_and_rescores(lab: tuple[Lab, str], capsys) -> None:
    the_lab, early = lab
    run = Ledger(the_lab).get(early)
    assert main(["ledger", "list", "--lab", str(the_lab.root)]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith(early))
    assert f"~{run.score:.3f}" in line and "rejected (early)" in line
    assert "~ an estimate: rejected early, never a floor; comma-tui ledger rescore RUN scores it fully" in out
    assert main(["ledger", "show", early, "--lab", str(the_lab.root)]) == 0
    out = capsys.readouterr().out
    assert "rejected early: score ≥" in out and "~ estimates from 8 of 30 pairs" in out
    floor = Ledger(the_lab).floors()["main"]
    assert main(["ledger", "rescore", floor.id, "--lab", str(the_lab.root)]) == 2
    err = capsys.readouterr().err
    assert "not a run rejected early" in err and len(err.strip().splitlines()) == 1
    assert main(["ledger", "rescore", early, "--lab", str(the_lab.root)]) == 0
    assert "queued " + early + " to be scored fully" in capsys.readouterr().out
    assert Ledger(the_lab).get(early).job == Job.RESCORE


def test_the_cli_progress_bar_says_where_an_early_verdict_stands() -> None:
    out = io.StringIO()
    ProgressBar(out, enabled=True)(ProgressEvent("score", 6, 38, 30.0, 90.0, "batches · bound 23.90 vs floor 23.10"))
    assert "6/38 batches · bound 23.90 vs floor 23.10 elapsed 00:30 eta 01:30" in out.getvalue()
