"""The engine's result: checked where it enters, carried across processes as JSON, stored."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from ledger import RunRecord, RunResult
from ledger.results import device_kind, result_changes
from tests.ledger.fixtures import metrics, result


def test_device_kind() -> None:
    assert [device_kind(d) for d in ("cpu", "cuda", "cuda:3", "mps")] == ["cpu", "cuda", "cuda", "mps"]
    with pytest.raises(ValueError, match="not one of"):
        device_kind("xpu")


def test_check_refuses_what_no_engine_produces() -> None:
    result(2.0).check()
    bad_metrics = [
        replace(metrics(2.0), posenet=float("nan")),
        replace(metrics(2.0), original_bytes=0),
        replace(metrics(2.0), charged_bytes=40_000, charged_score=2.0),
        replace(metrics(2.0), charged_bytes=200_000),  # without its charged score
    ]
    for bad in bad_metrics:
        with pytest.raises(ValueError):
            replace(result(2.0), metrics=bad).check()
    with pytest.raises(ValueError, match="device_kind"):
        result(2.0, device="tpu").check()


def test_a_result_crosses_a_process_boundary_as_json() -> None:
    sent = result(2.0, extra={"post_filter": {"bytes": 41_458}}, log_tail="done\n", started=1.0, finished=2.0)
    received = RunResult.from_dict(json.loads(json.dumps(sent.to_dict())))
    assert received == sent
    with pytest.raises(ValueError, match="unknown result fields \\['scroe'\\]"):
        RunResult.from_dict({**sent.to_dict(), "scroe": 1})
    with pytest.raises(ValueError, match="needs its metrics"):
        RunResult.from_dict({"device_kind": "cpu"})
    with pytest.raises(ValueError, match="finite"):
        RunResult.from_dict({**sent.to_dict(), "metrics": {**sent.metrics.to_dict(), "score": float("inf")}})


def test_result_changes_keep_what_the_run_had() -> None:
    record = RunRecord(id="r0001", created=0.0, artifacts="/lab/runs/r0001", extra={"a": 1}, log_tail="old")
    changes = result_changes(record, result(2.0, extra={"b": 2}, started=5.0, finished=9.0, device="cuda:1"))
    assert changes["artifacts"] == "/lab/runs/r0001" and changes["extra"] == {"a": 1, "b": 2}
    assert (changes["started"], changes["finished"], changes["status"]) == (5.0, 9.0, "done")
    assert changes["device_kind"] == "cuda" and "log_tail" not in changes and changes["host"]
