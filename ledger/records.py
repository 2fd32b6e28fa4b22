"""Run records and their metrics: frozen dataclasses, and their form in the ledger files.

A record is stored as one TinyDB document whose document id is the run's number (r0042 is
document 42). The automatic verdict is stored in the document as `review`; a person's
overrides are separate events beside it (see `ledger.segments`), and the record's `verdict`,
`verdict_reason` and `verdict_at` are the effective ones: the latest override if there is one,
else the review. Metrics are written once, by `Ledger.record_result`, and never edited.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from functools import cached_property
from typing import Any

from ledger.errors import LedgerError


class RunStatus(StrEnum):
    """Where a run is in its life: queued, running, then done, failed or cancelled (interrupted may run again)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def final(self) -> bool:
        """Whether the run has ended for good (it never runs again; a retry is a new run)."""
        return self in (RunStatus.DONE, RunStatus.FAILED, RunStatus.CANCELLED)


class Job(StrEnum):
    """What a queued run's worker does: the whole run, or only score its kept archive in full."""

    RUN = "run"
    RESCORE = "rescore"  # a run rejected early, scored fully: inflate its archive, score every pair


class Verdict(StrEnum):
    """A measured run's verdict against the floor of its track."""

    PROMOTED = "promoted"
    REJECTED = "rejected"


STATUSES = tuple(RunStatus)
VERDICTS = tuple(Verdict)
DEVICE_KINDS = ("cpu", "cuda", "mps")
LOG_TAIL_LIMIT = 8000

_RUN_ID = re.compile(r"^r?0*(\d+)$", re.IGNORECASE)


def run_id(number: int) -> str:
    """The short id of run `number`: 42 -> "r0042" (five digits and more past r9999)."""
    return f"r{number:04d}"


def run_number(text: str) -> int:
    """The number of a run id; accepts "r0042", "r42" and "42". Anything else: LedgerError."""
    match = _RUN_ID.match(str(text).strip())
    if not match or int(match.group(1)) == 0:
        raise LedgerError(f"{text!r} is not a run id: run ids look like r0042; list them with comma-tui ledger list")
    return int(match.group(1))


def short_fingerprint(full: str, demo: bool) -> str:
    """A scorer fingerprint as people read it: `demo-1a2b3c4d` for the demo scorer, else 12 hex digits."""
    return f"demo-{full[:8]}" if demo else full[:12]


def clip_log_tail(text: str) -> str:
    """The last `LOG_TAIL_LIMIT` characters of a log: enough to explain a failure, never the whole log."""
    return text if len(text) <= LOG_TAIL_LIMIT else "…" + text[-(LOG_TAIL_LIMIT - 1) :]


