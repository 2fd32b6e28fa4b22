"""One run in full: its spec (changes from the parent marked), Prior / Current / Delta, the verdict
and why, stage timings, per-pair distortions against the floor, a training run's curves (live),
the log's tail and the artifacts."""

from __future__ import annotations

import re
from typing import ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

from comma_tui.lab_state import RunDetail, Snapshot
from comma_tui.screens.compare import COMPARE_BINDING
from comma_tui.screens.kept import resume_without_restyle
from comma_tui.screens.run_screen import RUN_BINDINGS, RunScreen
from comma_tui.widgets import format as fmt
from comma_tui.widgets.comparison import comparison_text
from comma_tui.widgets.curve_plot import CurvePlot
from comma_tui.widgets.key_footer import KeyFooter
from comma_tui.widgets.key_values import KeyValues
from comma_tui.widgets.pair_plot import PairPlot
from comma_tui.widgets.panes import Pane, PaneColumn, PaneRow
from ledger import RunRecord, RunSummary
from ledger.specdiff import flatten

LIVE_SECONDS = 1.0
FAILED_LOG_LINES = 6
_STAGE_START = re.compile(r"\bstage ([\w-]+): start\b")
_STAGE_DONE = re.compile(r"\bstage ([\w-]+): done\b")


def spec_table(run: RunRecord) -> KeyValues:
    """The spec by section; axes changed from the parent are marked ● with the parent's value."""
    changed = {}
    for entry in run.changed:
        name, _, rest = entry.partition(" ")
        changed[name] = rest.split(" -> ")[0]
    rows: list[tuple[Text, Text]] = []
    section = None
    for path, value in flatten(run.spec).items():
        head, _, key = path.rpartition(".")
        if head != section:
            section = head
            rows.append((Text(f"[{head}]", style="bold"), Text()))
        hit = next((n for n in changed if n in (path, key)), None)
        shown = Text(str(value))
        if hit is not None:
            shown.stylize("bold")
            shown.append(f"  (parent {changed[hit]})", style="italic")
            rows.append((Text(f"● {key}", style="bold reverse"), shown))
        else:
            rows.append((Text(f"  {key}", style="dim"), shown))
    return KeyValues(rows)


def failed_stage(log: str) -> str | None:
    """The stage a run's log says was running when it stopped: started, never done."""
    started = [m.group(1) for m in _STAGE_START.finditer(log)]
    finished = {m.group(1) for m in _STAGE_DONE.finditer(log)}
    unfinished = [stage for stage in started if stage not in finished]
    return unfinished[-1] if unfinished else None


def verdict_text(detail: RunDetail) -> Text:
    """The verdict and its reason; for a rejection, what it lost to and which term cost most.

    A failed run says the stage it died in and the last lines of its log.
    """
    run = detail.run
    prior = detail.prior.run if detail.prior is not None else None
    text = Text()
    if run.status == "failed":
        stage = failed_stage(detail.log_tail)
        text.append(f"! failed{f' in stage {stage}' if stage else ''}: ", style="bold")
        text.append(run.failure_reason or "no reason recorded")
        lines = [line for line in detail.log_tail.splitlines() if line.strip()][-FAILED_LOG_LINES:]
        if lines:
            text.append("\nLast log lines:\n", style="bold")
            text.append("\n".join(lines), style="dim")
        return text
    if run.verdict is None:
        text.append(f"{fmt.status_text(run.status)}: no verdict until it is measured", style="italic")
        return text
    symbol = fmt.PROMOTED if run.verdict == "promoted" else fmt.REJECTED
    text.append(f"{symbol} {run.verdict}", style="bold")
    text.append(f": {run.verdict_reason}")
    if run.estimated:
        text.append(
            f"\n{fmt.ESTIMATE} Its numbers are estimates from {run.metrics.pairs_scored if run.metrics else '?'} "
            f"of {run.metrics.pairs if run.metrics else '?'} pairs: F scores it fully (exact score, reviewed again).",
            style="italic",
        )
    if run.verdict == "rejected" and prior is not None and prior.metrics is not None:
        text.append(f"\nLost to {prior.id} (floor {fmt.score(prior.score)}).", style="bold")
        cost = fmt.costliest_term(run, prior)
        if cost is not None and cost[1] > 0:
            text.append(f" The {cost[0]} term cost the most: {fmt.delta(cost[1])}.")
    return text


def timings_text(run: RunRecord) -> Text:
    """`encode 12.1s · archive 0s · inflate 3.2s · score 20s · total 35s`."""
    if not run.stage_timings:
        return Text("no stage timings yet", style="dim")
    parts = [f"{stage} {fmt.duration(seconds)}" for stage, seconds in run.stage_timings.items()]
    parts.append(f"total {fmt.duration(sum(run.stage_timings.values()))}")
    return Text(" · ".join(parts))


