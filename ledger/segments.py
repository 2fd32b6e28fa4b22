"""The run history: TinyDB files of a few hundred runs each, read as summaries, in full on demand.

TinyDB rewrites a whole file on every write. With one file per lab, appending run 10,001 would
serialise, write and fsync all 10,000 runs before it, far past the 50 ms an append may take.
So the history is split: runs go, in order, into `runs-0000.json`, `runs-0001.json`, ... of
`RUNS_PER_FILE` runs each, and a write rewrites only the file that holds the run it changes.
Each file is a TinyDB database with two tables: `runs` (document id = run number) and `events`
(a person's overrides, beside the runs they concern). A record stays in the file it was first
written to.

Parsing every record of a 100,000-run lab takes seconds, so `RunStore` reads each file's
summary instead (`ledger.summary_file`: the columns lists and questions need, written beside
it after every write and rebuilt from it when missing or stale) and parses a file in full only
when one of its runs is asked for whole, keeping the last few parsed. It keeps what it read
keyed on each file's signature (inode, size, mtime): every write renames a new file into place,
so a refresh costs one `stat` per file.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tinydb import TinyDB
from tinydb.table import Document

from ledger.errors import LedgerError
from ledger.records import RunRecord, record_from_doc, run_id
from ledger.storage import (
    AtomicJSONStorage,
    Signature,
    Version,
    read_tables,
    read_version,
    remove_stale_temps,
    signature_of,
    token_of,
    version_of,
)
from ledger.summary import RunSummary
from ledger.summary_file import read_summary, summary_path, write_summary
from ledger.table import SummaryTable, text_block

RUNS_PER_FILE = 256
KIND = "runs"
RUNS_TABLE = "runs"
EVENTS_TABLE = "events"
PREFIX = "runs-"
#: How many files' full records stay parsed (a run's detail, its parent, the runs being written).
FULL_FILES_KEPT = 8
#: How many of the newest files are joined afresh into each new table (see `RunStore.table`).
TAIL_FILES = 4
_FILE = re.compile(rf"^{PREFIX}(\d+)\.json$")


class Records(Mapping[int, RunRecord]):
    """A segment file's runs by number, each record made from its document when first asked for.

    A one-off command that shows one run (and its parent) makes two records, not a file's hundreds.
    """

    def __init__(self, tables: Mapping[str, Any], path: Path, known: Mapping[int, RunRecord] | None = None) -> None:
        self._path = path
        self._events: dict[int, list[Mapping[str, Any]]] = {}
        try:
            self._docs = {int(doc_id): doc for doc_id, doc in tables.get(RUNS_TABLE, {}).items()}
            for event in tables.get(EVENTS_TABLE, {}).values():
                self._events.setdefault(int(event.get("run", 0)), []).append(event)
        except (AttributeError, TypeError, ValueError) as exc:
            raise self._unreadable(exc) from None
        # Records already read from these same documents, taken as they are.
        self.made = {n: r for n, r in (known or {}).items() if n in self._docs}

    def __getitem__(self, number: int) -> RunRecord:
        record = self.made.get(number)
        if record is None:
            doc = self._docs[number]
            try:
                record = record_from_doc(doc, self._events.get(number, ()))
            except (KeyError, TypeError, ValueError) as exc:
                raise self._unreadable(exc, number) from None
            self.made[number] = record
        return record

    def _unreadable(self, exc: Exception, number: int | None = None) -> LedgerError:
        where = "" if number is None else f"document {number}: "
        return LedgerError(
            f"ledger file {self._path} holds a run record that cannot be read ({where}{exc!r}); "
            "it was left untouched: restore the file from a backup"
        )

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._docs))

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, number: object) -> bool:
        return number in self._docs


@dataclass(frozen=True)
class _Parsed:
    signature: Signature
    records: Records
    summaries: dict[int, RunSummary]  # of the records, where they were made already


@dataclass
class _Segment:
    signature: Signature
    version: Version
    table: SummaryTable

    def holds(self, number: int) -> bool:
        numbers = self.table.numbers
        return bool(len(numbers)) and numbers[0] <= number <= numbers[-1] and self.table.index_of(number) is not None


class RunStore:
    """The runs of one lab, over its segment files. Writers must hold the lab's `FileLock`."""

    def __init__(self, folder: Path, per_file: int | None = None) -> None:
        self.folder = folder
        self.per_file = per_file or RUNS_PER_FILE
        self._segments: dict[int, _Segment] = {}
        self._full: OrderedDict[int, _Parsed] = OrderedDict()
        self._table: SummaryTable | None = None
        # All files but the last few, joined: writes mostly change the newest files, so a new
        # table of the whole history joins a few pieces instead of hundreds.
        self._head: tuple[list[SummaryTable], SummaryTable] | None = None
        self._guard = threading.RLock()
        self._swept = False

    def path(self, index: int) -> Path:
        """The file of segment `index`."""
        return self.folder / f"{PREFIX}{index:04d}.json"

    def files(self) -> dict[int, str]:
        """The segment files on disk (their paths, as text: a refresh stats hundreds), by index."""
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return {}
        folder = str(self.folder)
        found = {int(m.group(1)): f"{folder}/{name}" for name in names if (m := _FILE.match(name))}
        return dict(sorted(found.items()))

    def refresh(self) -> None:
        """Bring the summaries up to date with the files: re-read only those whose signature changed."""
        with self._guard:
            files = self.files()
            changed = False
            for index in [i for i in self._segments if i not in files]:
                del self._segments[index]
                changed = True
            for index, path in files.items():
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    continue
                sig = (st.st_ino, st.st_size, st.st_mtime_ns)  # `signature_of`, inline: this loop is hot
                cached = self._segments.get(index)
                if cached is None or cached.signature != sig:
                    changed |= self._load(index, self.path(index))
            if changed:
                self._table = None

    def _load(self, index: int, path: Path) -> bool:
        """Read a changed file's summary (or rebuild it); False when its content had not changed."""
        found = read_version(path)
        if found is None:
            return self._segments.pop(index, None) is not None
        version, sig = found
        cached = self._segments.get(index)
        if cached is not None and cached.version == version:
            cached.signature = sig  # the same content under a new signature (a copy, a touch)
            return False
        table = read_summary(summary_path(path), version, lambda numbers: self._text_block(index, numbers))
        if table is None:
            self._take(index, *self._parse(index))  # missing or stale: rebuilt from the file itself
        else:
            self._segments[index] = _Segment(sig, version, table)
        return True

    def _parse(self, index: int) -> tuple[Signature, Version, Records]:
        """Read a file in full: its signature, version and records."""
        path = self.path(index)
        tables, sig = read_tables(path, KIND)
        if tables is None or sig is None:
            raise LedgerError(f"{path} vanished while it was being read: try again")
        return sig, version_of(token_of(tables), sig), Records(tables, path)

    def _take(
        self,
        index: int,
        sig: Signature,
        version: Version,
        records: Records,
        made: Mapping[int, RunSummary] | None = None,
    ) -> None:
        """Adopt a file version read or written in full: its summary (written down) and its records.

        `made` holds summaries already made of some of these very records.
        """
        made = made or {}
        every = list(records.values())
        rows = [made.get(r.number) or RunSummary.of(r) for r in every]
        table = SummaryTable.from_rows(rows, [r.search_text for r in every])
        write_summary(summary_path(self.path(index)), version, table)
        with self._guard:
            self._segments[index] = _Segment(sig, version, table)
            self._keep(index, sig, records, {s.number: s for s in rows})
            self._table = None

    def _keep(
        self, index: int, sig: Signature, records: Records, summaries: dict[int, RunSummary] | None = None
    ) -> None:
        self._full[index] = _Parsed(sig, records, summaries or {})
        self._full.move_to_end(index)
        while len(self._full) > FULL_FILES_KEPT:
            self._full.popitem(last=False)

    def _records(self, index: int) -> Mapping[int, RunRecord]:
        """The full records of a segment, by number, as its file holds them now (empty when it has none)."""
        with self._guard:
            segment = self._segments.get(index)
            if segment is not None:
                sig: Signature | None = segment.signature  # as the last refresh found it
            else:
                try:
                    sig = signature_of(os.stat(self.path(index)))
                except FileNotFoundError:
                    return {}
            cached = self._full.get(index)
            if cached is not None and cached.signature == sig:
                self._full.move_to_end(index)
                return cached.records
            sig, version, records = self._parse(index)
            if segment is not None and segment.version != version:
                self._take(index, sig, version, records)  # it changed since the last refresh
            else:
                self._keep(index, sig, records)
            return self._full[index].records

    def _text_block(self, index: int, numbers: np.ndarray) -> bytes:
        """The search texts of these runs of a segment, from its records (a summary's damaged part)."""
        records = self._records(index)
        return text_block([records[n].search_text if n in records else "" for n in numbers.tolist()])

    def _segment_of(self, number: int) -> int | None:
        written = (number - 1) // self.per_file  # where it was written, unless the lab once used another
        if (guess := self._segments.get(written)) is not None and guess.holds(number):  # RUNS_PER_FILE
            return written
        return next((i for i, s in self._segments.items() if s.holds(number)), None)

    def _locate(self, number: int) -> int | None:
        """The segment holding run `number` now, or None."""
        if not self._segments:
            # No summary read yet (a one-off command): try the file the run was first written
            # to, which holds it unless that lab once used another RUNS_PER_FILE.
            guess = (number - 1) // self.per_file
            if number in self._records(guess):
                return guess
        # A run stays in the file it was written to: when that file is as summarised, it still
        # holds the run, and the hundreds of other files need no stat (a run's detail reads four).
        known = self._segment_of(number)
        if known is not None:
            try:
                if signature_of(os.stat(self.path(known))) == self._segments[known].signature:
                    return known
            except FileNotFoundError:
                pass
        self.refresh()
        return self._segment_of(number)

    # Reading.

    def table(self) -> SummaryTable:
        """Every run's summary, by number (one snapshot: it does not change as the files do)."""
        with self._guard:
            self.refresh()
            if self._table is None:
                tables = [self._segments[i].table for i in sorted(self._segments)]
                head, tail = tables[:-TAIL_FILES], tables[-TAIL_FILES:]
                if (
                    self._head is None
                    or len(self._head[0]) != len(head)
                    or any(a is not b for a, b in zip(self._head[0], head, strict=True))
                ):
                    self._head = (head, SummaryTable.concat(head))
                self._table = SummaryTable.concat([self._head[1], *tail] if head else tail)
            return self._table

    def newest(self, count: int) -> SummaryTable:
        """The summaries of the newest `count` runs at least, reading only the files that hold them."""
        with self._guard:
            files = self.files()
            tables: list[SummaryTable] = []
            for index in sorted(files, reverse=True):
                segment = self._segments.get(index)
                try:
                    current = segment is not None and segment.signature == signature_of(os.stat(files[index]))
                except FileNotFoundError:
                    continue
                if not current and self._load(index, self.path(index)):
                    self._table = None
                if index in self._segments:
                    tables.append(self._segments[index].table)
                if sum(len(t) for t in tables) >= count:
                    break
            return SummaryTable.concat(tables[::-1])

    def get(self, number: int) -> RunRecord | None:
        """The full record of run `number`, or None."""
        with self._guard:
            index = self._locate(number)
            return None if index is None else self._records(index).get(number)

    def records(self, numbers: Iterable[int]) -> list[RunRecord]:
        """The full records of these runs, in the order given (unknown numbers are left out)."""
        wanted = list(numbers)
        found: dict[int, RunRecord] = {}
        with self._guard:
            self.refresh()
            firsts = sorted((int(s.table.numbers[0]), i) for i, s in self._segments.items() if len(s.table))
            by_segment: dict[int, list[int]] = {}
            for number in sorted(set(wanted)):
                at = bisect_right(firsts, (number, sys.maxsize)) - 1
                index: int | None = firsts[at][1] if at >= 0 else None
                if index is None or not self._segments[index].holds(number):
                    index = self._segment_of(number)  # files shuffled by hand: look in each
                if index is not None:
                    by_segment.setdefault(index, []).append(number)
            for index, members in by_segment.items():
                records = self._records(index)
                found |= {n: records[n] for n in members if n in records}
        return [found[n] for n in wanted if n in found]

    def _tail(self) -> tuple[int, int, int]:
        """The last file's index, how many runs it holds, and the highest run number in the lab."""
        with self._guard:
            self.refresh()
            last = max(self._segments, default=0)
            highest = max((int(s.table.numbers[-1]) for s in self._segments.values() if len(s.table)), default=0)
            return last, len(self._segments[last].table) if self._segments else 0, highest

    def max_number(self) -> int:
        """The highest run number in the lab (0 when empty)."""
        return self._tail()[2]

    def revision(self) -> tuple[tuple[int, Signature], ...]:
        """A value that changes whenever any run file changes (cheap: one stat per file)."""
        self.refresh()
        return tuple((i, s.signature) for i, s in sorted(self._segments.items()))

    # Writes: the caller holds the lab's lock.

    def append(self, document: Callable[[int], Mapping[str, Any]]) -> RunRecord:
        """Store a new run, numbered after the highest so far, in the last file while it has room.

        `document(number)` makes the run's document once its number is known.
        """
        index, held, highest = self._tail()
        if held >= self.per_file:
            index += 1
        number = highest + 1
        doc = document(number)
        self._write(index, number, lambda db: db.table(RUNS_TABLE).insert(Document(dict(doc), doc_id=number)))
        return self._records(index)[number]

    def update(self, number: int, changes: Mapping[str, Any]) -> RunRecord:
        """Change some stored fields of run `number`."""
        index = self._index_of(number)
        updated = self._write(index, number, lambda db: db.table(RUNS_TABLE).update(dict(changes), doc_ids=[number]))
        if not updated:
            raise LedgerError(f"{run_id(number)} vanished from {self.path(index)} while it was being updated")
        return self._records(index)[number]

    def add_event(self, number: int, event: Mapping[str, Any]) -> RunRecord:
        """Store an event (an override) beside run `number`, in the same file."""
        index = self._index_of(number)
        self._write(index, number, lambda db: db.table(EVENTS_TABLE).insert({"run": number, **event}))
        return self._records(index)[number]

    def _index_of(self, number: int) -> int:
        index = self._locate(number)
        if index is None:
            raise LedgerError(f"no run {run_id(number)} in {self.folder}")
        return index

    def _write(self, index: int, number: int, operation: Callable[[TinyDB], Any]) -> Any:
        """Change run `number` (its document or its events) in file `index`, then summarise the file anew."""
        if not self._swept:
            remove_stale_temps(self.folder, (PREFIX, "queue.json"))
            self._swept = True
        path = self.path(index)
        # The other runs' records stay as parsed when the file is the version they were parsed
        # from (the lock keeps other writers out), with the search texts they already worked out.
        parsed = self._full.get(index)
        try:
            current = parsed is not None and parsed.signature == signature_of(os.stat(path))
        except FileNotFoundError:
            current = False
        db = TinyDB(path, storage=AtomicJSONStorage, kind=KIND)
        try:
            result = operation(db)
        finally:
            db.close()
        storage = db.storage
        if isinstance(storage, AtomicJSONStorage) and storage.last_written is not None and storage.signature:
            tables, sig = storage.last_written, storage.signature
            version = version_of(token_of(tables), sig)
            if parsed is not None and current:
                made = {n: r for n, r in parsed.records.made.items() if n != number}
                summaries = {n: s for n, s in parsed.summaries.items() if n != number}
                self._take(index, sig, version, Records(tables, path, made), summaries)
            else:
                self._take(index, sig, version, Records(tables, path))
        else:
            self.refresh()
        return result
