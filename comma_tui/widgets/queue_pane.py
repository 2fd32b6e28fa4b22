"""The queue pane: running runs with a bar per stage and an ETA, then the queued runs in launch order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widget import Widget

from comma_tui.lab_state import SchedulerInfo
from comma_tui.widgets import format as fmt
from comma_tui.widgets.colors import theme_hex
from ledger import Progress, RunSummary

SHORT = {"encode": "enc", "train-data": "dat", "train": "trn", "archive": "arc", "inflate": "inf", "score": "scr"}
EIGHTHS = " ▏▎▍▌▋▊▉"
MAX_QUEUED = 60


@dataclass(frozen=True)
class QueueState:
    """What the queue pane shows."""

    running: Sequence[RunSummary] = ()
    queued: Sequence[RunSummary] = ()
    paused: bool = False
    progress: dict[str, Progress] = field(default_factory=dict)
    stages: dict[str, tuple[str, ...]] = field(default_factory=dict)  # each run's own, by id
    scheduler: SchedulerInfo | None = None

    @property
    def stopped(self) -> bool:
        """Whether no scheduler runs the queue (nothing queued will start)."""
        return self.scheduler is not None and self.scheduler.state == "stopped"

    @property
    def jobs(self) -> dict[str, tuple[str, str]]:
        """Run id -> (Ray state, why it waits), for runs on a cluster."""
        return self.scheduler.jobs if self.scheduler is not None else {}


def bar(fraction: float, width: int) -> str:
    """A bar `width` cells wide, filled to `fraction` in eighths of a cell."""
    fraction = min(1.0, max(0.0, fraction))
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (EIGHTHS[part] if part and full < width else "")
    return text.ljust(width, "·")


def stages_of(planned: Sequence[str], current: str | None) -> list[str]:
    """The stages a run goes through; an unexpected current stage is shown too."""
    stages = list(planned)
    if current and current not in stages:
        stages.insert(len(stages) - 1, current)  # e.g. a training stage, before scoring
    return stages


def stage_bars(
    planned: Sequence[str], progress: Progress | None, width: int, done: str = "green", now: str = "cyan"
) -> Text:
    """`enc ████ arc ██▌· inf ···· scr ····`: finished stages full, the current one partly."""
    current = progress.stage if progress else None
    stages = stages_of(planned, current)
    done_index = stages.index(current) if current in stages else -1
    names = [SHORT.get(s, s[:3]) for s in stages]
    cells = max(2, (width - sum(len(n) + 2 for n in names)) // len(stages))
    text = Text()
    for i, (stage, name) in enumerate(zip(stages, names, strict=True)):
        if i < done_index:
            fraction, style = 1.0, done
        elif i == done_index and progress is not None:
            fraction, style = progress.fraction, f"bold {now}"
        else:
            fraction, style = 0.0, "dim"
        text.append(f"{name} ", style="bold" if stage == current else "dim")
        text.append(bar(fraction, cells), style=style)
        text.append(" ")
    return text


class QueueBody(Widget):
    """The text of the queue, drawn for the pane's width."""

    DEFAULT_CSS = """
    QueueBody { height: auto; width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.state = QueueState()

    def render(self) -> Text:
        state, width = self.state, max(20, self.size.width)
        colours = (theme_hex(self.app, "success", "green"), theme_hex(self.app, "accent", "cyan"))
        text = Text(no_wrap=True, overflow="ellipsis")
        if state.stopped:
            text.append("■ STOPPED", style="bold reverse")
            held = " by hand" if state.scheduler is not None and state.scheduler.held else ""
            text.append(f"  the scheduler was stopped{held}: nothing runs (S starts it)\n")
        if state.paused:
            text.append("⏸ PAUSED", style="bold reverse")
            text.append("  running runs finish; nothing new starts (p resumes)\n")
        if not state.running and not state.queued:
            text.append("idle: nothing running or queued (n: new run, s: sweep)", style="dim")
            return text
        for run in state.running:
            progress = state.progress.get(run.id)
            text.append(f"▶ {run.id} ", style="bold")
            job_state, job_note = state.jobs.get(run.id, ("", ""))
            if job_state:
                text.append(f"[ray {job_state}] ", style="bold reverse" if job_note else "dim")
            text.append(fmt.progress_text(progress), style="italic")
            text.append(f"  {fmt.run_label(run)}\n")
            if job_note:
                text.append(f"  {job_note}\n", style="italic")
            text.append("  ")
            planned = state.stages.get(run.id, ())
            text.append_text(stage_bars(planned, progress, width - 3, colours[0], colours[1]))
            text.append("\n")
        for place, run in enumerate(state.queued[:MAX_QUEUED], start=1):
            prio = f" prio {run.priority:+d}" if run.priority else ""
            text.append(f"{place:>2}. {run.id} ", style="dim" if state.paused else "")
            text.append(f"{fmt.run_label(run)}{prio}\n", style="dim" if state.paused else "")
        if len(state.queued) > MAX_QUEUED:
            text.append(f"    … and {len(state.queued) - MAX_QUEUED} more queued\n", style="dim")
        text.rstrip()
        return text


class QueuePane(VerticalScroll, can_focus=False):
    """Running and queued runs; its title says the scheduler's state."""

    DEFAULT_CSS = """
    QueuePane { height: auto; }
    """

    def compose(self) -> ComposeResult:
        yield QueueBody()

    def show(self, state: QueueState) -> None:
        """Draw a new state of the queue."""
        self.query_one(QueueBody).state = state
        self.query_one(QueueBody).refresh(layout=True)
        paused = " · paused" if state.paused else ""
        stopped = " · scheduler stopped" if state.stopped else ""
        self.border_title = f"Queue · {len(state.running)} running · {len(state.queued)} queued{paused}{stopped}"
