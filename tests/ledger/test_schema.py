"""Schema versions: older files migrate forward on read and are rewritten on the next write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tinydb import TinyDB

from ledger import Lab, Ledger, LedgerError, schema
from ledger.storage import AtomicJSONStorage, read_tables
from tests.ledger.fixtures import make_lab


def _v2_adds_a_default_label(tables: schema.Tables) -> schema.Tables:
    runs = {k: {"label": "(none)", **doc} for k, doc in tables.get("runs", {}).items()}
    return {**tables, "runs": runs}


@pytest.fixture
def schema_v2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(schema, "MIGRATIONS", {1: _v2_adds_a_default_label})


def _v1_file(path: Path) -> bytes:
    raw = json.dumps({"_meta": {"1": {"schema": 1, "kind": "runs"}}, "runs": {"1": {"id": "r0001"}}}).encode()
    path.write_bytes(raw)
    return raw


def test_older_file_is_migrated_on_read_without_being_written(tmp_path: Path, schema_v2: None) -> None:
    path = tmp_path / "runs-0000.json"
    raw = _v1_file(path)
    tables, _ = read_tables(path, "runs")
    assert tables is not None and tables["runs"]["1"] == {"label": "(none)", "id": "r0001"}
    assert path.read_bytes() == raw


def test_older_file_is_written_back_in_the_current_schema(tmp_path: Path, schema_v2: None) -> None:
    path = tmp_path / "runs-0000.json"
    _v1_file(path)
    TinyDB(path, storage=AtomicJSONStorage, kind="runs").table("runs").update({"status": "done"}, doc_ids=[1])
    on_disk = json.loads(path.read_text())
    assert on_disk["_meta"]["1"]["schema"] == 2
    assert on_disk["runs"]["1"] == {"label": "(none)", "id": "r0001", "status": "done"}


def test_a_gap_in_the_migrations_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(schema, "MIGRATIONS", {1: _v2_adds_a_default_label})
    path = tmp_path / "runs-0000.json"
    _v1_file(path)
    with pytest.raises(LedgerError, match="schema 2, which this comma-tui cannot migrate"):
        read_tables(path, "runs")


def test_a_lab_from_a_newer_comma_tui_is_refused(tmp_path: Path) -> None:
    lab: Lab = make_lab(tmp_path)
    Ledger(lab).add_run({"encode": {"crf": 30}})
    path = lab.ledger_dir / "runs-0000.json"
    data = json.loads(path.read_text())
    data["_meta"]["1"]["schema"] = schema.SCHEMA_VERSION + 1
    path.write_text(json.dumps(data))
    with pytest.raises(LedgerError, match="newer comma-tui"):
        Ledger(lab).all()
    with pytest.raises(LedgerError, match="newer comma-tui"):
        Ledger(lab).get("r0001")


def test_stamp_and_version() -> None:
    stamped = schema.stamp({"runs": {}}, "runs")
    assert schema.version_of(stamped, Path("x"), "runs") == schema.SCHEMA_VERSION


def test_runs_recorded_before_schema_2_keep_the_rgb_path(tmp_path: Path) -> None:
    lab: Lab = make_lab(tmp_path)
    old_spec = {"preprocess": {"width": 524, "height": 394}, "encode": {"crf": 30}, "inflate": {"scaler": "lanczos"}}
    Ledger(lab).add_run(old_spec)
    Ledger(lab).add_run({})  # what an unreadable spec file leaves
    path = lab.ledger_dir / "runs-0000.json"
    data = json.loads(path.read_text())
    data["_meta"]["1"]["schema"] = 1
    path.write_text(json.dumps(data))
    ledger = Ledger(lab)
    spec = ledger.get("r0001").spec
    assert spec["preprocess"] == {"path": "rgb", "width": 524, "height": 394}
    assert spec["inflate"] == {"path": "rgb", "scaler": "lanczos"}
    assert spec["encode"] == {"crf": 30}
    assert ledger.get("r0002").spec == {}
    assert "path" not in ledger.add_run(old_spec).spec["preprocess"]  # new runs are kept as given
