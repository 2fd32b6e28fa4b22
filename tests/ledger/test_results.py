"""The engine's result dict: keys checked, devices normalised, fields derived."""

from __future__ import annotations

import pytest

from ledger import RunRecord
from ledger.results import check_result, device_kind, result_changes
from tests.ledger.fixtures import result


def test_device_kind() -> None:
    assert [device_kind(d) for d in ("cpu", "cuda", "cuda:3", "mps", None)] == ["cpu", "cuda", "cuda", "mps", None]
    with pytest.raises(ValueError, match="not one of"):
        device_kind("xpu")


def test_check_result() -> None:
    assert check_result(result(2.0)).score == 2.0
    with pytest.raises(ValueError, match="unknown result keys \\['pairs'\\]"):
        check_result({**result(2.0), "pairs": 600})
    with pytest.raises(ValueError, match="needs its metrics"):
        check_result({})


def test_result_changes_keep_what_the_run_had() -> None:
    record = RunRecord(id="r0001", created=0.0, artifacts="/lab/runs/r0001", extra={"a": 1}, log_tail="old")
    payload = result(2.0, extra={"b": 2}, started=5.0, finished=9.0)
    changes = result_changes(record, payload, check_result(payload))
    assert changes["artifacts"] == "/lab/runs/r0001" and changes["extra"] == {"a": 1, "b": 2}
    assert (changes["started"], changes["finished"], changes["status"]) == (5.0, 9.0, "done")
    assert "log_tail" not in changes and changes["host"]


def test_the_engines_result_shape_is_accepted() -> None:
    """The dict `engine.runs.pipeline.RunResult.ledger_result()` returns, written out here (no torch)."""
    metrics = {"posenet": 0.04, "segnet": 0.003, "archive_bytes": 250_000, "original_bytes": 1_000_000}
    metrics |= {"rate": 0.25, "score": 7.18, "segnet_term": 0.3, "posenet_term": 0.63, "rate_term": 6.25}
    metrics |= {"charged_bytes": 250_000, "charged_score": 7.18}
    payload = {"metrics": metrics, "stage_timings": {"encode": 3.0}, "scorer_fingerprint": "f" * 64}
    payload |= {"scorer_demo": True, "clip_fingerprint": "c" * 16, "device_kind": "cpu", "decoder": "PyAV 14"}
    payload |= {"host": "box", "artifacts": "/lab/runs/r0001", "engine_version": "0.1.0", "approximate": False}
    payload |= {"extra": {}, "log_tail": "done\n"}
    parsed = check_result(payload)
    assert parsed.ranked_score == 7.18 and parsed.total_bytes == 250_000
    record = RunRecord(id="r0001", created=0.0)
    changes = result_changes(record, payload, parsed)
    assert changes["scorer_demo"] is True and changes["log_tail"] == "done\n"
