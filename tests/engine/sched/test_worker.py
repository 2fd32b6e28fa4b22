"""The worker that executes one queued run: how it ends a run the user can fix, and its manners."""

from __future__ import annotations

from pathlib import Path

from engine.runs.spec import lab_source, parse_spec
from engine.sched import worker
from ledger import Lab, Ledger
from tests.sources import official_format_weights


def test_a_missing_segnet_beside_official_format_posenet_fails_the_run_in_one_line(demo_assets, tmp_path: Path) -> None:
    # Official-format weights carry no demo metadata: the second file must be checked all the same.
    models = official_format_weights(demo_assets.models, tmp_path / "models", "posenet.safetensors")
    lab = Lab.create(tmp_path / "lab", demo_assets.clip, models)
    ledger = Ledger(lab)
    queued = ledger.add_run(parse_spec({}, lab_source(lab)).to_dict(), label="first")
    assert worker.main(["--lab", str(lab.root), "--run", queued.id]) == 1  # the run failed, and says why
    record = ledger.get(queued.id)
    assert record.status == "failed"
    assert record.failure_reason.startswith(f"{models / 'segnet.safetensors'} not found: point --models at")
    assert "internal error" not in record.log_tail
