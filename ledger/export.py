"""Runs as CSV (one column per spec axis, for a spreadsheet or pandas), JSON (every field) or
Markdown (a lab notebook's table)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ledger.records import RunRecord
from ledger.specdiff import flatten

FORMATS = ("csv", "json", "md")

_METRIC_COLUMNS = (
    "posenet",
    "segnet",
    "archive_bytes",
    "original_bytes",
    "rate",
    "segnet_term",
    "posenet_term",
    "rate_term",
    "charged_bytes",
    "charged_score",
    "pairs",
    "estimated",
    "pairs_scored",
    "score_bound",
)
_INFO_COLUMNS = (
    "scorer_fingerprint",
    "scorer_demo",
    "clip_fingerprint",
    "device_kind",
    "decoder",
    "host",
    "engine_version",
    "approximate",
    "requeued",
    "failure_reason",
    "artifacts",
)


def when(t: float | None) -> str:
    """A timestamp in local time, ISO 8601 to the second ("" when None)."""
    return "" if t is None else datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


def to_json(records: Sequence[RunRecord]) -> str:
    """Every field of every record, as a JSON list."""
    return json.dumps([r.to_dict() for r in records], indent=2, ensure_ascii=False) + "\n"


def to_csv(records: Sequence[RunRecord], deltas: Mapping[str, float] | None = None) -> str:
    """One row per run: bookkeeping, score, Δ vs floor, metrics, verdict, context, then `spec.*` columns."""
    deltas = deltas or {}
    specs = [flatten(r.spec) for r in records]
    axes = list(dict.fromkeys(k for spec in specs for k in spec))
    head = ["id", "created", "started", "finished", "track", "label", "notes", "status", "parent", "changed"]
    head += ["score", "delta_vs_floor", *_METRIC_COLUMNS, "verdict", "verdict_reason", "overridden", *_INFO_COLUMNS]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(head + [f"spec.{axis}" for axis in axes])
    for r, spec in zip(records, specs, strict=True):
        m = r.metrics
        row: list[Any] = [r.id, when(r.created), when(r.started), when(r.finished), r.track, r.label, r.notes]
        row += [r.status, r.parent or "", "; ".join(r.changed), _cell(r.score), _cell(deltas.get(r.id))]
        row += [_cell(getattr(m, c)) if m else "" for c in _METRIC_COLUMNS]
        row += [r.verdict or "", r.verdict_reason, _cell(r.overridden)]
        row += [_cell(getattr(r, c)) for c in _INFO_COLUMNS]
        row += [_cell(spec.get(axis)) for axis in axes]
        writer.writerow(row)
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def to_markdown(records: Sequence[RunRecord], deltas: Mapping[str, float] | None = None) -> str:
    """A Markdown table: id, track, label, status, score, Δ vs floor, bytes, PoseNet, SegNet, verdict, why."""
    deltas = deltas or {}
    lines = [
        "| run | track | label | status | score | Δ floor | bytes | PoseNet | SegNet | verdict | why |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in records:
        m = r.metrics
        delta = deltas.get(r.id)
        why = r.verdict_reason or r.failure_reason or ", ".join(r.changed)
        guess = "~" if r.estimated else ""  # an early verdict's estimate
        cells = [
            r.id,
            r.track,
            r.label,
            r.status,
            "" if r.score is None else f"{guess}{r.score:.3f}",
            "" if delta is None else f"{guess}{delta:+.3f}",
            "" if m is None else f"{m.total_bytes:,}",
            "" if m is None else f"{m.posenet:.5f}",
            "" if m is None else f"{m.segnet:.5f}",
            (r.verdict or "") + (" (by hand)" if r.overridden else ""),
            why,
        ]
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def export(records: Sequence[RunRecord], fmt: str, deltas: Mapping[str, float] | None = None) -> str:
    """Records in one of `FORMATS`; ValueError for any other format."""
    if fmt == "json":
        return to_json(records)
    if fmt == "csv":
        return to_csv(records, deltas)
    if fmt == "md":
        return to_markdown(records, deltas)
    raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
