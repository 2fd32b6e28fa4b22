"""A run in a few columns: what lists, floors, counts and plots need, without its spec or log.

`RunSummary`'s fields are the summary's columns, declared once. Each says how it is stored
(`kind`) and how it is read off a full `RunRecord` (`of`). A segment's summary holds these
columns for its runs (`ledger.summary_file`), a lab's is a `ledger.table.SummaryTable`. To add a
column, add a field here: every summary file is rebuilt from its records the next time it is
read, because the columns are part of what a summary file must match.

Kinds: `int`; `float` (never None); `float?` and `int?` (None kept as NaN); `bool`; `category`
(a short text from few values: a code into a list of them); `text` (any text); `run` (a run id,
kept as its number, None as 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from ledger.records import RunRecord, RunStatus, Verdict, run_id, run_number
from ledger.specdiff import brief

KINDS = ("int", "float", "float?", "int?", "bool", "category", "text", "run")


def column(kind: str, of: Callable[[RunRecord], Any], parse: Callable[[Any], Any] | None = None) -> Any:
    """Declare a summary column: how it is stored, how it is read off a full record, and (for a
    category of an enum) how a stored value becomes the field's type again."""
    assert kind in KINDS, kind
    return field(metadata={"kind": kind, "of": of, "parse": parse})


def _metric(name: str) -> Callable[[RunRecord], float | None]:
    return lambda r: None if r.metrics is None else getattr(r.metrics, name)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One run's summary row. Named like `RunRecord`'s fields, so a summary reads like its record."""

    number: int = column("int", lambda r: r.number)
    track: str = column("category", lambda r: r.track)
    label: str = column("text", lambda r: r.label)
    brief: str = column("text", lambda r: brief(r.spec))
    status: RunStatus = column("category", lambda r: r.status, RunStatus)  # noqa: RUF009 (a field)
    created: float = column("float", lambda r: r.created)
    started: float | None = column("float?", lambda r: r.started)
    finished: float | None = column("float?", lambda r: r.finished)
    parent: str | None = column("run", lambda r: r.parent)
    priority: int = column("int", lambda r: r.priority)
    position: int = column("int", lambda r: r.position)
    requeued: int = column("int", lambda r: r.requeued)
    verdict: Verdict | None = column("category", lambda r: r.verdict, Verdict)  # noqa: RUF009 (a field)
    verdict_at: float | None = column("float?", lambda r: r.verdict_at)
    verdict_reason: str = column("text", lambda r: r.verdict_reason)
    compared_with: str | None = column("run", lambda r: r.compared_with)
    overridden: bool = column("bool", lambda r: r.overridden)
    approximate: bool = column("bool", lambda r: r.approximate)
    estimated: bool = column("bool", lambda r: r.estimated)  # an early verdict's estimate (see `Metrics`)
    score: float | None = column("float?", lambda r: r.score)
    total_bytes: int | None = column("int?", lambda r: r.total_bytes)
    posenet: float | None = column("float?", _metric("posenet"))
    segnet: float | None = column("float?", _metric("segnet"))
    segnet_term: float | None = column("float?", _metric("segnet_term"))
    posenet_term: float | None = column("float?", _metric("posenet_term"))
    rate_term: float | None = column("float?", _metric("rate_term"))
    scorer_fingerprint: str | None = column("category", lambda r: r.scorer_fingerprint)
    scorer_demo: bool = column("bool", lambda r: r.scorer_demo)
    clip_fingerprint: str | None = column("category", lambda r: r.clip_fingerprint)
    device_kind: str | None = column("category", lambda r: r.device_kind)
    archived: bool = column("bool", lambda r: r.archived)

    @classmethod
    def of(cls, record: RunRecord) -> RunSummary:
        """The summary of a full record."""
        return cls(**{c.name: c.of(record) for c in COLUMNS})

    @property
    def id(self) -> str:
        """The run's id: 42 -> "r0042"."""
        return run_id(self.number)

    @property
    def measured(self) -> bool:
        """Whether the run finished and has metrics (as `RunRecord.measured`)."""
        return self.status == RunStatus.DONE and self.score is not None

    @property
    def exact(self) -> bool:
        """Measured in full and exactly: neither approximate nor an early estimate (what floors and frontiers use)."""
        return self.measured and not self.approximate and not self.estimated

    @property
    def terms(self) -> dict[str, float] | None:
        """The score's three terms by name (segnet, posenet, rate), or None before it is measured."""
        if self.segnet_term is None or self.posenet_term is None or self.rate_term is None:
            return None
        return {"segnet": self.segnet_term, "posenet": self.posenet_term, "rate": self.rate_term}


@dataclass(frozen=True)
class Column:
    """One summary column: its name, how it is stored, and how it is read off a full record."""

    name: str
    kind: str
    of: Callable[[RunRecord], Any]
    parse: Callable[[Any], Any] | None = None

    def stored(self, value: Any) -> Any:
        """The value as its column holds it (a category or a text stays a str; see `ledger.table`)."""
        if self.kind in ("float?", "int?"):
            return math.nan if value is None else float(value)
        if self.kind == "run":
            return 0 if value is None else run_number(value)
        return value

    def value(self, stored: Any) -> Any:
        """The Python value of a stored number (the inverse of `stored`, for numeric kinds)."""
        if self.kind == "int":
            return int(stored)
        if self.kind == "float":
            return float(stored)
        if self.kind == "bool":
            return bool(stored)
        if self.kind == "run":
            return run_id(int(stored)) if stored else None
        if math.isnan(stored):
            return None
        return int(stored) if self.kind == "int?" else float(stored)


COLUMNS: tuple[Column, ...] = tuple(Column(f.name, **f.metadata) for f in fields(RunSummary))
