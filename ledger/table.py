"""Many runs' summaries, column by column: what the ledger answers its questions from.

A `SummaryTable` is an immutable snapshot of `RunSummary` rows in run-number order. Numeric
columns are numpy arrays (None kept as NaN), a category column is an array of codes into its
list of values, and a text column is a list of str, so a filter, a sort or a count over 100,000
runs is a few array operations. A row becomes a `RunSummary` only when something asks for it:
`RunView` is a sequence of rows that does that one row at a time, so a screen of 100,000 runs
costs a screen of objects.

The text that `/` searches (`RunRecord.search_text`) is the largest part of a summary and the
least used, so a table reads it only when a search first asks for it. It is kept as UTF-8 bytes,
each run's text ended by a NUL, one block per segment: a search is a `bytes.find` over each
block, and a block costs its size in memory whatever characters the texts hold.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from itertools import accumulate, pairwise
from typing import Any, overload

import numpy as np

from ledger.records import RunRecord, RunStatus, run_id
from ledger.summary import COLUMNS, RunSummary

_DTYPES = {"int": "i8", "float": "f8", "float?": "f8", "int?": "f8", "bool": "?", "category": "i4", "run": "i8"}
NUMERIC = tuple(c for c in COLUMNS if c.kind != "text")
TEXTS = tuple(c.name for c in COLUMNS if c.kind == "text")
CATEGORIES = tuple(c.name for c in COLUMNS if c.kind == "category")
_ROW_OF = {c.name: i for i, c in enumerate(NUMERIC)}

#: The search texts of some consecutive rows as one block (see `text_block`), read when first needed.
SearchChunk = Callable[[], bytes]
END = b"\0"


def text_block(texts: Sequence[str]) -> bytes:
    """Texts as one block: UTF-8, each ended by a NUL (a NUL inside a text becomes a space)."""
    return b"".join(t.replace("\0", " ").encode() + END for t in texts)


def block_texts(block: bytes) -> list[str]:
    """The texts of a block (`text_block`)."""
    return block.decode().split("\0")[:-1]


class Texts(Sequence[str]):
    """A text column, kept as the blocks it was read in: a block is split into str objects only
    when one of its rows is first read, so that opening 100,000 runs makes none of them."""

    def __init__(self, parts: Sequence[bytes | list[str]], counts: Sequence[int]) -> None:
        self._parts = list(parts)  # a block (`text_block`) until first read, then its texts
        self._starts = list(accumulate(counts, initial=0))

    @classmethod
    def of(cls, texts: list[str]) -> Texts:
        """A column of these texts."""
        return cls([texts], [len(texts)])

    @classmethod
    def concat(cls, columns: Sequence[Texts]) -> Texts:
        """One column of several, one after the other."""
        parts = [p for c in columns for p in c._parts]
        counts = [b - a for c in columns for a, b in pairwise(c._starts)]
        return cls(parts, counts)

    def __len__(self) -> int:
        return self._starts[-1]

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        k = bisect_right(self._starts, i) - 1
        return self._part(k)[i - self._starts[k]]

    def __iter__(self) -> Iterator[str]:
        for k in range(len(self._parts)):
            yield from self._part(k)

    def _part(self, k: int) -> list[str]:
        part = self._parts[k]
        if not isinstance(part, list):
            part = self._parts[k] = block_texts(part)
        return part

    def block(self) -> bytes:
        """The whole column as one block (`text_block`)."""
        return b"".join(p if isinstance(p, bytes) else text_block(p) for p in self._parts)


def dtype(kind: str) -> np.dtype:
    """How a column of this kind is held in `SummaryTable.arrays`."""
    return np.dtype(_DTYPES[kind])


class SummaryTable:
    """Run summaries in run-number order, as columns. Build one with `of` or `concat`.

    The numeric columns (category codes included) are the rows of one float64 matrix, so that
    joining the tables of 400 files is one `np.concatenate`; every value they hold (times,
    scores, byte counts, run numbers, codes) is exact in a float64. `arrays` has them typed.
    """

    def __init__(
        self,
        matrix: np.ndarray,
        categories: dict[str, list[Any]],
        texts: dict[str, Texts],
        search: Sequence[SearchChunk] = (),
    ) -> None:
        self.matrix = matrix  # one row per `NUMERIC` column, one column per run
        self.categories = categories
        self.texts = texts
        self._search = list(search)
        self._blocks: list[tuple[bytes, np.ndarray]] | None = None
        self._derived: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return int(self.matrix.shape[1])

    def __repr__(self) -> str:
        return f"SummaryTable({len(self)} runs)"

    @cached_property
    def numbers(self) -> np.ndarray:
        """The run numbers, ascending."""
        return self.matrix[_ROW_OF["number"]].astype(np.int64)

    @cached_property
    def arrays(self) -> dict[str, np.ndarray]:
        """Each numeric column by name, typed (`dtype`); None is NaN in `float?` and `int?` columns."""
        return {c.name: self.matrix[i].astype(dtype(c.kind), copy=False) for i, c in enumerate(NUMERIC)}

    @classmethod
    def of(cls, records: Sequence[RunRecord]) -> SummaryTable:
        """The summaries of full records (given in run-number order)."""
        return cls.from_rows([RunSummary.of(r) for r in records], [r.search_text for r in records])

    @classmethod
    def from_rows(cls, rows: Sequence[RunSummary], search: Sequence[str]) -> SummaryTable:
        """A table of these summaries (in run-number order) and their runs' search texts."""
        matrix = np.empty((len(NUMERIC), len(rows)))
        categories: dict[str, list[Any]] = {}
        texts: dict[str, Texts] = {}
        for c in COLUMNS:
            values = [getattr(r, c.name) for r in rows]
            if c.kind == "text":
                texts[c.name] = Texts.of(values)
            elif c.kind == "category":
                known = list(dict.fromkeys(values))
                code = {v: i for i, v in enumerate(known)}
                categories[c.name] = known
                matrix[_ROW_OF[c.name]] = [code[v] for v in values]
            else:
                matrix[_ROW_OF[c.name]] = [c.stored(v) for v in values]
        block = text_block(search)
        return cls(matrix, categories, texts, [lambda: block])

    @classmethod
    def concat(cls, tables: Sequence[SummaryTable]) -> SummaryTable:
        """One table of the runs of several, in run-number order (category codes renumbered)."""
        if len(tables) == 1:
            return tables[0]
        if not tables:
            return cls.of([])
        matrix = np.concatenate([t.matrix for t in tables], axis=1)
        categories: dict[str, list[Any]] = {}
        for name in CATEGORIES:
            known: dict[Any, int] = {}
            codes = matrix[_ROW_OF[name]]
            start = 0
            for t in tables:
                lut = np.array([known.setdefault(v, len(known)) for v in t.categories[name]], np.float64)
                end = start + len(t)
                if len(lut) and start < end:
                    codes[start:end] = lut[codes[start:end].astype(np.int64)]
                start = end
            categories[name] = list(known)
        texts = {name: Texts.concat([t.texts[name] for t in tables]) for name in TEXTS}
        table = cls(matrix, categories, texts, [chunk for t in tables for chunk in t._search])
        numbers = table.numbers
        if len(numbers) > 1 and not bool(np.all(numbers[1:] > numbers[:-1])):
            return table.take(np.argsort(numbers, kind="stable"))  # only if files were shuffled by hand
        return table

    def take(self, rows: np.ndarray) -> SummaryTable:
        """A table of these rows only, in this order."""
        picked = rows.tolist()
        texts = {name: Texts.of([values[i] for i in picked]) for name, values in self.texts.items()}
        return SummaryTable(self.matrix[:, rows], self.categories, texts, [lambda: self._pick_search(picked)])

    def _pick_search(self, rows: list[int]) -> bytes:
        texts = block_texts(b"".join(self.search_blocks()))
        return text_block([texts[i] for i in rows])

    # Rows.

    def row(self, i: int) -> RunSummary:
        """Row `i` as a `RunSummary`."""
        values: dict[str, Any] = {}
        for c in COLUMNS:
            if c.kind == "text":
                values[c.name] = self.texts[c.name][i]
            elif c.kind == "category":
                value = self.categories[c.name][self.arrays[c.name][i]]
                values[c.name] = c.parse(value) if c.parse is not None and value is not None else value
            else:
                values[c.name] = c.value(self.arrays[c.name][i])
        return RunSummary(**values)

    def index_of(self, number: int) -> int | None:
        """The row of run `number`, or None."""
        i = int(np.searchsorted(self.numbers, number))
        return i if i < len(self.numbers) and self.numbers[i] == number else None

    def view(self, rows: np.ndarray | None = None) -> RunView:
        """These rows (every row when None) as a sequence of summaries."""
        return RunView(self, np.arange(len(self)) if rows is None else rows)

    # Columns, for the questions in `ledger.queries`.

    def derived(self, name: str, compute: Callable[[SummaryTable], np.ndarray]) -> np.ndarray:
        """A column worked out from this table's, once: a table never changes."""
        if name not in self._derived:
            self._derived[name] = compute(self)
        return self._derived[name]

    def is_(self, name: str, value: Any) -> np.ndarray:
        """Which rows have this value in category column `name`."""
        try:
            code = self.categories[name].index(value)
        except ValueError:
            return np.zeros(len(self), bool)
        return self.arrays[name] == code

    def where(self, **values: Any) -> np.ndarray:
        """Which rows have exactly these values in these category columns (None matching None)."""
        mask = np.ones(len(self), bool)
        for name, value in values.items():
            mask &= self.is_(name, value)
        return mask

    def values(self, name: str) -> np.ndarray:
        """A numeric column as floats (None as NaN)."""
        return self.arrays[name].astype(np.float64, copy=False)

    def ranks(self, name: str) -> np.ndarray:
        """A category column as the alphabetical rank of each row's value (None as NaN)."""
        known = self.categories[name]
        order = sorted((v, i) for i, v in enumerate(known) if v is not None)
        lut = np.full(len(known) + 1, np.nan)
        for rank, (_, i) in enumerate(order):
            lut[i] = rank
        return lut[self.arrays[name]]

    @property
    def measured(self) -> np.ndarray:
        """Which runs finished and have metrics."""
        return self.is_("status", RunStatus.DONE) & ~np.isnan(self.arrays["score"])

    def search_blocks(self) -> list[bytes]:
        """The rows' search texts, as blocks (`text_block`) in row order, read on first use."""
        return [block for block, _ in self._search_index()]

    def _search_index(self) -> list[tuple[bytes, np.ndarray]]:
        """Each search block with the offsets of its NULs (where each row's text ends)."""
        if self._blocks is None:
            blocks = [chunk() for chunk in self._search]
            ends = [np.flatnonzero(np.frombuffer(block, np.uint8) == 0) for block in blocks]
            found = sum(len(e) for e in ends)
            if found != len(self):
                raise ValueError(f"search texts of {found} runs for a table of {len(self)}")
            self._blocks = list(zip(blocks, ends, strict=True))
        return self._blocks

    def matches(self, needle: str) -> np.ndarray:
        """Which rows' search text contains `needle` (already lower case)."""
        pattern = re.compile(re.escape(needle.replace("\0", " ").encode()))
        mask = np.zeros(len(self), bool)
        first = 0
        for block, ends in self._search_index():
            hits = np.fromiter((m.start() for m in pattern.finditer(block)), np.int64)
            mask[first + np.searchsorted(ends, hits)] = True
            first += len(ends)
        return mask


class RunView(Sequence[RunSummary]):
    """Some rows of a table in some order, read as `RunSummary` one at a time."""

    def __init__(self, table: SummaryTable, rows: np.ndarray) -> None:
        self.table = table
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, i: int) -> RunSummary: ...
    @overload
    def __getitem__(self, i: slice) -> RunView: ...
    def __getitem__(self, i: int | slice) -> RunSummary | RunView:
        if isinstance(i, slice):
            return RunView(self.table, self.rows[i])
        return self.table.row(int(self.rows[i]))

    def __iter__(self) -> Iterator[RunSummary]:
        row = self.table.row
        return (row(i) for i in self.rows.tolist())

    def __repr__(self) -> str:
        return f"RunView({len(self)} of {len(self.table)} runs)"

    def __eq__(self, other: object) -> bool:
        """Equal to a list (or view) of the same summaries in the same order, like a list."""
        if not isinstance(other, RunView | list | tuple):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # equal as lists are, so unhashable as they are

    @property
    def ids(self) -> list[str]:
        """The run ids, in order (without making a summary of each)."""
        return [run_id(n) for n in self.table.numbers[self.rows].tolist()]
