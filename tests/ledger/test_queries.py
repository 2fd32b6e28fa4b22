"""Queries: filter, sort, launch order, floors, deltas, turning points, Pareto, neighbourhood, counts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ledger import Ledger, LedgerError, RunRecord
from ledger import queries as q
from ledger.table import SummaryTable
from tests.ledger.fixtures import make_lab, measured, spec
from tests.ledger.fixtures import metrics as fixture_metrics


def rec(n: int, score: float | None = None, nbytes: int = 100, **kw: object) -> RunRecord:
    """A record with just what a query needs."""
    metrics = None
    if score is not None:
        metrics = replace(fixture_metrics(score, archive_bytes=nbytes), segnet=0.001 * n)
    fields: dict = {"status": "done" if score is not None else "queued", "metrics": metrics, "created": float(n)}
    fields |= {"scorer_fingerprint": "s", "clip_fingerprint": "c", "device_kind": "cpu", "position": n}
    return RunRecord(id=f"r{n:04d}", **(fields | kw))  # type: ignore[arg-type]


def table(*runs: RunRecord) -> SummaryTable:
    """The summaries of these records, as the ledger holds them."""
    return SummaryTable.of(sorted(runs, key=lambda r: r.number))


def test_filter_by_each_field_and_text() -> None:
    runs = table(
        rec(1, 2.0, verdict="promoted", label="Baseline"),
        rec(2, 2.1, verdict="rejected", track="small"),
        rec(3, status="failed", failure_reason="OOM killed"),
        rec(4, spec={"encode": {"film_grain": 22}}),
    )
    ids = lambda rs: [r.id for r in rs]  # noqa: E731
    assert ids(q.filter_runs(runs, status="done")) == ["r0001", "r0002"]
    assert ids(q.filter_runs(runs, track="small")) == ["r0002"]
    assert ids(q.filter_runs(runs, verdict="none")) == ["r0003", "r0004"]
    assert ids(q.filter_runs(runs, verdict="rejected", track="main")) == []
    assert ids(q.filter_runs(runs, text="baseLINE")) == ["r0001"]
    assert ids(q.filter_runs(runs, text="oom")) == ["r0003"]
    assert ids(q.filter_runs(runs, text="film_grain=22")) == ["r0004"]
    with pytest.raises(LedgerError, match="unknown status 'finished'"):
        q.filter_runs(runs, status="finished")
    with pytest.raises(LedgerError, match="unknown verdict"):
        q.filter_runs(runs, verdict="good")


def test_sort_puts_runs_without_a_value_last() -> None:
    runs = table(rec(1, 2.5), rec(2), rec(3, 2.0), rec(4, 2.2)).view()
    assert q.sort_runs(runs, "score").ids == ["r0003", "r0004", "r0001", "r0002"]
    assert q.sort_runs(runs, "score", reverse=True).ids == ["r0001", "r0004", "r0003", "r0002"]
    assert q.sort_runs(runs, "id", reverse=True).ids == ["r0004", "r0003", "r0002", "r0001"]
    big = table(rec(10000), rec(9999)).view()
    assert q.sort_runs(big).ids == ["r9999", "r10000"]
    labelled = table(rec(1, label="b"), rec(2, label="A"), rec(3, label="c", track="x"), rec(4, status="failed"))
    assert q.sort_runs(labelled.view(), "label").ids == ["r0004", "r0002", "r0001", "r0003"]
    assert q.sort_runs(labelled.view(), "track").ids == ["r0001", "r0002", "r0004", "r0003"]
    assert q.sort_runs(labelled.view(), "status").ids == ["r0001", "r0002", "r0003", "r0004"]
    for key in q.SORT_KEYS:
        q.sort_runs(runs, key)
    with pytest.raises(LedgerError, match="cannot sort by 'size'"):
        q.sort_runs(runs, "size")


def test_launch_order() -> None:
    runs = table(rec(1, position=5), rec(2, position=1), rec(3, priority=2, position=9), rec(4, 2.0))
    assert q.launch_order(runs).ids == ["r0003", "r0002", "r0001"]


def test_tracks_in_order_of_first_run() -> None:
    assert q.tracks(table(rec(1, track="b"), rec(2, track="a"), rec(3, track="b"))) == ["b", "a"]
    assert q.tracks(table()) == []


def test_floor_deltas_are_per_group() -> None:
    runs = table(
        rec(1, 2.0, verdict="promoted", verdict_at=1.0),
        rec(2, 2.3, verdict="rejected"),
        rec(3, 5.0, verdict="promoted", verdict_at=2.0, device_kind="cuda"),
        rec(4, 4.0, verdict="promoted", verdict_at=3.0, device_kind="cuda"),
        rec(5),
        rec(6, 9.0, verdict="rejected", track="alone"),  # a group without a floor
    )
    deltas = q.floor_deltas(runs)
    assert deltas[:4] == pytest.approx([0.0, 0.3, 1.0, 0.0])
    assert np.isnan(deltas[4:]).all()


def test_turning_points_follow_the_current_group() -> None:
    runs = table(
        rec(1, 3.0, nbytes=300, verdict="promoted", verdict_at=1.0),
        rec(2, 2.5, nbytes=250, verdict="promoted", verdict_at=2.0),
        rec(3, 2.6, verdict="rejected"),
        rec(4, 2.0, nbytes=260, verdict="promoted", verdict_at=3.0),
        rec(5, 9.0, verdict="promoted", verdict_at=0.5, scorer_fingerprint="old"),
    )
    points = q.turning_points(runs, "main")
    assert [p.run.id for p in points] == ["r0001", "r0002", "r0004"]
    assert points[0].previous is None and points[0].delta_score is None
    assert points[1].delta_score == pytest.approx(-0.5) and points[1].delta_bytes == -50
    assert points[2].previous is not None and points[2].previous.id == "r0002" and points[2].delta_bytes == 10
    old = q.turning_points(runs, "main", "old", "c", "cpu")
    assert [p.run.id for p in old] == ["r0005"]
    assert q.turning_points(runs, "nope") == []


def test_pareto_frontier_of_bytes_and_score() -> None:
    runs = table(
        rec(1, 3.0, nbytes=100, verdict="promoted", verdict_at=1.0),
        rec(2, 2.0, nbytes=200),
        rec(3, 2.5, nbytes=300),  # beaten by r0002 on both
        rec(4, 1.5, nbytes=400),
        rec(5, 1.0, nbytes=50, approximate=True),  # approximate: never on the frontier
        rec(6, 1.0, nbytes=500, track="small"),
        rec(7, 0.1, nbytes=10, scorer_fingerprint="other"),  # another scorer
    )
    assert [r.id for r in q.pareto(runs, "main")] == ["r0001", "r0002", "r0004"]
    assert [r.id for r in q.pareto(runs)] == ["r0001", "r0002", "r0004", "r0006"]
    assert [r.id for r in q.pareto(runs, None, "other")] == ["r0007"]
    assert q.pareto(table(rec(1))) == []


def test_neighbourhood_rows() -> None:
    center = rec(1, 2.0, nbytes=100)
    runs = [
        center,
        rec(3, 2.3, nbytes=90, parent="r0001", changed=["crf 34 -> 35"], verdict="rejected"),
        rec(2, 1.9, nbytes=120, parent="r0001", changed=["crf 34 -> 33"], verdict="promoted"),
        rec(4, parent="r0001", changed=["film_grain 0 -> 8"]),
        rec(5, 2.0, parent="r0002"),
        rec(6, 1.0, parent="r0001", device_kind="cuda"),
    ]
    rows = q.neighbourhood(runs, center)
    assert [r.run.id for r in rows] == ["r0002", "r0003", "r0004", "r0006"]
    assert rows[0].delta_score == pytest.approx(-0.1) and rows[0].delta_bytes == 20 and rows[0].verdict == "promoted"
    assert rows[1].changed == ["crf 34 -> 35"] and rows[1].comparable
    assert rows[2].delta_score is None and not rows[2].comparable
    assert not rows[3].comparable


def test_counts() -> None:
    runs = table(
        rec(1, 2.0, verdict="promoted"),
        rec(2, 2.1, verdict="rejected"),
        rec(3, status="failed"),
        rec(4),
        rec(5, status="running"),
        rec(6, status="cancelled", track="x"),
    )
    counts = q.counts(runs)
    assert counts.as_dict() == {
        "total": 6,
        "measured": 2,
        "promoted": 1,
        "rejected": 1,
        "failed": 1,
        "queued": 1,
        "running": 1,
        "cancelled": 1,
        "interrupted": 0,
    }
    assert counts["promoted"] == counts.promoted == 1
    assert q.counts(runs, track="x").total == 1
    with pytest.raises(KeyError):
        counts["nope"]


def test_ledger_delegates(tmp_path: Path) -> None:
    ledger = Ledger(make_lab(tmp_path))
    a = measured(ledger, 2.0)
    b = measured(ledger, 1.9, parent=a.id, the_spec=spec(crf=35))
    measured(ledger, 2.2, parent=a.id, track="small")
    ledger.add_run(spec(), label="waiting")
    assert [r.id for r in ledger.runs(sort="score")] == ["r0002", "r0001", "r0003", "r0004"]
    assert [r.id for r in ledger.runs(verdict="none", text="waiting")] == ["r0004"]
    assert ledger.tracks() == ["main", "small"]
    assert {t: r.id for t, r in ledger.floors().items()} == {"main": b.id, "small": "r0003"}
    assert [p.run.id for p in ledger.turning_points("main")] == [a.id, b.id]
    assert [r.id for r in ledger.pareto("main")] == [b.id]
    assert [row.run.id for row in ledger.neighbourhood(a.id)] == [b.id, "r0003"]
    assert ledger.counts().measured == 3 and ledger.counts()["queued"] == 1
    assert ledger.deltas()[a.id] == pytest.approx(0.1)


def test_prior_of_is_the_floor_reviewed_against_else_the_floor_faced_else_the_parent(tmp_path: Path) -> None:
    ledger = Ledger(make_lab(tmp_path))
    first = measured(ledger, 2.19)
    floor = measured(ledger, 2.10, parent=first.id)
    worse = measured(ledger, 2.30, parent=first.id)
    waiting = ledger.add_run(spec(crf=40), parent=first.id)
    other = ledger.add_run(spec(crf=41), track="side", parent=first.id)
    runs, by_id = ledger.table(), {r.id: r for r in ledger.all()}
    assert q.prior_of(runs, by_id[worse.id]) == q.Prior(by_id[floor.id], "floor")  # reviewed against
    assert q.prior_of(runs, by_id[waiting.id]) == q.Prior(by_id[floor.id], "floor")  # faces it now
    assert q.prior_of(runs, by_id[other.id]) == q.Prior(by_id[first.id], "parent")  # no floor there
    assert q.prior_of(runs, by_id[first.id]) is None  # the first floor: nothing before it
    assert ledger.prior_of(floor.id) == q.Prior(ledger.get(first.id), "floor")  # the prior in full
    fresh = Ledger(ledger.lab)  # as `comma-tui ledger show` opens it
    assert fresh.prior_of(worse.id) == q.Prior(ledger.get(floor.id), "floor")
    assert fresh.prior_of(waiting.id) == q.Prior(ledger.get(floor.id), "floor")
    assert fresh.prior_of(other.id) == q.Prior(ledger.get(first.id), "parent")


def test_filter_by_several_statuses_and_archived(tmp_path: Path) -> None:
    runs = table(rec(1, 2.0), rec(2, status="failed"), rec(3), rec(4, status="failed", archived=True))
    assert [r.id for r in q.filter_runs(runs, status=["done", "failed"])] == ["r0001", "r0002"]
    assert len(q.filter_runs(runs, status=[])) == 0  # any of no statuses: none
    assert [r.id for r in q.filter_runs(runs, archived=True)] == ["r0004"]
    assert len(q.filter_runs(runs, archived=None)) == 4
    with pytest.raises(LedgerError, match="unknown status 'finished'"):
        q.filter_runs(runs, status=["done", "finished"])
