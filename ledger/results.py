"""The result of a finished run: the one value the engine hands the ledger.

`Ledger.record_result(run_id, result)` is the one call the engine makes when a run finishes.
The engine fills a `RunResult` (its metrics computed by the scorer, the score formula included);
the ledger checks it where it enters and stores it. A result that crosses a process boundary
(a job on another machine) travels as `to_dict()` JSON and comes back through `from_dict`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ledger.records import DEVICE_KINDS, Metrics, RunRecord, RunStatus, clip_log_tail


@dataclass(frozen=True)
class RunResult:
    """What a finished run measured, and what measured it."""

    metrics: Metrics
    scorer_fingerprint: str
    clip_fingerprint: str
    device_kind: str  # cpu, cuda or mps (a device name such as cuda:1 is reduced to its kind)
    scorer_demo: bool = False
    stage_timings: Mapping[str, float] = field(default_factory=dict)
    decoder: str = ""
    host: str = ""
    artifacts: str = ""
    engine_version: str = ""
    approximate: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)
    log_tail: str = ""
    started: float | None = None
    finished: float | None = None

    def check(self) -> None:
        """Raise ValueError for a result no engine produces (bad metrics, an unknown device kind)."""
        self.metrics.check()
        device_kind(self.device_kind)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that `from_dict` reads back to an equal result."""
        data = asdict(self)
        data["stage_timings"], data["extra"] = dict(self.stage_timings), dict(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResult:
        """A result from `to_dict()`'s JSON; ValueError names a missing, unknown or malformed field."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown result fields {unknown}: expected some of {sorted(known)}")
        try:
            metrics = Metrics(**data["metrics"])
            result = cls(**{**data, "metrics": metrics})
        except (KeyError, TypeError) as exc:
            raise ValueError(f"a result needs its metrics and what measured them ({exc})") from None
        result.check()
        return result


def device_kind(name: Any) -> str:
    """ "cuda:1" -> "cuda"; anything but cpu, cuda and mps is a ValueError."""
    kind = str(name).split(":", 1)[0]
    if kind not in DEVICE_KINDS:
        raise ValueError(f"device_kind {name!r} is not one of {DEVICE_KINDS}")
    return kind


def result_changes(record: RunRecord, result: RunResult) -> dict[str, Any]:
    """The stored fields a result sets on `record`: done, finished, metrics and what scored it."""
    changes: dict[str, Any] = {
        "status": RunStatus.DONE,
        "finished": result.finished or time.time(),
        "metrics": result.metrics.to_dict(),
        "stage_timings": {str(k): float(v) for k, v in result.stage_timings.items()},
        "scorer_fingerprint": result.scorer_fingerprint,
        "scorer_demo": result.scorer_demo,
        "clip_fingerprint": result.clip_fingerprint,
        "device_kind": device_kind(result.device_kind),
        "decoder": result.decoder or None,
        "host": result.host or socket.gethostname(),
        "artifacts": result.artifacts or record.artifacts,
        "engine_version": result.engine_version or None,
        "approximate": result.approximate,
        "extra": {**record.extra, **result.extra},
        "failure_reason": "",
        "pid": None,
        "slot": None,
    }
    if result.started is not None:
        changes["started"] = result.started
    if result.log_tail:
        changes["log_tail"] = clip_log_tail(result.log_tail)
    return changes
