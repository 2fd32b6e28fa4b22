"""Exports: CSV with spec columns, JSON of every field, a Markdown notebook table."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from ledger import Ledger
from ledger.export import export, to_csv, to_markdown, when
from tests.ledger.fixtures import make_lab, measured, spec


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger(make_lab(tmp_path))
    first = measured(ledger, 2.19)
    measured(ledger, 2.21, parent=first.id, the_spec=spec(crf=35, film_grain=22))
    failed = ledger.add_run(spec(), label="a | pipe")
    ledger.record_failure(failed.id, "exit status 1")
    return ledger


def test_csv_has_one_row_per_run_and_spec_columns(ledger: Ledger) -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(ledger.records(ledger.all()), ledger.deltas()))))
    assert [r["id"] for r in rows] == ["r0001", "r0002", "r0003"]
    assert rows[1]["spec.encode.crf"] == "35" and rows[1]["spec.encode.film_grain"] == "22"
    assert rows[0]["spec.encode.film_grain"] == ""
    assert rows[1]["verdict"] == "rejected" and rows[1]["changed"] == "crf 34 -> 35; film_grain unset -> 22"
    assert float(rows[1]["delta_vs_floor"]) == pytest.approx(0.02)
    assert rows[2]["status"] == "failed" and rows[2]["failure_reason"] == "exit status 1" and rows[2]["score"] == ""
    assert rows[0]["scorer_demo"] == "false" and rows[0]["archive_bytes"] == "100000"


def test_json_holds_every_field(ledger: Ledger) -> None:
    data = json.loads(export(ledger.records(ledger.all()), "json"))
    assert [d["id"] for d in data] == ["r0001", "r0002", "r0003"]
    assert data[1]["metrics"]["score"] == 2.21 and data[1]["verdict_reason"].startswith("+0.020 vs floor")
    assert data[0]["spec"] == spec()


def test_markdown_table_escapes_pipes(ledger: Ledger) -> None:
    text = to_markdown(ledger.records(ledger.all()), ledger.deltas())
    lines = text.splitlines()
    assert lines[0].startswith("| run | track |") and len(lines) == 5
    assert "| r0002 | main |" in lines[3] and "+0.020" in lines[3] and "100,000" in lines[3]
    assert "a \\| pipe" in lines[4] and "exit status 1" in lines[4]


def test_unknown_format(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        export(ledger.records(ledger.all()), "xlsx")


def test_when() -> None:
    assert when(None) == ""
    assert when(0.0)[:10] in ("1970-01-01", "1969-12-31")