@dataclass(frozen=True)
class Metrics:
    """What the scorer measured for one run, with the score's three terms, as the engine computed them.

    `charged_bytes` is what the submission really costs: the archive plus the files its inflate
    step reads from beside it (weights, tables), which the official score does not charge. When
    present, `charged_score` is the score with the rate term computed on those bytes, and it is
    the score that ranks runs (`ranked_score`), so nobody fools themselves.
    """

    posenet: float
    segnet: float
    archive_bytes: int
    original_bytes: int
    rate: float
    score: float
    segnet_term: float
    posenet_term: float
    rate_term: float
    charged_bytes: int | None = None
    charged_score: float | None = None
    pairs: int | None = None
    # An early verdict stopped scoring after `pairs_scored` of `pairs` pairs: the distortions and
    # scores above are estimates, and the ranked score is at least `score_bound` with `confidence`.
    estimated: bool = False
    pairs_scored: int | None = None
    score_bound: float | None = None
    confidence: float | None = None
    early_floor: float | None = None  # the floor's ranked score it was judged against

    def check(self) -> None:
        """Raise ValueError for what no scorer measures: non-finite values, bytes that cannot be."""
        for name in ("posenet", "segnet", "rate", "score", "segnet_term", "posenet_term", "rate_term"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"metric {name} is {value!r}: scores must be finite numbers")
        if self.original_bytes <= 0 or self.archive_bytes < 0:
            raise ValueError(
                f"metrics bytes must be positive: archive {self.archive_bytes}, original {self.original_bytes}"
            )
        if self.charged_bytes is not None and self.charged_bytes < self.archive_bytes:
            raise ValueError(
                f"charged_bytes {self.charged_bytes} < archive_bytes {self.archive_bytes}: it counts the archive too"
            )
        if (self.charged_bytes is None) != (self.charged_score is None):
            raise ValueError("charged_bytes and charged_score go together")
        if self.charged_score is not None and not math.isfinite(self.charged_score):
            raise ValueError(f"metric charged_score is {self.charged_score}: scores must be finite")
        self._check_estimate()

    def _check_estimate(self) -> None:
        early = (self.pairs_scored, self.score_bound, self.confidence, self.early_floor)
        if not self.estimated:
            if any(v is not None for v in early):
                raise ValueError("pairs_scored, score_bound, confidence and early_floor belong to estimated metrics")
            return
        if any(v is None for v in early) or self.pairs is None:
            raise ValueError("estimated metrics need pairs, pairs_scored, score_bound, confidence and early_floor")
        assert self.pairs_scored is not None and self.confidence is not None
        if not 0 < self.pairs_scored < self.pairs:
            raise ValueError(f"an estimate scored {self.pairs_scored} of {self.pairs} pairs: some, not all")
        if not all(math.isfinite(v) for v in (self.score_bound, self.early_floor)) or not 0 < self.confidence < 1:  # type: ignore[arg-type]
            raise ValueError(f"an estimate's bound, floor and confidence must be finite (confidence {self.confidence})")

    @property
    def ranked_score(self) -> float:
        """The score that ranks runs: the charged score when there is one."""
        return self.score if self.charged_score is None else self.charged_score

    @property
    def total_bytes(self) -> int:
        """What the submission really costs: the charged bytes when known, else the archive."""
        return self.archive_bytes if self.charged_bytes is None else self.charged_bytes

    @property
    def terms(self) -> dict[str, float]:
        """The score's three terms by name (segnet, posenet, rate)."""
        return {"segnet": self.segnet_term, "posenet": self.posenet_term, "rate": self.rate_term}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `Metrics(**d)` reads it back to an equal object."""
        return asdict(self)


@dataclass(frozen=True)
class Override:
    """A person's verdict on a run, with their note: an event beside the run, never an edit."""

    verdict: Verdict
    note: str
    at: float
    host: str = ""
    user: str = ""

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Override:
        """An override from its stored event."""
        return cls(
            verdict=Verdict(doc["verdict"]),
            note=str(doc.get("note", "")),
            at=float(doc["at"]),
            host=str(doc.get("host", "")),
            user=str(doc.get("user", "")),
        )


