"""Prior / Current / Delta: one run's metrics against the run it is compared with.

One builder of aligned columns for `comma-tui ledger show` (plain lines) and the console's detail
screen (styled text). Which run is the prior is `ledger.queries.prior_of`'s answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from comma_tui.widgets import format as fmt
from ledger import Metrics, RunRecord
from ledger.queries import Prior

if TYPE_CHECKING:
    from rich.text import Text

MOST = "◀ most"
EXACT_IN_AN_ESTIMATE = ("bytes", "rate term")  # what an early verdict knows exactly


@dataclass(frozen=True)
class ComparisonRow:
    """One metric: its value before and now, the change, and whether it is the term that cost the most."""

    name: str
    prior: str
    current: str
    delta: str
    costliest: bool = False


def _bytes_delta(change: float) -> str:
    return f"{round(change):+,}" if change else "±0"


#: (name, value, how a value reads, how a change reads)
METRICS: tuple[tuple[str, Callable[[Metrics], float], Callable[[float], str], Callable[[float], str]], ...] = (
    ("score", lambda m: m.ranked_score, fmt.score, fmt.delta),
    ("bytes", lambda m: m.total_bytes, lambda v: f"{round(v):,}", _bytes_delta),
    ("PoseNet", lambda m: m.posenet, fmt.small, lambda d: fmt.delta(d, 5)),
    ("SegNet", lambda m: m.segnet, fmt.small, lambda d: fmt.delta(d, 5)),
    ("SegNet term", lambda m: m.segnet_term, fmt.score, fmt.delta),
    ("PoseNet term", lambda m: m.posenet_term, fmt.score, fmt.delta),
    ("rate term", lambda m: m.rate_term, fmt.score, fmt.delta),
)


def comparison_rows(run: RunRecord, prior: RunRecord | None) -> list[ComparisonRow]:
    """The score, bytes, distortions and the three terms of `run` against `prior` (either may be unmeasured)."""
    now, before = run.metrics, prior.metrics if prior is not None else None
    cost = fmt.costliest_term(run, prior)
    rows = []
    for name, get, show, show_change in METRICS:
        current = get(now) if now is not None else None
        old = get(before) if before is not None else None
        # An early verdict measured the distortions on some pairs only: those numbers are estimates.
        guess = fmt.ESTIMATE if run.estimated and name not in EXACT_IN_AN_ESTIMATE else ""
        change = guess + show_change(current - old) if current is not None and old is not None else ""
        costliest = cost is not None and cost[1] > 0 and name == f"{cost[0]} term"
        shown = "" if current is None else guess + show(current)
        rows.append(ComparisonRow(name, "-" if old is None else show(old), shown, change, costliest))
    return rows


def headers(run: RunRecord, prior: Prior[RunRecord] | None) -> tuple[str, str, str, str]:
    """The column titles: the prior says what it is (`Floor r0004`, `Parent r0002`)."""
    before = f"{prior.kind.title()} {prior.run.id}" if prior is not None else "Prior"
    return ("", before, f"Current {run.id}", "Delta")


def comparison_lines(run: RunRecord, prior: Prior[RunRecord] | None) -> list[str]:
    """The titles and a line per metric in aligned columns, the costliest term's change marked (the CLI's)."""
    rows = [list(headers(run, prior))]
    for row in comparison_rows(run, prior.run if prior else None):
        rows.append([row.name, row.prior, row.current, row.delta + (f" {MOST}" if row.costliest else "")])
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
        for r in rows
    ]


def comparison_text(run: RunRecord, prior: Prior[RunRecord] | None) -> Text:
    """The comparison with its titles bold and the costliest term's mark bold (the detail screen's)."""
    from rich.text import Text  # here: `ledger show` (plain lines) need not import Rich

    titles, *lines = comparison_lines(run, prior)
    text = Text()
    text.append(titles, style="bold")
    for line in lines:
        text.append("\n")
        if line.endswith(MOST):
            text.append(line.removesuffix(MOST))
            text.append(MOST, style="bold")
        else:
            text.append(line)
    return text