class RunDetailScreen(RunScreen):
    """The detail of one run; Escape goes back. Keys act on this run."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="back"),
        COMPARE_BINDING,
        *RUN_BINDINGS,
    ]
    #: Back, the frames, then the way out and help before the run keys: at 80 columns they must stay.
    FOOTER_PRIORITY = (
        "pop_screen",
        "compare",
        "quit",
        "help",
        *(action for action in RunScreen.FOOTER_PRIORITY if action not in ("quit", "help")),
    )

    class Loaded(Message):
        """The run's detail was read."""

        def __init__(self, detail: RunDetail) -> None:
            self.detail = detail
            super().__init__()

    class LogRead(Message):
        """A running run's log tail (and training curve) was read again."""

        def __init__(self, run: RunRecord, text: str, curve: tuple[dict[str, float], ...]) -> None:
            self.run = run
            self.text = text
            self.curve = curve
            super().__init__()

    def __init__(self, detail: RunDetail) -> None:
        super().__init__()
        self.detail = detail
        self._summary = RunSummary.of(detail.run)  # made once per read: every key asks which keys apply to it

    @property
    def run_id(self) -> str:
        """The run shown."""
        return self.detail.run.id

    def show(self, detail: RunDetail) -> None:
        """Show another run, read already (the app keeps one detail screen and opens it with a run read)."""
        if not self.is_mounted:  # `on_mount` draws it
            self.detail, self._summary = detail, RunSummary.of(detail.run)
            return
        body = self.query_one("#detail-body", VerticalScroll)
        body.scroll_home(animate=False)
        body.focus()
        self._draw(detail)

    def compose(self) -> ComposeResult:
        yield Pane(id="detail-title")
        with VerticalScroll(id="detail-body"):
            with PaneRow(id="detail-top"):
                # The comparison first: on a narrow terminal it stacks above the (long) spec.
                with PaneColumn(id="detail-right"):
                    yield Pane(id="delta")
                    yield Pane(id="verdict")
                    yield Pane(id="timings")
                yield Pane(id="spec")
            with PaneRow(id="pairs"):
                yield PairPlot("PoseNet", id="posenet-plot")
                yield PairPlot("SegNet", id="segnet-plot")
            yield CurvePlot(id="curve-plot")
            yield Pane(id="log")
            yield Pane(id="artifacts")
        yield KeyFooter(self.FOOTER_PRIORITY)

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        resume_without_restyle(self, event)

    def on_mount(self) -> None:
        if not self.app.is_running:  # built unseen as the app closed: its children were never mounted
            return
        for widget_id, title in (("spec", "Spec"), ("delta", "Prior / Current / Delta"), ("verdict", "Verdict")):
            self.query_one(f"#{widget_id}").border_title = title
        self.query_one("#timings").border_title = "Stage timings"
        self.query_one("#log").border_title = "Log tail"
        self.query_one("#artifacts").border_title = "Artifacts"
        # The body takes the keys (arrows, page up/down, home/end scroll it).
        self.query_one("#detail-body", VerticalScroll).focus()
        self.lab_app.ledger_changed.subscribe(self, self._on_ledger)
        self.set_interval(LIVE_SECONDS, self._live)
        self._draw(self.detail)

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False)
    def load(self) -> None:
        """Read the run, its prior, per-pair distortions and log tail."""
        self.post_message(self.Loaded(self.lab_app.client.detail(self.run_id)))

    def _on_ledger(self, snapshot: Snapshot) -> None:
        current = snapshot.find(self.run_id)
        if self.is_current and current not in (None, self._summary):
            self.load()

    def _live(self) -> None:
        # While a run works only its log moves between ledger changes (which reload the rest).
        if self.is_current and self.detail.run.status == "running":
            self.load_log(self.detail.run)

    @work(thread=True, exclusive=True, group="detail-log", exit_on_error=False)
    def load_log(self, run: RunRecord) -> None:
        """Read the run's log tail and curve again."""
        client = self.lab_app.client
        self.post_message(self.LogRead(run, client.log_tail(run), client.curve(run)))

    @on(LogRead)
    def _show_log(self, message: LogRead) -> None:
        if message.run == self.detail.run:  # not a late answer for an older state
            self._draw_log(message.run, message.text)
            self.query_one("#curve-plot", CurvePlot).show(message.curve, message.run.status == "running")

    def _draw_log(self, run: RunRecord, text: str) -> None:
        log = self.query_one("#log", Static)
        log.border_title = "Log tail · live" if run.status == "running" else "Log tail"
        log.update(Text(text or "(no log yet)", no_wrap=True, overflow="ellipsis"))

    @on(Loaded)
    def _reloaded(self, message: Loaded) -> None:
        if message.detail.run.id == self.run_id:  # not a late answer for the run shown before
            self._draw(message.detail)

    def _draw(self, detail: RunDetail) -> None:
        self.detail = detail
        run = detail.run
        self._summary = RunSummary.of(run)
        prior = detail.prior.run if detail.prior is not None else None
        label = f" · {run.label}" if run.label else ""
        verdict = f" · {fmt.verdict_text(run, False)}" if run.verdict else ""
        self.query_one("#detail-title", Static).update(
            Text.assemble((run.id, "bold"), f" · {run.track}{label} · {fmt.status_text(run.status)}{verdict}")
        )
        parent = f" · ● changed from parent {run.parent}" if run.parent else ""
        self.query_one("#spec", Static).border_title = f"Spec{parent}"
        self.query_one("#spec", Static).update(spec_table(run))
        self.query_one("#delta", Static).update(comparison_text(run, detail.prior))
        self.query_one("#verdict", Static).update(verdict_text(detail))
        self.query_one("#timings", Static).update(timings_text(run))
        names = (run.id, prior.id if prior else "")
        pp, prior_pp = detail.per_pair, detail.prior_per_pair
        self.query_one("#posenet-plot", PairPlot).show(
            pp.posenet if pp else None, prior_pp.posenet if prior_pp else None, names
        )
        self.query_one("#segnet-plot", PairPlot).show(
            pp.segnet if pp else None, prior_pp.segnet if prior_pp else None, names
        )
        self.query_one("#curve-plot", CurvePlot).show(detail.curve, run.status == "running")
        self._draw_log(run, detail.log_tail)
        artifacts = fmt.home_path(detail.artifacts) if detail.artifacts else "(none)"
        self.query_one("#artifacts", Static).update(Text(artifacts))
        self.selection_changed()

    def selected_run(self) -> RunSummary | None:
        """The run shown."""
        return self._summary
