"""Early verdicts in the ledger: estimates are rejected with their reason, never floors, and scored fully on request."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from ledger import Ledger, LedgerError, Metrics, RunRecord, RunSummary
from ledger.queries import pareto
from ledger.records import Job, record_from_doc
from tests.ledger.fixtures import make_lab, measured, metrics, result, spec


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(make_lab(tmp_path))


def estimate(score: float, bound: float, floor: float, pairs_scored: int = 96, pairs: int = 600) -> Metrics:
    """Metrics an early verdict hands in: estimates from `pairs_scored` of `pairs`, with their bound."""
    return replace(
        metrics(score),
        pairs=pairs,
        estimated=True,
        pairs_scored=pairs_scored,
        score_bound=bound,
        confidence=0.999,
        early_floor=floor,
    )


def rejected_early(ledger: Ledger, score: float = 24.31, bound: float = 24.02, floor: float = 23.08) -> RunRecord:
    record = ledger.add_run(spec(crf=50))
    ledger.update(record.id, status="running", pid=os.getpid(), slot=0)
    (Path(record.artifacts) / "archive.zip").write_bytes(b"PK kept archive")
    return ledger.record_result(record.id, replace(result(score), metrics=estimate(score, bound, floor)))


def test_an_estimate_is_rejected_early_with_its_reason(ledger: Ledger) -> None:
    floor = measured(ledger, 23.08)
    run = rejected_early(ledger)
    assert run.status == "done" and run.estimated and not run.exact
    assert run.verdict == "rejected" and run.compared_with == floor.id
    assert run.verdict_reason == (
        "rejected early: score ≥ 24.02 with 99.9% confidence after 96 of 600 pairs (estimate 24.31; floor 23.08)"
    )


def test_an_estimate_is_never_a_floor_nor_on_the_frontier(ledger: Ledger) -> None:
    floor = measured(ledger, 23.08)
    run = rejected_early(ledger, score=1.0, bound=0.5)  # even one that looks far better
    assert run.verdict == "rejected"
    assert [r.estimated for r in ledger.all()] == [False, True]  # the summaries say so: no full record read
    assert ledger.floor("main") == RunSummary.of(floor)
    assert run.id not in [r.id for r in pareto(ledger.table())]
    assert ledger.deltas()[run.id] == pytest.approx(1.0 - 23.08)  # the console still says how far off it looks
    with pytest.raises(LedgerError, match="score it fully first .*ledger rescore"):
        ledger.override(run.id, "promoted", "looks good")


def test_metrics_refuse_half_an_estimate() -> None:
    with pytest.raises(ValueError, match="belong to estimated metrics"):
        replace(metrics(2.0), pairs_scored=96).check()
    with pytest.raises(ValueError, match="need pairs"):
        replace(metrics(2.0), estimated=True, pairs=600, pairs_scored=96).check()
    with pytest.raises(ValueError, match="some, not all"):
        estimate(2.0, 1.9, 1.5, pairs_scored=600).check()
    estimate(2.0, 1.9, 1.5).check()


def test_records_written_before_early_verdicts_still_read() -> None:
    old = {"id": "r0001", "created": 1.0, "status": "done", "metrics": metrics(2.0).to_dict()}
    for key in ("estimated", "pairs_scored", "score_bound", "confidence", "early_floor"):
        del old["metrics"][key]
    record = record_from_doc(old)
    assert record.measured and not record.estimated and record.exact and record.job == Job.RUN


def test_rescore_queues_a_score_only_job_that_replaces_the_estimate(ledger: Ledger) -> None:
    measured(ledger, 23.08)
    run = rejected_early(ledger)
    later = ledger.add_run(spec(crf=30))
    queued = ledger.rescore(run.id)
    assert queued.status == "queued" and queued.job == Job.RESCORE and queued.estimated  # it keeps its estimate
    assert [r.id for r in ledger.queued()] == [later.id, run.id]  # at the back of the queue
    ledger.update(run.id, status="running", pid=os.getpid(), slot=0)
    exact = replace(result(22.0), stage_timings={"inflate": 3.0, "score": 40.0})
    done = ledger.record_result(run.id, exact)
    assert done.exact and done.job == Job.RUN and done.verdict == "promoted"  # reviewed again: it won after all
    assert done.stage_timings == {"encode": 1.5, "score": 40.0, "inflate": 3.0}
    assert ledger.floor("main") == RunSummary.of(done)


def test_rescore_refusals(ledger: Ledger) -> None:
    exact = measured(ledger, 23.08)
    with pytest.raises(LedgerError, match="not a run rejected early .*scored in full"):
        ledger.rescore(exact.id)
    run = rejected_early(ledger)
    (Path(run.artifacts) / "archive.zip").unlink()
    with pytest.raises(LedgerError, match="has no kept archive .*clone it"):
        ledger.rescore(run.id)
    assert ledger.get(run.id).status == "done"


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_a_rescore_that_fails_or_is_cancelled_leaves_the_estimate(ledger: Ledger, status: str) -> None:
    measured(ledger, 23.08)
    run = rejected_early(ledger)
    ledger.rescore(run.id)
    ledger.update(run.id, status="running", pid=os.getpid(), slot=0)
    ended = ledger.record_failure(run.id, "inflate.sh failed", status=status)
    assert ended.status == "done" and ended.job == Job.RUN and ended.estimated
    assert ended.metrics == run.metrics and ended.verdict_reason == run.verdict_reason
    assert "did not finish (inflate.sh failed)" in ended.failure_reason


def test_an_interrupted_rescore_is_requeued_as_a_rescore(ledger: Ledger) -> None:
    measured(ledger, 23.08)
    run = rejected_early(ledger)
    ledger.rescore(run.id)
    ledger.update(run.id, status="running", pid=os.getpid(), slot=0)
    ledger.record_failure(run.id, "machine went down", status="interrupted")
    again = ledger.requeue(run.id)
    assert again.status == "queued" and again.job == Job.RESCORE and again.estimated
