"""The status line: scheduler and slots, the floor of each track, counts, and the scorer's fingerprint."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from comma_tui.lab_state import SchedulerInfo, Snapshot
from comma_tui.widgets import format as fmt
from comma_tui.widgets.colors import theme_hex
from ledger.records import short_fingerprint

SCHEDULER_MARK = {"running": "●", "paused": "⏸", "stopped": "■", "stopping": "◐", "unknown": "?"}
STATE_COLOUR = {"running": "success", "paused": "warning", "stopped": "error", "stopping": "warning"}


def scheduler_state(snapshot: Snapshot | None, scheduler: SchedulerInfo | None) -> str:
    """The scheduler's state as the status line says it: running, paused, stopped, stopping or unknown."""
    state = (scheduler or SchedulerInfo()).state
    if snapshot is not None and not snapshot.newest_only and state in ("running", "paused"):
        return "paused" if snapshot.paused else "running"  # the queue's own flag is the fresher one
    return state


def status_text(snapshot: Snapshot | None, scheduler: SchedulerInfo | None, filters: str = "") -> Text:
    """The status line's text (plain-styled; the widget colours the scheduler's state)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    info = scheduler or SchedulerInfo()
    state = scheduler_state(snapshot, scheduler)
    text.append(f"{SCHEDULER_MARK.get(state.split()[0], '?')} sched {state}", style="bold")
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
    """

    def show(self, snapshot: Snapshot | None, scheduler: SchedulerInfo | None, filters: str = "") -> None:
        """Redraw from the latest snapshot and scheduler state."""
        text = status_text(snapshot, scheduler, filters)
        colour = STATE_COLOUR.get(scheduler_state(snapshot, scheduler))
        if colour:
            text.stylize(theme_hex(self.app, colour), 0, 1)
        text.no_wrap = False
        self.update(text)
