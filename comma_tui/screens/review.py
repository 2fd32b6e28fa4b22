"""Rejection review mode: rejected runs only, newest first, each with its reason and costliest term.

`c` turns the highlighted rejection into a new variant (the new-run form, prefilled from it);
`a` queues the floor's neighbours on the axis the rejection moved (the CLI's `--around-floor`);
Enter opens its detail. The newest `LIMIT` rejections are listed: review is about recent work.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from comma_tui.lab_state import Snapshot
from comma_tui.screens.compare import COMPARE_BINDING
from comma_tui.screens.run_screen import RunScreen
from comma_tui.widgets import format as fmt
from comma_tui.widgets.key_footer import KeyFooter
from ledger import RunRecord, RunSummary, RunView, Verdict
from ledger.specdiff import IGNORED, flatten

LIMIT = 500


def rejected_newest_first(snapshot: Snapshot) -> RunView:
    """Rejected runs, the most recent verdict first."""
    table = snapshot.table
    rows = np.flatnonzero(table.is_("verdict", Verdict.REJECTED))
    when = table.arrays["verdict_at"][rows]
    when = np.where(np.isnan(when), table.arrays["finished"][rows], when)
    return table.view(rows[np.lexsort((table.numbers[rows], np.nan_to_num(when, nan=0.0)))][::-1])


def cost_cell(run: RunSummary, snapshot: Snapshot) -> str:
    """`SegNet +0.014`: the term that cost the run most against the floor it lost to."""
    floor = snapshot.find(run.compared_with)
    cost = fmt.costliest_term(run, floor)
    return f"{cost[0]} {fmt.delta(cost[1])}" if cost else ""


def neighbour_offsets(run: RunRecord, floor: RunRecord) -> str | None:
    """`encode.crf=-1,+1`: a step each way from the floor on the first number axis `run` moved from it.

    The step is half the distance the rejected run went (at least 1 on a whole-number axis), so
    the neighbours probe the ground between the floor and the rejection, and past the floor.
    None when no number axis differs.
    """
    mine, theirs = flatten(run.spec), flatten(floor.spec)
    for path, value in mine.items():
        old = theirs.get(path)
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (value, old))
        if path in IGNORED or path == "run.seed" or not numbers or value == old:
            continue
        assert isinstance(value, int | float) and isinstance(old, int | float)
        half = abs(value - old) / 2
        step = max(1, round(half)) if isinstance(value, int) and isinstance(old, int) else round(half, 6)
        return f"{path}=-{step},+{step}"
    return None


class ReviewScreen(RunScreen):
    """Rejected runs, newest first; the highlighted one's reason in full below."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,v", "app.pop_screen", "Back", id="back"),
        Binding("a", "around", "Neighbours", tooltip="Queue the floor's neighbours on the axis this run moved"),
        Binding("c", "new_run", "Variant", tooltip="Clone into a new variant: the form, prefilled"),
        Binding("enter", "detail", "Detail", tooltip="Open the run"),
        COMPARE_BINDING,
        Binding("P", "verdict('promoted')", "Promote", tooltip="Promote it by hand after all, with a note"),
        Binding("F", "score_fully", "Score fully", tooltip="Score a run rejected early in full (its kept archive)"),
    ]
    FOOTER_PRIORITY = ("pop_screen", "around", "new_run", "detail", "compare", "help", "quit", "verdict")

    def compose(self) -> ComposeResult:
        yield DataTable(id="review", cursor_type="row", zebra_stripes=True)
        yield Static(id="review-reason")
        yield KeyFooter(self.FOOTER_PRIORITY)

    def on_mount(self) -> None:
        table = self.query_one("#review", DataTable)
        table.add_column("id", key="id")
        table.add_column("score", key="score")
        table.add_column("Δ floor", key="delta")
        table.add_column("cost most", key="cost")
        table.add_column("reason", key="reason")
        self.query_one("#review-reason").border_title = "Why"
        self.lab_app.ledger_changed.subscribe(self, self._draw)
        if self.lab_app.snapshot is not None:
            self._draw(self.lab_app.snapshot)
        table.focus()

    def _draw(self, snapshot: Snapshot) -> None:
        table = self.query_one("#review", DataTable)
        keep = self.selected_run()
        rejected = rejected_newest_first(snapshot)
        table.clear()
        for run in rejected[:LIMIT]:
            table.add_row(
                f"{fmt.REJECTED} {run.id}",
                fmt.run_score(run),
                fmt.delta(snapshot.deltas.get(run.id)),
                cost_cell(run, snapshot),
                Text(run.verdict_reason, overflow="ellipsis", no_wrap=True),
                key=run.id,
            )
        more = f" (newest {LIMIT} shown)" if len(rejected) > LIMIT else ""
        table.border_title = f"Rejection review · {len(rejected)} rejected, newest first{more}"
        if keep is not None and (now := snapshot.find(keep.id)) is not None and now.verdict == Verdict.REJECTED:
            table.move_cursor(row=table.get_row_index(keep.id))
        self._show_reason()

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_reason()
        self.selection_changed()

    def on_data_table_row_selected(self, _event: DataTable.RowSelected) -> None:
        # The focused table takes Enter before the screen's binding sees it.
        self.action_detail()

    def action_around(self) -> None:
        """Queue the floor's neighbours on the axis the highlighted rejection moved."""
        if (run := self.selected_run()) is not None:
            self.lab_app.around_floor(run)

    def _show_reason(self) -> None:
        run = self.selected_run()
        reason = self.query_one("#review-reason", Static)
        if run is None:
            reason.update(Text("No rejected runs yet.", style="dim"))
            return
        text = Text.assemble((f"{run.id}: ", "bold"), run.verdict_reason or "")
        cost = cost_cell(run, self.lab_app.snapshot) if self.lab_app.snapshot else ""
        if cost:
            text.append(f"\nCost most against the floor {run.compared_with}: {cost}", style="bold")
        reason.update(text)

    def selected_run(self) -> RunSummary | None:
        """The highlighted rejected run."""
        snapshot = self.lab_app.snapshot
        table = self.query_one("#review", DataTable)
        if snapshot is None or table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return snapshot.find(key)
