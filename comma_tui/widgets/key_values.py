"""Two columns of keys and values, the values folded to the width left: a Rich renderable.

It lays out what a two-column `Table.grid` would (keys as wide as the widest, one space, values
word-wrapped and long words folded) without the Table's measuring every cell of every row on each
layout and again on each paint: a run's spec is forty rows, and opening a run's detail drew it
in tens of milliseconds that way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions
from rich.measure import Measurement
from rich.segment import Segment
from rich.text import Text


@dataclass(frozen=True)
class KeyValues:
    """Rows of (key, value): keys never wrap; values take the rest of the width and fold."""

    rows: Sequence[tuple[Text, Text]]

    def _key_width(self) -> int:
        return max((key.cell_len for key, _ in self.rows), default=0)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        keys = self._key_width()
        widest = max((value.cell_len for _, value in self.rows), default=0)
        return Measurement(keys + 2, keys + 1 + widest).with_maximum(options.max_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        keys = self._key_width()
        room = max(1, options.max_width - keys - 1)
        blank = Text(" " * keys)
        for key, value in self.rows:
            lines = [value] if value.cell_len <= room else list(value.wrap(console, room, overflow="fold"))
            for index, line in enumerate(lines or [Text()]):
                head = key.copy() if index == 0 else blank
                head.pad_right(keys - head.cell_len)
                yield from head.render(console)
                yield Segment(" ")
                yield from line.render(console)
                yield Segment.line()
