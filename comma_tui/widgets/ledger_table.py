"""The ledger pane: every run as a row, with a cursor, sortable by column.

It is a Line API table rather than a `DataTable`: a DataTable measures every cell of every row
whenever rows are added (about 1.5 s for 10,000 runs, on every reload), while this table pages
through the runs' summaries (a `RunView`: rows in their order, read one at a time) and formats
only the rows on screen, so a 100,000-run ledger reloads, sorts and scrolls at the speed of a
30-run one: a sort is an array sort of one column. Columns that do not fit a narrow terminal
are dropped, least useful first; the label takes whatever width is left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from comma_tui.widgets import format as fmt
from ledger import Deltas, RunSummary, RunView, SummaryTable, run_number
from ledger.queries import order, sort_values


@dataclass(frozen=True)
class Column:
    """One column: title, width, alignment, its sort key, and when it is dropped (higher: sooner)."""

    key: str
    title: str
    width: int
    right: bool = False
    drop: int = 0


COLUMNS: tuple[Column, ...] = (
    Column("id", "id", 7),
    Column("track", "track", 7, drop=3),
    Column("label", "label", 0),
    Column("status", "status", max(len(text) for text in fmt.STATUS_TEXT.values())),
    Column("score", "score", 7, right=True),
    Column("delta", "Δ floor", 8, right=True),
    Column("bytes", "bytes", 7, right=True, drop=1),
    Column("posenet", "PoseNet", 8, right=True, drop=2),
    Column("segnet", "SegNet", 8, right=True, drop=2),
    Column("verdict", "verdict", 10),
)
SORTABLE = tuple(c.key for c in COLUMNS)
MIN_LABEL = 14  # below this a run's label says too little: columns go first


class LedgerTable(ScrollView, can_focus=True):
    """A table of runs. Give it records with `set_runs`; read the run under the cursor with `current`."""

    DEFAULT_CSS = """
    LedgerTable {
        background: $surface;
        overflow-x: hidden;
        & > .ledger-table--header { background: $panel; color: $foreground; text-style: bold; }
        & > .ledger-table--cursor { background: $block-cursor-blurred-background; }
        &:focus > .ledger-table--cursor {
            background: $block-cursor-background; color: $block-cursor-foreground; text-style: bold;
        }
        & > .ledger-table--floor { color: $success; text-style: bold; }
        & > .ledger-table--promoted { color: $success; }
        & > .ledger-table--rejected { color: $text-muted; }
        & > .ledger-table--failed { color: $error; }
        & > .ledger-table--running { color: $accent; }
        & > .ledger-table--quiet { color: $text-disabled; }
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "ledger-table--header",
        "ledger-table--cursor",
        "ledger-table--floor",
        "ledger-table--promoted",
        "ledger-table--rejected",
        "ledger-table--failed",
        "ledger-table--running",
        "ledger-table--quiet",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "jump(0)", "First", show=False),
        Binding("end,G", "jump(-1)", "Last", show=False),
        Binding("o", "sort_next", "Sort", tooltip="Sort by the next column", id="sort"),
        Binding("O", "sort_reverse", "Reverse", show=False, tooltip="Reverse the sort", id="sort-reverse"),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, repaint=False)
    sort_key: reactive[str] = reactive("id")
    sort_reverse: reactive[bool] = reactive(True)

    class Highlighted(Message):
        """The cursor moved to another run (or to none)."""

        def __init__(self, run: RunSummary | None) -> None:
            self.run = run
            super().__init__()

    class Marked(Message):
        """Runs were marked or unmarked (space, escape)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._runs = SummaryTable.of([]).view()
        self._deltas: Deltas | None = None
        self._floor_ids: set[str] = set()
        self._cells: dict[int, tuple[list[str], str]] = {}
        self._columns: list[tuple[Column, int]] = []
        self._highlighted: str | None = None
        self._current: tuple[int, RunSummary] | None = None  # the cursor's row and its summary, read once
        self._drawn: tuple[int, int] = (0, 0)  # the cursor and the scroll as last drawn
        self.marked: dict[str, RunSummary] = {}
        #: What the table says when it has no row (no runs yet, or a filter that matches none).
        self.empty_text = ""
        self._styles: dict[str, Style] = {}  # read once per paint (`render_lines`)

    # Data.

    @property
    def runs(self) -> Sequence[RunSummary]:
        """The rows, in their current order."""
        return self._runs

    @property
    def current(self) -> RunSummary | None:
        """The run under the cursor (every key asks which keys apply to it: it is read once per row)."""
        cursor = self.cursor
        if not 0 <= cursor < len(self._runs):
            return None
        if self._current is None or self._current[0] != cursor:
            self._current = (cursor, self._runs[cursor])
        return self._current[1]

    def set_runs(self, runs: RunView, deltas: Deltas, floor_ids: set[str]) -> None:
        """Show these runs (sorted by the table's sort), keeping the cursor on the same run."""
        keep = self.current.id if self.current is not None else None
        self._deltas, self._floor_ids = deltas, floor_ids
        self._runs, self._current = self._sorted(runs), None
        self._cells.clear()
        self._set_height(len(self._runs) + 1)
        if keep is None or not self.select(keep):
            self.cursor = min(self.cursor, max(0, len(self._runs) - 1)) if keep else 0
        self.refresh()

    def select(self, run_id: str) -> bool:
        """Move the cursor to a run; False when it is not shown."""
        row = self._runs.table.index_of(run_number(run_id))
        at = np.flatnonzero(self._runs.rows == row) if row is not None else np.empty(0, np.int64)
        if not len(at):
            return False
        self.cursor = int(at[0])
        return True

    def _sorted(self, runs: RunView) -> RunView:
        table = runs.table
        deltas = self._deltas  # compared with None, never tested for truth: its len counts every run
        values = deltas.column if self.sort_key == "delta" and deltas is not None else sort_values(table, self.sort_key)
        # Runs without a value (no score yet) stay together at the end, newest first.
        return table.view(order(table, runs.rows, values, self.sort_reverse, empty_newest_first=True))

    def _resort(self) -> None:
        if self._deltas is not None:
            self.set_runs(self._runs, self._deltas, self._floor_ids)
        self.border_subtitle = f"{self.sort_key} {'▼' if self.sort_reverse else '▲'} (o: sort)"

    def watch_sort_key(self) -> None:
        self._resort()

    def watch_sort_reverse(self) -> None:
        self._resort()

    # Marks (several runs for cancel and retry).

    def marked_runs(self) -> list[RunSummary]:
        """The marked runs, in the table's order (found by their rows, not by reading every run)."""
        table = self._runs.table
        rows = [row for run_id in self.marked if (row := table.index_of(run_number(run_id))) is not None]
        return [self._runs[int(i)] for i in np.flatnonzero(np.isin(self._runs.rows, rows))]

    def toggle_mark(self) -> None:
        """Mark the run under the cursor (or unmark it) and move down."""
        run = self.current
        if run is None:
            return
        if self.marked.pop(run.id, None) is None:
            self.marked[run.id] = run
        self._cells.clear()
        self.action_cursor(1)
        self.refresh()
        self.post_message(self.Marked())

    def clear_marks(self) -> None:
        """Unmark every run."""
        if self.marked:
            self.marked.clear()
            self._cells.clear()
            self.refresh()
            self.post_message(self.Marked())

    def keep_marks(self, table: SummaryTable) -> None:
        """Keep the marks on runs that still exist, with their new summaries."""
        rows = {run_id: table.index_of(run_number(run_id)) for run_id in self.marked}
        self.marked = {run_id: table.row(row) for run_id, row in rows.items() if row is not None}

    # Cursor.

    def watch_cursor(self, cursor: int) -> None:
        count = len(self._runs)
        if count and not 0 <= cursor < count:
            self.cursor = max(0, min(cursor, count - 1))
            return
        self._scroll_to_cursor()
        self._refresh_cursor()
        run = self.current
        run_id = run.id if run else None
        if run_id != self._highlighted:
            self._highlighted = run_id
            self.post_message(self.Highlighted(run))

    def _refresh_cursor(self) -> None:
        # Within the page only the rows the cursor left and reached change: repaint those two lines.
        drawn, self._drawn = self._drawn, (self.cursor, round(self.scroll_y))
        if drawn[1] != self._drawn[1]:
            self.refresh()
            return
        for row in {drawn[0], self.cursor}:
            self.refresh_line(row + 1)  # line 0 is the header

    def _rows_visible(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _scroll_to_cursor(self) -> None:
        top, rows = round(self.scroll_y), self._rows_visible()
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + rows:
            self.scroll_to(y=self.cursor - rows + 1, animate=False, immediate=True)

    def action_cursor(self, step: int) -> None:
        """Move the cursor by `step` rows."""
        if self._runs:
            self.cursor = max(0, min(len(self._runs) - 1, self.cursor + step))

    def action_page(self, pages: int) -> None:
        """Move the cursor a screenful up or down."""
        self.action_cursor(pages * self._rows_visible())

    def action_jump(self, row: int) -> None:
        """Move the cursor to the first (0) or last (-1) row."""
        if self._runs:
            self.cursor = row % len(self._runs)

    def action_sort_next(self) -> None:
        """Sort by the next column (scores ascending, ids newest first)."""
        keys = [c.key for c, _ in self._columns] or list(SORTABLE)
        following = keys[(keys.index(self.sort_key) + 1) % len(keys)] if self.sort_key in keys else keys[0]
        self.sort_by(following)

    def action_sort_reverse(self) -> None:
        """Reverse the sort."""
        self.sort_reverse = not self.sort_reverse

    def sort_by(self, key: str) -> None:
        """Sort by a column (again: the other way); lower-is-better numbers ascending, ids newest first."""
        if key == self.sort_key:
            self.sort_reverse = not self.sort_reverse
            return
        self.set_reactive(LedgerTable.sort_reverse, key in ("id", "verdict", "status"))
        self.sort_key = key

    async def _on_click(self, event: events.Click) -> None:
        if event.y == 0:
            x = 0
            for column, width in self._columns:
                if x <= event.x < x + width + 1:
                    self.sort_by(column.key)
                    return
                x += width + 1
            return
        row = round(self.scroll_y) + event.y - 1
        if 0 <= row < len(self._runs):
            self.cursor = row

    # Drawing.

    def _set_height(self, lines: int) -> None:
        """Scroll over `lines` lines (the header and the rows).

        The virtual size is a layout attribute: setting it relays out the whole screen and paints it
        a second time. When the vertical scrollbar stays shown (or hidden), nothing moves: the bar
        is told its new range directly, as the layout would, and the table repaints alone.
        """
        size, window = Size(self.size.width, lines), self.scrollable_content_region.height
        if size == self.virtual_size:
            return
        if (size.height > window) != (self.virtual_size.height > window) or not self.show_vertical_scrollbar:
            self.virtual_size = size
            return
        self.set_reactive(LedgerTable.virtual_size, size)
        self.vertical_scrollbar.window_virtual_size = size.height
        self.scroll_y = min(self.scroll_y, self.max_scroll_y)
        self.refresh()

    def on_resize(self) -> None:
        self._columns = self._fit(self.scrollable_content_region.width)
        self.virtual_size = Size(self.scrollable_content_region.width, len(self._runs) + 1)
        self._cells.clear()

    @staticmethod
    def _fit(width: int) -> list[tuple[Column, int]]:
        """The columns that fit `width`, with the label taking the rest."""
        shown = list(COLUMNS)
        while True:
            fixed = sum(c.width + 1 for c in shown if c.key != "label")
            if width - fixed >= MIN_LABEL or not any(c.drop for c in shown):
                break
            worst = max(c.drop for c in shown)
            shown = [c for c in shown if c.drop != worst]
        label = max(MIN_LABEL, width - fixed - 1)
        return [(c, label if c.key == "label" else c.width) for c in shown]

    def _row_cells(self, row: int) -> tuple[list[str], str]:
        cached = self._cells.get(row)
        if cached is not None:
            return cached
        run = self._runs[row]
        is_floor = run.id in self._floor_ids
        values = {
            "id": ("•" if run.id in self.marked else "") + run.id,
            "track": run.track,
            "label": fmt.run_label(run),
            "status": fmt.status_text(run.status),
            "score": fmt.run_score(run),
            "delta": fmt.delta(self._deltas.get(run.id) if self._deltas is not None else None),
            "bytes": fmt.size(run.total_bytes),
            "posenet": fmt.small(run.posenet),
            "segnet": fmt.small(run.segnet),
            "verdict": fmt.verdict_text(run, is_floor),
        }
        cells = [values[c.key] for c, _ in self._columns]
        result = (cells, fmt.verdict_class(run, is_floor))
        self._cells[row] = result
        return result

    def _line(self, cells: Sequence[str], style: Style, accents: dict[int, Style] | None = None) -> Strip:
        segments = []
        for i, ((column, width), text) in enumerate(zip(self._columns, cells, strict=True)):
            text = text if len(text) <= width else text[: max(0, width - 1)] + "…"
            padded = text.rjust(width) if column.right else text.ljust(width)
            cell_style = style + accents[i] if accents and i in accents else style
            segments += [Segment(padded, cell_style), Segment(" ", style)]
        line, width = Strip(segments), self.size.width
        return line if line.cell_length == width else line.crop_extend(0, width, style)

    def render_lines(self, crop: Region) -> list[Strip]:
        """The lines in `crop`, with the styles read once for all of them (each read walks the DOM)."""
        self._styles.clear()
        return super().render_lines(crop)

    def _component(self, part: str) -> Style:
        """A component's style (the table's own for ""), read once per paint."""
        if part not in self._styles:
            self._styles[part] = self.get_component_rich_style(part) if part else self.rich_style
        return self._styles[part]

    def render_line(self, y: int) -> Strip:
        """Line 0 is the header; the others are rows, scrolled."""
        if not self._columns:
            self._columns = self._fit(self.scrollable_content_region.width)
        base = self._component("")
        if y == 0:
            header = base + self._component("ledger-table--header")
            titles = [
                c.title + ((" ▼" if self.sort_reverse else " ▲") if c.key == self.sort_key else "")
                for c, _ in self._columns
            ]
            return self._line(titles, header)
        row = round(self.scroll_y) + y - 1
        if not self._runs and y == 1 and self.empty_text:
            return Strip([Segment(f" {self.empty_text}", base + Style(italic=True))]).crop_extend(
                0, self.size.width, base
            )
        if not 0 <= row < len(self._runs):
            return Strip.blank(self.size.width, base)
        cells, kind = self._row_cells(row)
        style = base
        accents: dict[int, Style] = {}
        if kind != "plain":
            accent = self._component(f"ledger-table--{kind}")
            marked = ("id", "status", "verdict") if kind in ("floor", "failed", "running") else ("verdict",)
            accents = {i: accent for i, (c, _) in enumerate(self._columns) if c.key in marked}
        if row == self.cursor:
            style = base + self._component("ledger-table--cursor")
            accents = {i: Style(bold=True) for i in accents}
        return self._line(cells, style, accents)
