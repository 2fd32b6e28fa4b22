"""The score plot's data on a lab that has not measured anything yet (the demo lab's first start)."""

from __future__ import annotations

from pathlib import Path

from comma_tui.lab_client import LabClient
from comma_tui.widgets.score_plot import plot_data
from ledger import Ledger
from ledger.queries import pareto
from tests.comma_tui.app_fixtures import make_lab, spec, stand_in_assets


def test_a_track_of_only_queued_runs_plots_nothing_and_has_no_frontier(tmp_path: Path) -> None:
    assets = stand_in_assets(tmp_path / "assets")
    lab = make_lab(tmp_path / "lab", assets.clip, assets.models)
    ledger = Ledger(lab)
    for crf in (31, 33):
        ledger.add_run(spec(crf=crf), label=f"crf={crf}")
    snapshot = LabClient(lab).snapshot()
    assert snapshot is not None
    data = plot_data(snapshot.table, "main", [])
    assert data.runs == 0 and data.scores == [] and data.floor_steps == []
    assert pareto(snapshot.table, "main") == []
