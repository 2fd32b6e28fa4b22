"""The atomic TinyDB storage: whole-file replacement, damaged files refused untouched."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tinydb import TinyDB
from tinydb.table import Document

from ledger import LedgerError, schema
from ledger.files import atomic_write
from ledger.storage import AtomicJSONStorage, read_tables, read_version, remove_stale_temps


def test_tinydb_round_trip_is_stamped_and_cached(tmp_path: Path) -> None:
    path = tmp_path / "runs-0000.json"
    db = TinyDB(path, storage=AtomicJSONStorage, kind="runs")
    db.table("runs").insert(Document({"id": "r0007"}, doc_id=7))
    storage = db.storage
    assert isinstance(storage, AtomicJSONStorage)
    assert storage.signature is not None and storage.last_written is not None
    assert storage.signature[1] == path.stat().st_size
    on_disk = json.loads(path.read_text())
    assert on_disk["runs"] == {"7": {"id": "r0007"}}
    token = on_disk["_meta"]["1"].pop("token")
    assert on_disk["_meta"] == {"1": {"schema": schema.SCHEMA_VERSION, "kind": "runs"}}
    assert TinyDB(path, storage=AtomicJSONStorage, kind="runs").table("runs").get(doc_id=7) == {"id": "r0007"}
    found = read_version(path)
    assert found is not None and found[0] == (token, path.stat().st_size, path.stat().st_mtime_ns)


def test_every_write_gets_a_new_token_read_from_the_head_alone(tmp_path: Path) -> None:
    path = tmp_path / "runs-0000.json"
    db = TinyDB(path, storage=AtomicJSONStorage, kind="runs")
    tokens = []
    for n in range(3):
        db.table("runs").insert({"id": f"r{n + 1:04d}", "notes": "x" * 1000})
        found = read_version(path)
        assert found is not None
        tokens.append(found[0][0])
        assert tokens[-1] == json.loads(path.read_text())["_meta"]["1"]["token"]
    assert len(set(tokens)) == 3
    path.write_text('{"runs": {}, "_meta": {"1": {"schema": 1, "kind": "runs"}}}')  # no token: named by inode
    found = read_version(path)
    assert found is not None and found[0][0] == f"inode {path.stat().st_ino}"


def test_missing_file_reads_as_empty_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "queue.json"
    assert read_tables(path, "queue") == (None, None)
    assert TinyDB(path, storage=AtomicJSONStorage, kind="queue").table("q").all() == []
    assert not path.exists()


def test_atomic_write_replaces_the_inode_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    atomic_write(path, b"one")
    first = path.stat().st_ino
    atomic_write(path, b"two", durable=False)
    assert path.read_bytes() == b"two" and path.stat().st_ino != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


def test_unserialisable_data_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "runs-0000.json"
    storage = AtomicJSONStorage(path, kind="runs")
    storage.write({"runs": {"1": {"x": 1}}})
    before = path.read_bytes()
    with pytest.raises(ValueError):
        storage.write({"runs": {"1": {"x": float("nan")}}})
    with pytest.raises(TypeError):
        storage.write({"runs": {"1": {"x": object()}}})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs-0000.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "it is empty"),
        (b"   \n", "it is empty"),
        (b'{"runs": {"1": {"id": "r0', "cut short"),
        (b"{nope}", "not valid JSON at line 1 column 2"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"[1]", "not a table of documents"),
        (b'{"runs": []}', "not a table of documents"),
        (b'{"runs": {}}', "no schema version"),
        (b'{"_meta": {"1": {"schema": 1, "kind": "queue"}}}', "holds 'queue' data where 'runs'"),
        (b'{"_meta": {"1": {"schema": 99, "kind": "runs"}}}', "newer comma-tui .*upgrade"),
    ],
)
def test_unreadable_files_are_refused_untouched(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "runs-0003.json"
    path.write_bytes(content)
    stat = os.stat(path)
    with pytest.raises(LedgerError, match=message) as caught:
        read_tables(path, "runs")
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    assert path.read_bytes() == content and os.stat(path).st_mtime_ns == stat.st_mtime_ns
    with pytest.raises(LedgerError):
        TinyDB(path, storage=AtomicJSONStorage, kind="runs").table("runs").insert({"x": 1})
    assert path.read_bytes() == content


def test_remove_stale_temps_only_touches_its_own(tmp_path: Path) -> None:
    names = [".runs-0000.json.1.ab.tmp", ".queue.json.2.cd.tmp", ".progress.json.3.ef.tmp", "runs-0000.json", "x.tmp"]
    for name in names:
        (tmp_path / name).write_text("x")
    remove_stale_temps(tmp_path, ("runs-", "queue.json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".progress.json.3.ef.tmp", "runs-0000.json", "x.tmp"]
