"""The run history: TinyDB files of a few hundred runs each, read once and cached by signature.

TinyDB rewrites a whole file on every write. With one file per lab, appending run 10,001 would
serialise, write and fsync all 10,000 runs before it, far past the 50 ms an append may take.
So the history is split: runs go, in order, into `runs-0000.json`, `runs-0001.json`, ... of
`RUNS_PER_FILE` runs each, and a write rewrites only the file that holds the run it changes.
Each file is a TinyDB database with two tables: `runs` (document id = run number) and `events`
(a person's overrides, beside the runs they concern).

Reading all files takes a few hundred milliseconds for 10,000 runs, so `RunStore` parses each
file once and keeps its records keyed on the file's signature (inode, size, mtime): every
write renames a new file into place, so a changed signature always means changed content. A
refresh costs one `stat` per file. A record stays in the file it was first written to.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import chain, pairwise
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.table import Document

from ledger.errors import LedgerError
from ledger.records import RunRecord, record_from_doc, run_id
from ledger.storage import AtomicJSONStorage, Signature, read_tables, remove_stale_temps, signature_of

RUNS_PER_FILE = 256
KIND = "runs"
RUNS_TABLE = "runs"
EVENTS_TABLE = "events"
PREFIX = "runs-"
_FILE = re.compile(rf"^{PREFIX}(\d+)\.json$")


@dataclass
class _Segment:
    signature: Signature
    records: list[RunRecord]


class RunStore:
    """The runs of one lab, over its segment files. Writers must hold the lab's `FileLock`."""

    def __init__(self, folder: Path, per_file: int | None = None) -> None:
        self.folder = folder
        self.per_file = per_file or RUNS_PER_FILE
        self._segments: dict[int, _Segment] = {}
        self._all: list[RunRecord] = []
        self._by_number: dict[int, RunRecord] = {}
        self._where: dict[int, int] = {}
        self._guard = threading.RLock()
        self._swept = False

    def path(self, index: int) -> Path:
        """The file of segment `index`."""
        return self.folder / f"{PREFIX}{index:04d}.json"

    def files(self) -> dict[int, Path]:
        """The segment files on disk, by index."""
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return {}
        found = {}
        for name in names:
            match = _FILE.match(name)
            if match:
                found[int(match.group(1))] = self.folder / name
        return dict(sorted(found.items()))

    def refresh(self) -> None:
        """Bring the cache up to date with the files: re-read only those whose signature changed."""
        with self._guard:
            files = self.files()
            changed = False
            for index in [i for i in self._segments if i not in files]:
                del self._segments[index]
                changed = True
            for index, path in files.items():
                try:
                    sig = signature_of(os.stat(path))
                except FileNotFoundError:
                    continue
                cached = self._segments.get(index)
                if cached is None or cached.signature != sig:
                    self._load(index, path)
                    changed = True
            if changed:
                self._rebuild()

    def _load(self, index: int, path: Path) -> None:
        tables, sig = read_tables(path, KIND)
        if tables is None or sig is None:
            self._segments.pop(index, None)
            return
        self._segments[index] = _Segment(sig, _records_of(tables, path))

    def _rebuild(self) -> None:
        """Rebuild the run list and indexes from every cached file (after a refresh found changes)."""
        ordered: list[RunRecord] = []
        where: dict[int, int] = {}
        for index in sorted(self._segments):
            for record in self._segments[index].records:
                ordered.append(record)
                where[record.number] = index
        if any(a.number >= b.number for a, b in pairwise(ordered)):
            ordered.sort(key=lambda r: r.number)  # only if files were shuffled by hand
        self._all = ordered
        self._by_number = {r.number: r for r in ordered}
        self._where = where

    def _replace_segment(self, index: int, segment: _Segment) -> None:
        """Swap in one file's new records after this process wrote it (cheaper than `_rebuild`)."""
        old = self._segments.get(index)
        for record in old.records if old else ():
            self._by_number.pop(record.number, None)
            self._where.pop(record.number, None)
        self._segments[index] = segment
        for record in segment.records:
            self._by_number[record.number] = record
            self._where[record.number] = index
        self._all = list(chain.from_iterable(self._segments[i].records for i in sorted(self._segments)))

    def records(self) -> list[RunRecord]:
        """Every run, by number (the cached list: do not modify it)."""
        self.refresh()
        return self._all

    def get(self, number: int) -> RunRecord | None:
        """The run with this number, or None."""
        self.refresh()
        return self._by_number.get(number)

    def max_number(self) -> int:
        """The highest run number in the lab (0 when empty)."""
        self.refresh()
        return self._all[-1].number if self._all else 0

    def revision(self) -> tuple[tuple[int, Signature], ...]:
        """A value that changes whenever any run file changes (cheap: one stat per file)."""
        self.refresh()
        return tuple((i, s.signature) for i, s in sorted(self._segments.items()))

    # Writes: the caller holds the lab's lock and has just refreshed.

    def insert(self, number: int, doc: Mapping[str, Any]) -> RunRecord:
        """Store a new run as document `number`, in the last file while it has room."""
        indexes = sorted(self._segments)
        index = indexes[-1] if indexes else 0
        if index in self._segments and len(self._segments[index].records) >= self.per_file:
            index += 1
        self._write(index, lambda db: db.table(RUNS_TABLE).insert(Document(dict(doc), doc_id=number)))
        return self._by_number[number]

    def update(self, number: int, changes: Mapping[str, Any]) -> RunRecord:
        """Change some stored fields of run `number`."""
        index = self._index_of(number)
        updated = self._write(index, lambda db: db.table(RUNS_TABLE).update(dict(changes), doc_ids=[number]))
        if not updated:
            raise LedgerError(f"{run_id(number)} vanished from {self.path(index)} while it was being updated")
        return self._by_number[number]

    def add_event(self, number: int, event: Mapping[str, Any]) -> RunRecord:
        """Store an event (an override) beside run `number`, in the same file."""
        index = self._index_of(number)
        self._write(index, lambda db: db.table(EVENTS_TABLE).insert({"run": number, **event}))
        return self._by_number[number]

    def _index_of(self, number: int) -> int:
        if number not in self._where:
            raise LedgerError(f"no run {run_id(number)} in {self.folder}: list runs with comma-tui ledger list")
        return self._where[number]

    def _write(self, index: int, operation: Callable[[TinyDB], Any]) -> Any:
        if not self._swept:
            remove_stale_temps(self.folder, (PREFIX, "queue.json"))
            self._swept = True
        path = self.path(index)
        db = TinyDB(path, storage=AtomicJSONStorage, kind=KIND)
        try:
            result = operation(db)
        finally:
            db.close()
        storage = db.storage
        if isinstance(storage, AtomicJSONStorage) and storage.last_written is not None and storage.signature:
            with self._guard:
                self._replace_segment(index, _Segment(storage.signature, _records_of(storage.last_written, path)))
        else:
            self.refresh()
        return result


def _records_of(tables: Mapping[str, Any], path: Path) -> list[RunRecord]:
    events: dict[int, list[Mapping[str, Any]]] = {}
    for event in tables.get(EVENTS_TABLE, {}).values():
        events.setdefault(int(event.get("run", 0)), []).append(event)
    records = []
    for doc_id, doc in tables.get(RUNS_TABLE, {}).items():
        try:
            records.append(record_from_doc(doc, events.get(int(doc_id), ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise LedgerError(
                f"ledger file {path} holds a run record that cannot be read (document {doc_id}: {exc!r}); "
                "it was left untouched: restore the file from a backup"
            ) from None
    records.sort(key=lambda r: r.number)
    for record in records:
        _ = record.search_text  # built now, with the file, so the first text filter is as fast as the rest
    return records
