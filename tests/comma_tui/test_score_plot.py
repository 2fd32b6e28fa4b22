"""The score plot's data: on a lab that has not measured anything yet (the demo lab's first start), and
kept from one snapshot to the next where a track did not change."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from comma_tui.lab_client import LabClient
from comma_tui.widgets.score_plot import plot_data, thin, track_plots
from ledger import Ledger
from ledger.queries import pareto
from tests.comma_tui.app_fixtures import fill_fixed, make_lab, result, spec, stand_in_assets


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


def test_a_track_whose_runs_did_not_change_keeps_its_plot_data(tmp_path: Path) -> None:
    assets = stand_in_assets(tmp_path / "assets")
    lab = make_lab(tmp_path / "lab", assets.clip, assets.models)
    fill_fixed(lab)
    client = LabClient(lab)
    first = client.snapshot()
    assert first is not None
    before = track_plots(first)
    ledger = Ledger(lab)
    run = ledger.add_run(spec(crf=28, width=0, height=0), track="native")
    ledger.update(run.id, status="running", pid=os.getpid(), slot=0)
    ledger.record_result(run.id, result(28, 22))
    second = client.snapshot()
    assert second is not None
    after = track_plots(second, before)
    assert after["main"] is before["main"]  # the same object: the plots built of it stay good
    assert after["native"] is not before["native"] and after["native"].runs == before["native"].runs + 1


def test_thinning_keeps_each_buckets_lowest_and_highest_point() -> None:
    rng = np.random.default_rng(7)
    x = np.arange(1.0, 5001.0)
    y = np.round(rng.normal(1.5, 0.3, len(x)), 2)  # rounded: ties, as scores have
    kept = thin(x, y, limit=100)
    size = math.ceil(len(x) / 50)
    expected = []
    for start in range(0, len(x), size):  # each bucket by hand: its first lowest and first highest
        bucket = y[start : start + size]
        low, high = start + int(np.argmin(bucket)), start + int(np.argmax(bucket))
        expected += sorted({(x[low], y[low]), (x[high], y[high])})
    assert kept == expected and len(kept) <= 100
    assert min(p[1] for p in kept) == y.min() and max(p[1] for p in kept) == y.max()  # the range survives
    assert thin(x[:50], y[:50], limit=100) == list(zip(x[:50].tolist(), y[:50].tolist(), strict=True))
