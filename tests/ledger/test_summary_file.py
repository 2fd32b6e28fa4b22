"""Segment summaries: written with every write, used only when they match, rebuilt when missing or stale."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ledger import Lab, Ledger, segments, summary_file
from ledger.storage import read_version
from ledger.summary import RunSummary
from ledger.summary_file import read_summary, summary_path
from tests.ledger.fixtures import assert_summaries_agree, make_lab, measured, spec


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lab:
    monkeypatch.setattr(segments, "RUNS_PER_FILE", 4)
    lab = make_lab(tmp_path)
    ledger = Ledger(lab)
    first = measured(ledger, 2.0)
    for i in range(5):
        measured(ledger, 2.1 - i * 0.05, parent=first.id, the_spec=spec(crf=30 + i), track="main" if i % 2 else "grain")
    ledger.add_run(spec(film_grain=8), label="waiting ünïcode")
    ledger.override("r0002", "rejected", "looks worse by eye")
    return lab


def _summaries(lab: Lab) -> list[Path]:
    return sorted(lab.ledger_dir.glob("runs-*.sum"))


def _truth(lab: Lab) -> list[RunSummary]:
    ledger = Ledger(lab)
    return [RunSummary.of(r) for r in ledger.records(ledger.all())]


def test_every_write_leaves_summaries_that_agree_with_their_records(lab: Lab) -> None:
    assert [p.name for p in _summaries(lab)] == ["runs-0000.sum", "runs-0001.sum"]
    assert assert_summaries_agree(lab) == 2
    ledger = Ledger(lab)
    assert list(ledger.all()) == _truth(lab)
    assert ledger.all()[0].verdict == "promoted" and ledger.get("r0002").verdict == "rejected"
    assert [r.id for r in ledger.runs(text="ÜNÏCODE")] == ["r0007"]


def test_a_missing_summary_is_rebuilt_from_its_segment(lab: Lab) -> None:
    before = _truth(lab)
    for path in _summaries(lab):
        path.unlink()
    ledger = Ledger(lab)
    assert list(ledger.all()) == before
    assert [r.id for r in ledger.runs(text="film_grain=8")] == ["r0007"]
    assert len(_summaries(lab)) == 2 and assert_summaries_agree(lab) == 2


def test_a_stale_summary_is_rebuilt_not_believed(lab: Lab) -> None:
    old = summary_path(lab.ledger_dir / "runs-0001.json")
    saved = old.read_bytes()
    Ledger(lab).update("r0007", label="renamed")  # r0007 is in runs-0001.json
    old.write_bytes(saved)  # a summary of the version before: as if the writer died before replacing it
    ledger = Ledger(lab)
    assert ledger.all()[6].label == "renamed"
    assert [r.id for r in ledger.runs(text="renamed")] == ["r0007"]
    assert old.read_bytes() != saved and assert_summaries_agree(lab) == 2


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[: len(raw) // 2],
        lambda raw: raw[:-1],
        lambda raw: _flip(raw, 300),
        lambda raw: _flip(raw, raw.index(b"\n") + 9),
        lambda raw: raw.replace(b'"format":1', b'"format":9'),
        lambda raw: b"",
        lambda raw: b"\x00garbage",
    ],
    ids=["half", "one-byte-short", "header-byte", "column-byte", "other-format", "empty", "garbage"],
)
def test_a_damaged_summary_is_rebuilt_never_trusted(lab: Lab, damage) -> None:
    before = _truth(lab)
    for path in _summaries(lab):
        path.write_bytes(damage(path.read_bytes()))
    assert list(Ledger(lab).all()) == before
    assert assert_summaries_agree(lab) == 2


def test_damaged_search_texts_come_from_the_records(lab: Lab) -> None:
    path = summary_path(lab.ledger_dir / "runs-0001.json")
    raw = path.read_bytes()
    path.write_bytes(raw[:-3] + b"zzz")  # the search texts are the file's last part
    assert [r.id for r in Ledger(lab).runs(text="waiting")] == ["r0007"]


def test_a_summary_of_other_columns_is_not_used(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    segment = lab.ledger_dir / "runs-0000.json"
    found = read_version(segment)
    assert found is not None and read_summary(summary_path(segment), found[0], lambda _n: b"") is not None
    monkeypatch.setattr(summary_file, "_COLUMNS", [*summary_file._COLUMNS, ["estimated", "bool"]])
    assert read_summary(summary_path(segment), found[0], lambda _n: b"") is None


def test_a_summary_made_under_another_schema_is_not_used(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    segment = lab.ledger_dir / "runs-0000.json"
    found = read_version(segment)
    assert found is not None
    # A later schema's migration may change what a column reads, though the segment is unchanged.
    monkeypatch.setattr(summary_file, "SCHEMA_VERSION", summary_file.SCHEMA_VERSION + 1)
    assert read_summary(summary_path(segment), found[0], lambda _n: b"") is None


def test_a_copied_lab_keeps_its_summaries(lab: Lab, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(lab.root, copy)  # copy2: contents and times, not inodes
    stamps = {p.name: p.stat().st_mtime_ns for p in (copy / "db").glob("*.sum")}
    assert list(Ledger(copy).all()) == _truth(lab)
    assert {p.name: p.stat().st_mtime_ns for p in (copy / "db").glob("*.sum")} == stamps  # none rebuilt


def test_a_summary_that_cannot_be_written_costs_nothing_but_time(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _truth(lab)
    for path in _summaries(lab):
        path.unlink()

    def refuse(path: Path, payload: bytes, durable: bool = True) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(summary_file, "atomic_write", refuse)  # a lab on a read-only copy
    assert list(Ledger(lab).all()) == before
    assert not _summaries(lab)


def _flip(raw: bytes, at: int) -> bytes:
    return raw[:at] + bytes([raw[at] ^ 1]) + raw[at + 1 :]


def test_the_agreement_check_catches_a_summary_that_lies(lab: Lab) -> None:
    segment = lab.ledger_dir / "runs-0001.json"
    found = read_version(segment)
    ledger = Ledger(lab)
    truth = ledger.table().take(np.array([4, 5, 6]))  # r0005..r0007: runs-0001's runs
    assert found is not None and summary_file.write_summary(summary_path(segment), found[0], truth)
    assert assert_summaries_agree(lab) == 2
    lie = ledger.table().take(np.array([4, 4, 6]))  # the right version named, the wrong runs held
    assert summary_file.write_summary(summary_path(segment), found[0], lie)
    with pytest.raises(AssertionError, match="disagrees with its records"):
        assert_summaries_agree(lab)


def test_the_table_follows_writes_to_any_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segments, "RUNS_PER_FILE", 2)
    ledger = Ledger(make_lab(tmp_path))
    for i in range(13):  # seven files: more than the newest few that each new table joins afresh
        ledger.add_run(spec(crf=20 + i), track=("main", "grain", "night")[i % 3])
    assert list(ledger.all()) == _truth(ledger.lab)
    ledger.update("r0001", label="oldest file")
    ledger.update("r0013", label="newest file")
    ledger.update("r0004", track="a track first seen in an old file")
    assert list(ledger.all()) == _truth(ledger.lab)
    assert ledger.tracks() == ["main", "grain", "night", "a track first seen in an old file"]
    assert [r.id for r in ledger.runs(text="oldest")] == ["r0001"]
