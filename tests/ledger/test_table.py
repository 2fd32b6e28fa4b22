"""Summary tables: rows equal their records' summaries, tables join, texts and searches read lazily."""

from __future__ import annotations

import numpy as np
import pytest

from ledger.records import RunRecord
from ledger.summary import RunSummary
from ledger.table import SummaryTable, Texts, text_block
from tests.ledger.fixtures import metrics as fixture_metrics


def rec(n: int, score: float | None = None, **kw: object) -> RunRecord:
    metrics = None if score is None else fixture_metrics(score, archive_bytes=1000 + n)
    fields: dict = {"status": "done" if score is not None else "queued", "metrics": metrics, "created": float(n)}
    return RunRecord(id=f"r{n:04d}", **(fields | kw))  # type: ignore[arg-type]


RECORDS = [
    rec(1, 2.0, verdict="promoted", verdict_at=1.0, device_kind="cpu", label="base"),
    rec(2, 2.1, verdict="rejected", parent="r0001", track="grain", spec={"encode": {"codec": "libsvtav1", "crf": 33}}),
    rec(3, status="failed", failure_reason="Out of memory — killed"),
    rec(4, label="ünïcode → label", notes="multi\nline"),
]


def test_rows_are_their_records_summaries() -> None:
    table = SummaryTable.of(RECORDS)
    assert list(table.view()) == [RunSummary.of(r) for r in RECORDS]
    second = table.row(1)
    assert (second.id, second.parent, second.track, second.total_bytes) == ("r0002", "r0001", "grain", 1002)
    assert second.brief == "svtav1 crf33" and second.terms is not None
    assert table.row(2).score is None and table.row(2).terms is None
    assert table.measured.tolist() == [True, True, False, False]
    assert (table.row(0).track, table.row(0).device_kind) == ("main", "cpu")


def test_views_read_rows_one_at_a_time() -> None:
    view = SummaryTable.of(RECORDS).view(np.array([3, 1]))
    assert len(view) == 2 and view.ids == ["r0004", "r0002"]
    assert view[0].label == "ünïcode → label" and view[-1].id == "r0002"
    assert view[1:].ids == ["r0002"] and [r.id for r in view] == ["r0004", "r0002"]


def test_joined_tables_renumber_their_categories() -> None:
    first, second = SummaryTable.of(RECORDS[:2]), SummaryTable.of([rec(5, track="night"), rec(6, track="grain")])
    joined = SummaryTable.concat([first, second])
    assert list(joined.view()) == list(first.view()) + list(second.view())
    assert joined.categories["track"] == ["main", "grain", "night"]
    assert joined.is_("track", "grain").tolist() == [False, True, False, True]
    assert joined.is_("track", "nope").tolist() == [False] * 4
    assert joined.index_of(5) == 2 and joined.index_of(7) is None


def test_files_shuffled_by_hand_still_read_in_number_order() -> None:
    joined = SummaryTable.concat([SummaryTable.of(RECORDS[2:]), SummaryTable.of(RECORDS[:2])])
    assert joined.numbers.tolist() == [1, 2, 3, 4]
    assert [r.label for r in joined.view()] == ["base", "", "", "ünïcode → label"]
    assert joined.matches("memory").tolist() == [False, False, True, False]


def test_search_finds_substrings_in_any_block_case_blind() -> None:
    joined = SummaryTable.concat([SummaryTable.of(RECORDS[:2]), SummaryTable.of(RECORDS[2:])])
    assert joined.matches("crf=33").tolist() == [False, True, False, False]
    assert joined.matches("ünïcode → label").tolist() == [False, False, False, True]
    assert joined.matches("r000").tolist() == [True] * 4
    assert joined.matches("multi\nline").tolist() == [False, False, False, True]
    across = RECORDS[0].search_text[-3:] + RECORDS[1].search_text[:3]
    assert not joined.matches(across).any()  # a match never spans two runs


def test_texts_split_their_blocks_only_when_read() -> None:
    blocks = [text_block(["a", "b"]), text_block(["ç\0d"])]
    texts = Texts.concat([Texts(blocks[:1], [2]), Texts(blocks[1:], [1]), Texts.of(["e"])])
    assert len(texts) == 4 and texts[2] == "ç d" and texts[-1] == "e"
    assert texts[1:3] == ["b", "ç d"] and list(texts) == ["a", "b", "ç d", "e"]
    assert texts.block() == text_block(["a", "b", "ç d", "e"])
    with pytest.raises(IndexError):
        texts[4]