@dataclass(frozen=True)
class RunRecord:
    """One run of the lab: what it tried, how it went, what it scored, and its verdict.

    Treat `spec`, `changed`, `stage_timings` and `extra` as read-only: records are shared.
    """

    id: str
    created: float
    started: float | None = None
    finished: float | None = None
    track: str = "main"
    label: str = ""
    notes: str = ""
    spec: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None
    changed: list[str] = field(default_factory=list)
    status: RunStatus = RunStatus.QUEUED
    priority: int = 0
    position: int = 0
    stage_timings: dict[str, float] = field(default_factory=dict)
    metrics: Metrics | None = None
    scorer_fingerprint: str | None = None
    scorer_demo: bool = False
    clip_fingerprint: str | None = None
    device_kind: str | None = None
    decoder: str | None = None
    host: str | None = None
    artifacts: str = ""
    failure_reason: str = ""
    log_tail: str = ""
    verdict: Verdict | None = None
    verdict_reason: str = ""
    verdict_at: float | None = None
    compared_with: str | None = None
    overrides: tuple[Override, ...] = ()
    engine_version: str | None = None
    approximate: bool = False
    requeued: int = 0
    job: Job = Job.RUN
    pid: int | None = None
    slot: int | None = None
    archived: bool = False  # moved out of the views by `ledger archive`; kept on disk
    extra: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def number(self) -> int:
        """The run's number: r0042 -> 42. Sort by this, not by the id's text."""
        return run_number(self.id)

    @property
    def measured(self) -> bool:
        """Whether the run finished and has metrics."""
        return self.status == RunStatus.DONE and self.metrics is not None

    @property
    def estimated(self) -> bool:
        """Whether its metrics are an early verdict's estimates (rejected early, not scored in full)."""
        return self.metrics is not None and self.metrics.estimated

    @property
    def exact(self) -> bool:
        """Measured in full and exactly: neither approximate nor an early estimate (what floors and frontiers use)."""
        return self.measured and not self.approximate and not self.estimated

    @property
    def score(self) -> float | None:
        """The ranking score (charged when there is one), or None before it is measured."""
        return None if self.metrics is None else self.metrics.ranked_score

    @property
    def total_bytes(self) -> int | None:
        """Charged (else archive) bytes, or None before it is measured."""
        return None if self.metrics is None else self.metrics.total_bytes

    @property
    def scorer(self) -> str | None:
        """The scorer's fingerprint as people read it (`short_fingerprint`), or None before it is measured."""
        return None if self.scorer_fingerprint is None else short_fingerprint(self.scorer_fingerprint, self.scorer_demo)

    @property
    def group(self) -> tuple[str, str | None, str | None, str | None]:
        """What makes two scores comparable: track, scorer, source clip and scoring device kind."""
        return (self.track, self.scorer_fingerprint, self.clip_fingerprint, self.device_kind)

    @property
    def overridden(self) -> bool:
        """Whether a person set the verdict."""
        return bool(self.overrides)

    @property
    def elapsed(self) -> float | None:
        """Seconds from start to finish (or None when it has not both started and finished)."""
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    @cached_property
    def search_text(self) -> str:
        """Lower-case text that `/` filters search: id, track, label, notes, changes, reasons, spec."""
        spec = json.dumps(self.spec, separators=(" ", "="), ensure_ascii=False, default=str).replace('"', "")
        parts = [self.id, self.track, self.label, self.notes, self.status, self.verdict or "", self.verdict_reason]
        parts += [self.failure_reason, *self.changed, spec]
        return " ".join(parts).lower()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (the effective verdict and the overrides included)."""
        data = asdict(self)
        data["overrides"] = [asdict(o) for o in self.overrides]
        return data


#: Fields kept in the stored document (the verdict fields are derived from review + events).
_DERIVED = {"verdict", "verdict_reason", "verdict_at", "compared_with", "overrides"}
STORED_FIELDS = tuple(f.name for f in fields(RunRecord) if f.name not in _DERIVED)


def record_from_doc(doc: Mapping[str, Any], events: Iterable[Mapping[str, Any]] = ()) -> RunRecord:
    """The record of a stored document and the override events stored beside it."""
    values = {name: doc[name] for name in STORED_FIELDS if name in doc}
    if "status" in values:
        values["status"] = RunStatus(values["status"])
    if "job" in values:
        values["job"] = Job(values["job"])
    metrics = doc.get("metrics")
    values["metrics"] = None if metrics is None else Metrics(**metrics)
    overrides = tuple(sorted((Override.from_doc(e) for e in events), key=lambda o: o.at))
    review = doc.get("review") or {}
    values["compared_with"] = review.get("floor")
    if overrides:
        last = overrides[-1]
        said = f"; review said {review['verdict']}: {review['reason']}" if review.get("verdict") else ""
        values |= {"verdict": last.verdict, "verdict_reason": f"{last.verdict} by hand: {last.note}{said}"}
        values["verdict_at"] = last.at
    elif review:
        verdict = review.get("verdict")
        values |= {"verdict": Verdict(verdict) if verdict else None, "verdict_reason": review.get("reason", "")}
        values["verdict_at"] = review.get("at")
    return RunRecord(overrides=overrides, **values)
