"""The status line: what is wrong (if anything), the lab, the scheduler, the floors, counts and the scorer."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from comma_tui.lab_state import SchedulerInfo, Snapshot
from comma_tui.widgets import format as fmt
from comma_tui.widgets.colors import theme_hex
from ledger.records import short_fingerprint

SCHEDULER_MARK = {"running": "●", "paused": "⏸", "stopped": "■", "stopping": "◐", "unknown": "?"}
STATE_COLOUR = {"running": "success", "paused": "warning", "stopped": "error", "stopping": "warning"}
LAB_WIDTH = 32


def lab_text(lab: str, width: int = LAB_WIDTH) -> str:
    """The lab's folder as people write it (`~/labs/main`), its tail when it is long."""
    shown = fmt.home_path(lab)
    return shown if len(shown) <= width else "…" + shown[-(width - 1) :]


def scheduler_state(snapshot: Snapshot | None, scheduler: SchedulerInfo | None) -> str:
    """The scheduler's state as the line says it; the queue's own paused flag is the fresher one."""
    state = (scheduler or SchedulerInfo()).state
    if snapshot is not None and not snapshot.newest_only and state in ("running", "paused"):
        return "paused" if snapshot.paused else "running"  # the queue's own flag is the fresher one
    return state


def status_text(
    snapshot: Snapshot | None,
    scheduler: SchedulerInfo | None,
    filters: str = "",
    lab: str = "",
    problems: Sequence[str] = (),
    mark_style: str = "",
) -> Text:
    """The status line's text; `mark_style` colours the scheduler's mark (the widget picks it from the theme)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    for problem in problems:
        text.append(f"⚠ {problem}", style="bold")
        text.append("  │ ")
    if lab:
        text.append(f"{lab_text(lab)}  │ ")
    info = scheduler or SchedulerInfo()
    state = scheduler_state(snapshot, scheduler)
    text.append(SCHEDULER_MARK.get(state, "?"), style=f"bold {mark_style}".strip())
    text.append(f" sched {state}", style="bold")
    if state == "stopped":
        text.append(" (stopped by hand; S starts it)" if info.held else " (S starts it)")
    if info.slots:
        text.append(f" · {info.slots} slot{'s' if info.slots != 1 else ''}")
    if info.address:
        text.append(f"  │ {fmt.cluster(info.address, info.resources)}")
    if snapshot is None or snapshot.newest_only:
        text.append("  │ loading the ledger…")
        return text
    for track, floor in snapshot.floors.items():
        text.append(f"  │ {fmt.FLOOR} {track} ")
        text.append(fmt.score(floor.score), style="bold")
        text.append(f" {floor.id}")
    c = snapshot.counts
    text.append(
        f"  │ {c.measured} measured · {fmt.PROMOTED}{c.promoted} promoted · "
        f"{fmt.REJECTED}{c.rejected} rejected · !{c.failed} failed"
    )
    for line in info.autopilots:
        text.append(f"  │ {line}", style="bold")
    if snapshot.scorer:
        text.append(f"  │ scorer {short_fingerprint(snapshot.scorer, snapshot.scorer_demo)}")
    if filters:
        text.append(f"  │ filter: {filters}", style="italic")
    return text


class StatusLine(Static):
    """One or two lines at the bottom of the main screen."""

    DEFAULT_CSS = """
    StatusLine { height: auto; max-height: 2; background: $panel; color: $foreground; padding: 0 1; }
    StatusLine.-problem { background: $error 30%; }
    """

    _lines = -1  # the lines shown, as `show` last laid them out (-1: unknown)

    def on_resize(self) -> None:
        self._lines = -1  # laid out anew at another width: the next `show` lays out again

    def show(
        self,
        snapshot: Snapshot | None,
        scheduler: SchedulerInfo | None,
        filters: str = "",
        lab: str = "",
        problems: Sequence[str] = (),
    ) -> None:
        """Redraw from the latest snapshot, scheduler state and problems."""
        colour = STATE_COLOUR.get(scheduler_state(snapshot, scheduler))
        mark_style = theme_hex(self.app, colour) if colour else ""
        text = status_text(snapshot, scheduler, filters, lab, problems, mark_style)
        text.no_wrap = False
        self.set_class(bool(problems), "-problem")
        # Its height follows its lines (one or two): lay the screen out again only when that changes.
        lines = min(2, len(text.wrap(self.app.console, max(1, self.content_size.width))))
        self.update(text, layout=lines != self._lines)
        self._lines = lines
