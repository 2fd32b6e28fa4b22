"""How numbers, states and verdicts read on screen: one place, so every pane says them alike.

States and verdicts carry a symbol as well as a colour, so they read in monochrome, in 256
colours and to colour-blind eyes: ★ floor, ✓ promoted, ✗ rejected, ! failed. An early verdict's
estimate reads `~24.310` wherever a score is shown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from ledger import Progress, RunRecord, RunSummary
from ledger.specdiff import brief

FLOOR = "★"
PROMOTED = "✓"
REJECTED = "✗"
ESTIMATE = "~"

STATUS_TEXT = {
    "queued": "○ queued",
    "running": "▶ running",
    "done": "done",
    "failed": "! failed",
    "cancelled": "⊘ cancelled",
    "interrupted": "↺ interrupted",
}
TERM_NAMES = {"segnet": "SegNet", "posenet": "PoseNet", "rate": "rate"}


def status_text(status: str) -> str:
    """A run's status with its symbol."""
    return STATUS_TEXT.get(status, status)


def verdict_text(run: RunRecord | RunSummary, is_floor: bool) -> str:
    """The verdict with its symbol; the current floor says so."""
    if is_floor:
        return f"{FLOOR} floor"
    if run.verdict == "promoted":
        return f"{PROMOTED} promoted"
    if run.verdict == "rejected":
        return f"{REJECTED} early" if run.estimated else f"{REJECTED} rejected"
    return ""


def verdict_class(run: RunRecord | RunSummary, is_floor: bool) -> str:
    """The style name of a run's row: floor, promoted, rejected, failed, running, quiet or plain."""
    if is_floor:
        return "floor"
    if run.status == "failed":
        return "failed"
    if run.status in ("running",):
        return "running"
    if run.status in ("cancelled", "interrupted"):
        return "quiet"
    return run.verdict or "plain"


def score(value: float | None, digits: int = 3) -> str:
    """A score, or an empty cell."""
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def run_score(run: RunRecord | RunSummary, value: float | None = None, digits: int = 3) -> str:
    """A run's score (or `value`, one of its numbers); an early estimate is marked: `~24.310`."""
    text = score(run.score if value is None else value, digits)
    return f"{ESTIMATE}{text}" if text and run.estimated else text


def delta(value: float | None, digits: int = 3) -> str:
    """A signed difference; exactly zero reads as ±0."""
    if value is None or not math.isfinite(value):
        return ""
    if abs(value) < 0.5 * 10**-digits:
        return "±0"
    return f"{value:+.{digits}f}"


def size(n: int | float | None) -> str:
    """Bytes as 812, 45.2k, 1.23M."""
    if n is None:
        return ""
    n = float(n)
    if abs(n) < 1e3:
        return f"{n:.0f}"
    for unit, div in (("k", 1e3), ("M", 1e6), ("G", 1e9)):
        value = n / div
        if abs(value) < 1e3 or unit == "G":
            return f"{value:.1f}{unit}" if abs(value) < 100 else f"{value:.0f}{unit}"
    return f"{n:.0f}"


def signed_size(n: int | None) -> str:
    """A change in bytes: +1.2k, -300."""
    if n is None:
        return ""
    return ("+" if n > 0 else "-" if n < 0 else "±") + size(abs(n))


def small(value: float | None) -> str:
    """A distortion (PoseNet, SegNet): four significant digits."""
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.4g}" if abs(value) >= 1e-4 or value == 0 else f"{value:.2e}"


def duration(seconds: float | None, unknown: str = "?") -> str:
    """Seconds as 1.5s, 42s, 3m05s, 1h02m; `unknown` when there is no sensible value."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return unknown
    if seconds < 9.95:
        return f"{seconds:.1f}s"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def home_path(path: str) -> str:
    """A path as people write it: `~/labs/main` for one under the home folder."""
    home = str(Path.home())
    return "~" + path[len(home) :] if path == home or path.startswith(home + "/") else path


#: A training step's figures the queue shows, with their short names.
LIVE = {"loss": "loss", "segnet": "seg", "posenet": "pose", "pixel": "pix", "estimate": "est"}


def progress_text(progress: Progress | None) -> str:
    """`score 6/38 batches · bound 23.91 vs floor 23.08 · 42s left`, `score` as a stage begins, or
    `starting` before the first report; a training step's latest figures after."""
    if progress is None:
        return "starting"
    if progress.total <= 0:
        return progress.stage
    detail = f" {progress.detail}" if progress.detail else ""
    left = f" · {duration(progress.eta)} left" if progress.eta is not None else ""
    figures = [f"{short} {progress.metrics[name]:.4g}" for name, short in LIVE.items() if name in progress.metrics]
    live = f" · {' '.join(figures)}" if figures else ""
    return f"{progress.stage} {progress.done}/{progress.total}{detail}{left}{live}"


def cluster(address: str, resources: Mapping[str, Sequence[float]]) -> str:
    """`ray 127.0.0.1:8265 · 3 of 8 GPUs busy` (CPUs when the cluster has no GPU)."""
    where = f"ray {address.split('://', 1)[-1]}"
    kind = "GPU" if (resources.get("GPU") or (0.0, 0.0))[1] else "CPU"
    busy, total = resources.get(kind) or (0.0, 0.0)
    return f"{where} · {busy:g} of {total:g} {kind}s busy" if total else where


def costliest_term(run: RunRecord | RunSummary, against: RunRecord | RunSummary | None) -> tuple[str, float] | None:
    """The score term that cost `run` the most against `against` (name, how much), or None."""
    mine, theirs = _terms(run), _terms(against)
    if mine is None or theirs is None:
        return None
    name = max(mine, key=lambda k: mine[k] - theirs[k])
    return TERM_NAMES[name], mine[name] - theirs[name]


def run_label(run: RunRecord | RunSummary) -> str:
    """A run's label, or what it tried when it has none: every view names an unlabelled run alike."""
    return run.label or (run.brief if isinstance(run, RunSummary) else brief(run.spec))


def _terms(run: RunRecord | RunSummary | None) -> dict[str, float] | None:
    if isinstance(run, RunSummary):
        return run.terms
    return None if run is None or run.metrics is None else run.metrics.terms
