"""A lab for the autopilot's tests: a tiny demo clip, measured runs, and a hand that plays the workers.

The hand (`finish`) is the one stand-in: it records a score for a queued proposal the way a
worker would (a score that depends on the proposal's crf and film grain), so that the study's
loop is tested on the real ledger, the real journal file and real Optuna without encoding.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from engine.media.codecs import EncodeSettings, VideoEncoder
from engine.runs.spec import lab_source, parse_spec
from engine.sched.autopilot import AutopilotState, read_state
from ledger import Lab, Ledger, RunRecord
from tests.ledger.fixtures import metrics, result

SEARCH = """\
track = "main"
budget = {budget}
parallel = {parallel}
seed = 3

[axes]
"encode.crf" = {{ choices = [30, 32, 34, 36] }}
"encode.film_grain" = {{ choices = [0, 10] }}
"""


def make_lab(root: Path) -> Lab:
    """A lab on a two-frame clip of the challenge's size; its models folder is never read here."""
    clip, models = root / "clip.mkv", root / "models"
    models.mkdir(parents=True)
    with VideoEncoder(clip, EncodeSettings(codec="libx264", crf=30, preset="ultrafast"), 1164, 874, 20) as encoder:
        for level in (60, 120):
            encoder.write(np.full((874, 1164, 3), level, np.uint8))
    return Lab.create(root / "lab", clip, models)


def spec_with(lab: Lab, **encode: Any) -> dict[str, Any]:
    """A valid spec of the lab with these encode keys."""
    return parse_spec({"encode": encode}, lab_source(lab)).to_dict()


def measure(ledger: Ledger, the_spec: dict[str, Any], score: float, track: str = "main") -> RunRecord:
    """Add a run of `the_spec` and record `score` for it, as a worker would."""
    record = ledger.add_run(the_spec, track=track)
    return finish(ledger, record, score)


def finish(ledger: Ledger, record: RunRecord, score: float | None = None) -> RunRecord:
    """Play the worker for a queued run: a score (by default from its crf and grain), or a failure."""
    ledger.update(record.id, status="running", pid=os.getpid(), slot=0)
    if score is None:
        encode = record.spec["encode"]
        score = 1.5 + (encode["crf"] - 34) ** 2 / 50 + encode["film_grain"] / 100
    return ledger.record_result(record.id, result(score, archive_bytes=50_000 + 1000 * record.spec["encode"]["crf"]))


def finish_early(ledger: Ledger, record: RunRecord, score: float) -> RunRecord:
    """Play the worker for a run rejected early: estimated metrics after 96 of 600 pairs."""
    ledger.update(record.id, status="running", pid=os.getpid(), slot=0)
    early = {"estimated": True, "pairs": 600, "pairs_scored": 96, "score_bound": score - 0.3}
    early |= {"confidence": 0.999, "early_floor": 1.5}
    return ledger.record_result(record.id, replace(result(score), metrics=replace(metrics(score), **early)))


def proposals(ledger: Ledger, status: str | None = None) -> list[RunRecord]:
    """The autopilot's runs, by id."""
    mine = [r for r in ledger.all() if r.label.startswith("auto:") and (status is None or r.status == status)]
    return ledger.records(mine)


def write_search(tmp_path: Path, budget: int = 4, parallel: int = 2, text: str = SEARCH) -> Path:
    """A search file in `tmp_path`."""
    path = tmp_path / "search.toml"
    path.write_text(text.format(budget=budget, parallel=parallel))
    return path


def state(lab: Lab, track: str = "main") -> AutopilotState:
    """The track's autopilot state (it must have one)."""
    found = read_state(lab, track)
    assert found is not None
    return found
