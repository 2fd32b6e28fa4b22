"""Live progress: its own small file and lock, forgiving of damage."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import LedgerError
from ledger.progress import Progress, ProgressStore


def test_set_read_clear(tmp_path: Path) -> None:
    store = ProgressStore(tmp_path)
    store.set("r0003", "encode", 10, 40, 2.0, 6.0)
    store.set("3", "score", 1, 4, 8.0, None)
    store.set("r0012", "encode", 0, 0, 0.0, None)
    seen = store.all()
    assert list(seen) == ["r0003", "r0012"]
    assert (seen["r0003"].stage, seen["r0003"].done, seen["r0003"].total, seen["r0003"].eta) == ("score", 1, 4, None)
    assert seen["r0003"].fraction == 0.25 and seen["r0012"].fraction == 0.0
    store.clear("r0003")
    assert list(store.all()) == ["r0012"]


def test_damaged_progress_reads_as_empty_and_is_replaced(tmp_path: Path) -> None:
    store = ProgressStore(tmp_path)
    store.path.write_text("{broken")
    assert store.all() == {}
    store.set("r0001", "encode", 1, 2, 0.5, 0.5)
    assert list(store.all()) == ["r0001"]


def test_fraction_is_clamped() -> None:
    assert Progress("r0001", "x", 5, 4, 0.0, None, 0.0).fraction == 1.0
    assert Progress("r0001", "x", -1, 4, 0.0, None, 0.0).fraction == 0.0


def test_bad_run_id(tmp_path: Path) -> None:
    with pytest.raises(LedgerError):
        ProgressStore(tmp_path).set("nope", "encode", 1, 2, 0.0, None)
