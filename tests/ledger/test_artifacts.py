"""Per-pair distortions, read from the run's artifacts folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ledger import Lab, LedgerError, load_per_pair
from tests.ledger.fixtures import make_lab


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return make_lab(tmp_path)


def test_in_the_run_folder_or_where_the_record_says(lab: Lab, tmp_path: Path) -> None:
    assert load_per_pair(lab, "r0001") is None
    folder = lab.run_dir("r0001")
    folder.mkdir(parents=True)
    np.savez_compressed(folder / "per_pair.npz", posenet=[0.1, 0.2], segnet=[0.01, 0.02])
    pairs = load_per_pair(lab, "r1")
    assert pairs is not None and pairs.posenet.tolist() == [0.1, 0.2] and pairs.segnet.tolist() == [0.01, 0.02]
    elsewhere = tmp_path / "moved"
    elsewhere.mkdir()
    np.savez(elsewhere / "per_pair.npz", posenet=np.arange(3, dtype=np.float32), segnet=np.zeros(3))
    pairs = load_per_pair(lab, "r0002", artifacts=elsewhere)
    assert pairs is not None and pairs.posenet.tolist() == [0.0, 1.0, 2.0] and pairs.path == elsewhere / "per_pair.npz"


@pytest.mark.parametrize("damage", ["truncated", "a key missing"])
def test_damaged_file(lab: Lab, damage: str) -> None:
    folder = lab.run_dir("r0003")
    folder.mkdir(parents=True)
    path = folder / "per_pair.npz"
    np.savez_compressed(path, posenet=[1.0], **({} if damage == "a key missing" else {"segnet": [2.0]}))
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(LedgerError, match="per_pair.npz cannot be read"):
        load_per_pair(lab, "r0003")
