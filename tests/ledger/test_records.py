"""Run records and metrics: ids, derived metrics, stored form, effective verdicts."""

from __future__ import annotations

import json

import pytest

from ledger import LedgerError, Metrics, RunRecord, run_id, run_number
from ledger.records import LOG_TAIL_LIMIT, STORED_FIELDS, RunStatus, clip_log_tail, record_from_doc
from tests.ledger.fixtures import metrics


def test_run_ids_sort_by_number() -> None:
    assert [run_id(n) for n in (1, 42, 9999, 10000)] == ["r0001", "r0042", "r9999", "r10000"]
    assert [run_number(t) for t in ("r0042", "r42", "42", " R0042 ", "r10000")] == [42, 42, 42, 42, 10000]
    for bad in ("", "r", "x42", "r-1", "r0", "r4.2"):
        with pytest.raises(LedgerError, match="is not a run id"):
            run_number(bad)


def test_metrics_read_back_from_their_stored_form() -> None:
    m = metrics(7.0, archive_bytes=250_000, charged_bytes=290_000)  # 40 kB read beside the archive at inflate
    assert m.ranked_score == m.charged_score == pytest.approx(8.0) and m.total_bytes == 290_000
    assert m.terms == {"segnet": m.segnet_term, "posenet": m.posenet_term, "rate": m.rate_term}
    assert Metrics(**json.loads(json.dumps(m.to_dict()))) == m
    plain = metrics(7.0)
    assert plain.ranked_score == 7.0 and plain.total_bytes == plain.archive_bytes


def test_record_round_trips_through_its_stored_form() -> None:
    record = RunRecord(
        id="r0003",
        created=1.0,
        spec={"encode": {"crf": 35}},
        changed=["crf 34 -> 35"],
        status=RunStatus.DONE,
        metrics=metrics(2.0, archive_bytes=250_000),
        extra={"loss": [0.1, 0.2]},
    )
    doc = {name: getattr(record, name) for name in STORED_FIELDS} | {"metrics": record.metrics.to_dict()}  # type: ignore[union-attr]
    assert "verdict" not in doc and "overrides" not in doc
    assert record_from_doc(json.loads(json.dumps(doc))) == record
    assert record.number == 3 and record.measured and record.score == record.metrics.score  # type: ignore[union-attr]
    assert json.loads(json.dumps(record.to_dict()))["metrics"]["archive_bytes"] == 250_000


def test_effective_verdict_is_the_latest_override() -> None:
    doc = {"id": "r0001", "created": 0.0, "status": "done", "metrics": metrics(2.0).to_dict()}
    doc["review"] = {"verdict": "rejected", "reason": "+0.020 vs floor 2.190 (r0042)", "floor": "r0042", "at": 5.0}
    plain = record_from_doc(doc)
    assert (plain.verdict, plain.verdict_reason, plain.verdict_at, plain.compared_with) == (
        "rejected",
        "+0.020 vs floor 2.190 (r0042)",
        5.0,
        "r0042",
    )
    events = [
        {"verdict": "rejected", "note": "second", "at": 9.0},
        {"verdict": "promoted", "note": "first", "at": 7.0, "user": "ana", "host": "box"},
    ]
    overridden = record_from_doc(doc, events)
    assert overridden.verdict == "rejected" and overridden.verdict_at == 9.0
    assert overridden.verdict_reason == "rejected by hand: second; review said rejected: +0.020 vs floor 2.190 (r0042)"
    assert [o.note for o in overridden.overrides] == ["first", "second"] and overridden.overrides[0].user == "ana"


def test_search_text_covers_spec_and_changes() -> None:
    record = RunRecord(
        id="r0007", created=0.0, label="Grain", spec={"encode": {"film_grain": 22}}, changed=["crf 1 -> 2"]
    )
    assert "film_grain=22" in record.search_text and "grain" in record.search_text
    assert "crf 1 -> 2" in record.search_text and "r0007" in record.search_text


def test_elapsed_and_log_tail() -> None:
    assert RunRecord(id="r0001", created=0.0, started=10.0, finished=25.5).elapsed == 15.5
    assert RunRecord(id="r0001", created=0.0, started=10.0).elapsed is None
    assert clip_log_tail("short") == "short"
    tail = clip_log_tail("a" * 10 + "b" * LOG_TAIL_LIMIT)
    assert len(tail) == LOG_TAIL_LIMIT and tail.endswith("b" * 100) and tail.startswith("…")
