"""Promotion review: floors, epsilon, ties, first runs, comparison groups and overrides."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ledger import Ledger, LedgerError
from ledger.promotion import Review, describe_group, floor_row, group_floor, review
from ledger.records import RunRecord
from ledger.summary import RunSummary
from ledger.table import SummaryTable
from tests.ledger.fixtures import make_lab, measured, metrics, result, spec


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(make_lab(tmp_path))


def floor_id(ledger: Ledger, track: str = "main") -> str:
    floor = ledger.floor(track)
    assert floor is not None
    return floor.id


def test_first_run_of_a_track_is_its_first_floor(ledger: Ledger) -> None:
    first = measured(ledger, 2.19)
    assert first.verdict == "promoted"
    assert "first floor" in first.verdict_reason
    assert first.compared_with is None
    assert ledger.floor("main") == RunSummary.of(first)


def test_lower_by_more_than_epsilon_promotes(ledger: Ledger) -> None:
    floor = measured(ledger, 2.19)
    better = measured(ledger, 2.15, parent=floor.id, the_spec=spec(crf=35))
    assert better.verdict == "promoted"
    assert better.verdict_reason == f"-0.040 vs floor 2.190 ({floor.id}): new floor; changed crf 34 -> 35"
    assert better.compared_with == floor.id
    assert floor_id(ledger) == better.id


def test_worse_run_is_rejected_with_a_readable_reason(ledger: Ledger) -> None:
    floor = measured(ledger, 2.19)
    worse = measured(ledger, 2.21, parent=floor.id, the_spec=spec(crf=35))
    assert worse.verdict == "rejected"
    assert worse.verdict_reason == f"+0.020 vs floor 2.190 ({floor.id}); changed crf 34 -> 35"
    assert floor_id(ledger) == floor.id


def test_a_tie_does_not_promote(ledger: Ledger) -> None:
    floor = measured(ledger, 2.19)
    tie = measured(ledger, 2.19)
    assert tie.verdict == "rejected"
    assert "±0.000" in tie.verdict_reason and "tie" in tie.verdict_reason
    assert floor_id(ledger) == floor.id


@pytest.mark.parametrize(("score", "verdict"), [(2.186, "rejected"), (2.185, "rejected"), (2.1849, "promoted")])
def test_gain_must_exceed_epsilon(ledger: Ledger, score: float, verdict: str) -> None:
    measured(ledger, 2.19)
    run = measured(ledger, score)
    assert run.verdict == verdict, run.verdict_reason
    if verdict == "rejected":
        assert "epsilon 0.005" in run.verdict_reason


def test_epsilon_comes_from_lab_toml(tmp_path: Path) -> None:
    ledger = Ledger(make_lab(tmp_path, epsilon=0.05))
    assert ledger.epsilon == 0.05
    measured(ledger, 2.19)
    assert measured(ledger, 2.15).verdict == "rejected"
    assert measured(ledger, 2.13).verdict == "promoted"


def test_zero_epsilon_promotes_any_gain(tmp_path: Path) -> None:
    ledger = Ledger(make_lab(tmp_path, epsilon=0.0))
    measured(ledger, 2.19)
    assert measured(ledger, 2.1899).verdict == "promoted"
    assert measured(ledger, 2.1899).verdict == "rejected"  # a tie is still a tie


@pytest.mark.parametrize("axis", ["scorer", "clip", "device"])
def test_groups_are_isolated(ledger: Ledger, axis: str) -> None:
    other: dict[str, Any] = {
        "scorer": {"scorer": "scorer-b"},
        "clip": {"clip": "clip-b"},
        "device": {"device": "cuda"},
    }[axis]
    a = measured(ledger, 2.00)
    b = measured(ledger, 2.50, **other)  # much worse, but not comparable: first floor of its own group
    assert b.verdict == "promoted" and "first floor" in b.verdict_reason
    a2 = measured(ledger, 2.10)  # compared with a, not with b
    assert a2.verdict == "rejected" and a.id in a2.verdict_reason
    b2 = measured(ledger, 2.40, **other)  # compared with b, not with a
    assert b2.verdict == "promoted" and b.id in b2.verdict_reason
    assert ledger.floor(
        "main", scorer_fingerprint="scorer-a", clip_fingerprint="clip-a", device_kind="cpu"
    ) == RunSummary.of(a)
    latest = ledger.floor("main")
    assert latest is not None and latest.id == b2.id  # no filters: the latest promotion of the track


def test_tracks_are_isolated(ledger: Ledger) -> None:
    main = measured(ledger, 2.0)
    small = measured(ledger, 3.0, track="small")
    assert small.verdict == "promoted"
    assert ledger.floors() == {"main": RunSummary.of(main), "small": RunSummary.of(small)}


def test_approximate_scores_never_promote(ledger: Ledger) -> None:
    approx = measured(ledger, 1.0, approximate=True)
    assert approx.verdict == "rejected"
    assert "approximate" in approx.verdict_reason and "never promoted" in approx.verdict_reason
    assert ledger.floor("main") is None
    exact = measured(ledger, 2.0)
    assert exact.verdict == "promoted" and "first floor" in exact.verdict_reason
    assert measured(ledger, 1.0, approximate=True).verdict == "rejected"
    assert ledger.floor("main") == RunSummary.of(exact)


def test_charged_score_is_the_one_that_ranks(ledger: Ledger) -> None:
    measured(ledger, 2.19)
    assert measured(ledger, 2.10).verdict == "promoted"
    # a raw score of 2.0 would promote, but 200 kB read at inflate cost 25 * 0.2 = 5 points
    charged = ledger.add_run(spec(crf=40))
    payload = replace(result(2.0), metrics=metrics(2.0, charged_bytes=300_000))  # 200 kB read at inflate
    done = ledger.record_result(charged.id, payload)
    assert done.metrics is not None and done.metrics.charged_score == pytest.approx(7.0)
    assert done.verdict == "rejected" and "+4.900" in done.verdict_reason


def test_override_promote_makes_the_run_the_floor(ledger: Ledger) -> None:
    floor = measured(ledger, 2.19)
    simpler = measured(ledger, 2.192)
    assert simpler.verdict == "rejected"
    promoted = ledger.override(simpler.id, "promoted", "half the encode time")
    assert promoted.verdict == "promoted"
    assert promoted.verdict_reason.startswith("promoted by hand: half the encode time; review said rejected: ")
    assert promoted.overrides[0].note == "half the encode time"
    assert promoted.metrics == simpler.metrics  # metrics are never edited
    assert floor_id(ledger) == simpler.id
    # the next run is compared with the overridden floor
    nxt = measured(ledger, 2.19)
    assert nxt.verdict == "rejected" and simpler.id in nxt.verdict_reason
    assert ledger.get(floor.id).verdict == "promoted"  # earlier verdicts stand


def test_override_reject_hands_the_floor_back(ledger: Ledger) -> None:
    first = measured(ledger, 2.19)
    second = measured(ledger, 2.10)
    assert floor_id(ledger) == second.id
    rejected = ledger.override(second.id, "rejected", "decoder bug inflated the score")
    assert rejected.verdict == "rejected" and rejected.overridden
    assert floor_id(ledger) == first.id
    # the latest override wins
    again = ledger.override(second.id, "promoted", "bug was elsewhere")
    assert again.verdict == "promoted" and len(again.overrides) == 2
    assert floor_id(ledger) == second.id


def test_override_is_an_event_beside_the_run(ledger: Ledger) -> None:
    run = measured(ledger, 2.19)
    ledger.override(run.id, "rejected", "looked wrong")
    reopened = Ledger(ledger.lab).get(run.id)
    assert reopened.verdict == "rejected" and reopened.overrides[0].verdict == "rejected"
    assert reopened.metrics == run.metrics


def test_override_refusals(ledger: Ledger) -> None:
    queued = ledger.add_run(spec())
    with pytest.raises(LedgerError, match="only measured"):
        ledger.override(queued.id, "promoted", "why not")
    approx = measured(ledger, 1.0, approximate=True)
    with pytest.raises(LedgerError, match="approximate"):
        ledger.override(approx.id, "promoted", "trust me")
    assert ledger.override(approx.id, "rejected", "noted").verdict == "rejected"
    done = measured(ledger, 2.0)
    with pytest.raises(LedgerError, match="needs a note"):
        ledger.override(done.id, "promoted", "   ")
    with pytest.raises(LedgerError, match="unknown verdict"):
        ledger.override(done.id, "maybe", "hmm")


def test_changed_from_parent_other_than_floor_is_named(ledger: Ledger) -> None:
    floor = measured(ledger, 2.0)
    side = measured(ledger, 2.5, parent=floor.id, the_spec=spec(crf=40))
    child = measured(ledger, 2.4, parent=side.id, the_spec=spec(crf=41))
    assert child.verdict_reason.endswith(f"changed crf 40 -> 41 from {side.id}")


def _record(run: str, score: float, verdict: str | None = None, at: float = 0.0, **kw: object) -> RunRecord:
    return RunRecord(id=run, created=0.0, status="done", metrics=metrics(score), verdict=verdict, verdict_at=at, **kw)  # type: ignore[arg-type]


def test_review_pure_function() -> None:
    floor = _record("r0001", 2.0, "promoted", at=1.0, scorer_fingerprint="s")
    candidate = _record("r0002", 1.9, scorer_fingerprint="s")
    against = group_floor(SummaryTable.of([floor, candidate]), candidate)
    assert against is not None and against.id == "r0001"
    verdict = review(candidate, against, epsilon=0.005, now=5.0)
    assert verdict == Review("promoted", "-0.100 vs floor 2.000 (r0001): new floor", "r0001", 5.0)
    assert verdict.to_doc()["floor"] == "r0001"
    assert group_floor(SummaryTable.of([floor, candidate]), floor) is None  # a run is not its own floor
    with pytest.raises(ValueError, match="no metrics"):
        review(RunRecord(id="r0003", created=0.0), None, 0.005, 0.0)


def test_floor_is_the_latest_promotion() -> None:
    old = _record("r0001", 1.0, "promoted", at=1.0)
    new = _record("r0002", 2.0, "promoted", at=2.0)
    rejected = _record("r0003", 0.5, "rejected", at=3.0)
    earlier = _record("r0004", 0.7, "promoted", at=0.5)  # promoted before the others, though made last
    table = SummaryTable.of([old, new, rejected, earlier])
    assert floor_row(table, np.ones(4, bool)) == 1
    assert floor_row(table, np.array([False, False, True, False])) is None


def test_describe_group_marks_demo_scorers() -> None:
    full = "1a2b3c4d" + "0" * 56
    run = _record("r0001", 1.0, scorer_fingerprint=full, scorer_demo=True, device_kind="mps")
    assert describe_group(run) == "track main, scorer demo-1a2b3c4d, clip unknown, mps"
    official = _record("r0002", 1.0, scorer_fingerprint=full, device_kind="cpu")
    assert describe_group(official) == "track main, scorer 1a2b3c4d0000, clip unknown, cpu"
