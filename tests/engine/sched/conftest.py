"""Fixtures of the scheduler's tests without a scheduler: a lab on stand-in files, and a spec in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.runs.spec import RunSpec, lab_source, parse_spec
from ledger import Lab


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    """A lab whose clip and models are stand-ins (queueing validates specs but reads no video)."""
    (tmp_path / "clip.mkv").write_bytes(b"a stand-in clip")
    (tmp_path / "models").mkdir()
    return Lab.create(tmp_path / "lab", tmp_path / "clip.mkv", tmp_path / "models", original_bytes=1_000_000)


@pytest.fixture
def spec(lab: Lab) -> RunSpec:
    """A labelled svt-av1 spec at crf 34 in `lab`."""
    return parse_spec({"run": {"label": "base"}, "encode": {"crf": 34, "preset": "12"}}, lab_source(lab))
