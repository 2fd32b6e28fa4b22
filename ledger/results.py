"""The engine's result of a finished run, checked and turned into the fields the ledger stores.

`Ledger.record_result(run_id, result)` is the one call the engine makes when a run finishes.
`result` is a plain dict (it crosses a process boundary as JSON):

    metrics             the fields of `Metrics`, or `ScoreReport.as_dict()` as it is (required)
    stage_timings       {stage: seconds}
    scorer_fingerprint  scorer_demo  clip_fingerprint  device_kind (cpu, cuda, cuda:N, mps)
    decoder  host  artifacts  engine_version  approximate  extra  log_tail  started  finished

A key outside this list is refused (a typo would otherwise lose a field silently).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from typing import Any

from ledger.records import DEVICE_KINDS, Metrics, RunRecord, clip_log_tail

RESULT_KEYS = frozenset(
    {"metrics", "stage_timings", "scorer_fingerprint", "scorer_demo", "clip_fingerprint", "device_kind"}
    | {"decoder", "host", "artifacts", "engine_version", "approximate", "extra", "log_tail", "started", "finished"}
)


def check_result(result: Mapping[str, Any]) -> Metrics:
    """The result's metrics, after checking its keys; ValueError names what is wrong."""
    unknown = sorted(set(result) - RESULT_KEYS)
    if unknown:
        raise ValueError(f"unknown result keys {unknown}: expected some of {sorted(RESULT_KEYS)}")
    if "metrics" not in result:
        raise ValueError("a result needs its metrics")
    return Metrics.from_dict(result["metrics"])


def device_kind(name: Any) -> str | None:
    """ "cuda:1" -> "cuda"; None stays None; anything but cpu, cuda and mps is a ValueError."""
    if name is None:
        return None
    kind = str(name).split(":", 1)[0]
    if kind not in DEVICE_KINDS:
        raise ValueError(f"device_kind {name!r} is not one of {DEVICE_KINDS}")
    return kind


def result_changes(record: RunRecord, result: Mapping[str, Any], metrics: Metrics) -> dict[str, Any]:
    """The stored fields a result sets on `record`: done, finished, metrics and what scored it."""
    changes: dict[str, Any] = {
        "status": "done",
        "finished": float(result.get("finished") or time.time()),
        "metrics": metrics.to_dict(),
        "stage_timings": {str(k): float(v) for k, v in dict(result.get("stage_timings") or {}).items()},
        "scorer_fingerprint": result.get("scorer_fingerprint"),
        "scorer_demo": bool(result.get("scorer_demo", False)),
        "clip_fingerprint": result.get("clip_fingerprint"),
        "device_kind": device_kind(result.get("device_kind")),
        "decoder": result.get("decoder"),
        "host": result.get("host") or socket.gethostname(),
        "artifacts": str(result.get("artifacts") or record.artifacts),
        "engine_version": result.get("engine_version"),
        "approximate": bool(result.get("approximate", False)),
        "extra": {**record.extra, **dict(result.get("extra") or {})},
        "failure_reason": "",
        "pid": None,
        "slot": None,
    }
    if result.get("started") is not None:
        changes["started"] = float(result["started"])
    if result.get("log_tail") is not None:
        changes["log_tail"] = clip_log_tail(str(result["log_tail"]))
    return changes
