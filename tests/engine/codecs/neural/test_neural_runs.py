"""Neural runs at toy scale on the CPU: an exact score, export, a crash and its resume, warm starts, bad keys.

The clip is the 12-frame demo clip (6 pairs); the decoder is tiny (latent 4, 8 channels, six x2
stages from 6x8) and trains for two steps of one pair: enough to check what a user relies on,
not to compress well. A step through the scorer's networks costs seconds of CPU, so the crash
test trains on the pixel term alone: checkpoints and resuming do not depend on the loss.
"""

from __future__ import annotations

import os
import shutil
import signal
import tomllib
import zipfile
from pathlib import Path

import pytest

from comma_tui.cli import main
from engine.codecs.neural.checkpoint import CheckpointError, read_header
from engine.runs.codec import CHECKPOINT_NAME
from engine.runs.spec import SourceSpec, SpecError, lab_source, parse_spec, stage_names
from engine.sched import control
from engine.sched.pool import alive, kill_run, run_tag
from engine.sched.worker import execute_run
from ledger import Lab, Ledger, RunRecord
from ledger.artifacts import load_curve
from tests import polling
from tests.engine.runs.previews_check import assert_previews
from tests.engine.sched.gated import schedulers

NEURAL = """
[run]
label = "{label}"

[encode]
codec = "neural"

[neural]
latent_dim = 4
channels = 8
upsample = 6
steps = {steps}
batch = 1
lr = 0.01
qat_from = 0
checkpoint_every = {every}
{extra}
"""
NEURAL_STAGES = ("train-data", "train", "archive", "inflate", "score")


def _spec(folder: Path, label: str, steps: int = 2, every: int = 1, extra: str = "") -> Path:
    path = folder / f"{label}.toml"
    path.write_text(NEURAL.format(label=label, steps=steps, every=every, extra=extra))
    return path


@pytest.fixture(scope="module")
def lab(demo_assets, tmp_path_factory: pytest.TempPathFactory) -> Lab:
    return Lab.create(tmp_path_factory.mktemp("lab"), demo_assets.clip, demo_assets.models)


@pytest.fixture(scope="module")
def trained(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One finished neural run."""
    assert main(["run", str(_spec(tmp_path_factory.mktemp("specs"), "neural-first")), "--lab", str(lab.root)]) == 0
    return _record(lab, "neural-first").id


def _record(lab: Lab, label: str) -> RunRecord:
    """The full record of the run labelled `label` (lists hold summaries)."""
    ledger = Ledger(lab)
    (record,) = ledger.records(ledger.runs(text=label))
    return record


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("r0")]
    assert len(err) == 1 and err[0].startswith("comma-tui: error: "), err
    return err[0]


def test_a_neural_run_records_an_exact_score_and_its_export_scores_the_same(
    lab: Lab, trained: str, tmp_path: Path
) -> None:
    record = Ledger(lab).get(trained)
    assert record.status == "done" and record.metrics is not None
    assert list(record.stage_timings) == list(stage_names(record.spec)) == list(NEURAL_STAGES)
    folder = Path(record.artifacts)
    with zipfile.ZipFile(folder / "archive.zip") as zf:
        assert zf.namelist() == ["0.bin"]
    assert record.metrics.archive_bytes == (folder / "archive.zip").stat().st_size
    assert read_header(folder / CHECKPOINT_NAME).step == 2
    curve = load_curve(folder)
    assert [p["step"] for p in curve] == [1, 2]
    assert {"loss", "segnet", "posenet", "pixel"} <= set(curve[0]) and "estimate" in curve[-1]
    assert_previews(folder)  # kept while the score stage ran, as for every run kind

    dest = tmp_path / "submission"
    assert main(["export", trained, str(dest), "--lab", str(lab.root)]) == 0
    assert sorted(p.name for p in dest.iterdir()) == ["archive.zip", "inflate.py", "inflate.sh", "spec.toml"]
    assert "from engine" not in (dest / "inflate.py").read_text()  # standalone: torch and numpy only
    assert main(["run", "--submission", str(dest), "--lab", str(lab.root), "--label", "neural-exported"]) == 0
    exported = _record(lab, "neural-exported")
    assert exported.metrics == record.metrics


def test_init_from_warm_starts_and_a_checkpoint_of_other_keys_is_never_resumed(
    lab: Lab, trained: str, tmp_path: Path
) -> None:
    # With no steps of its own, a warm-started run ships exactly the decoder and latents it started from.
    ledger, source = Ledger(lab), Ledger(lab).get(trained)
    toml = _spec(tmp_path, "neural-warm", steps=0, extra=f'init_from = "{trained}"\nseed = 7').read_text()
    warm = ledger.add_run(parse_spec(tomllib.loads(toml), lab_source(lab)).to_dict(), label="neural-warm")
    stray = Path(warm.artifacts) / CHECKPOINT_NAME
    shutil.copyfile(Path(source.artifacts) / CHECKPOINT_NAME, stray)  # step 2 of another spec (seed 0, 2 steps)
    warm = execute_run(ledger, warm.id)
    assert warm.status == "done"
    log = (Path(warm.artifacts) / "log.txt").read_text()
    assert f"checkpoint {stray} is for other keys: starting over" in log and "resumed at" not in log
    assert f"warm start from {Path(source.artifacts) / CHECKPOINT_NAME} (its step 2)" in log
    assert _archive_file(warm.artifacts) == _archive_file(source.artifacts)
    assert warm.metrics == source.metrics


def _archive_file(folder: str) -> bytes:
    with zipfile.ZipFile(Path(folder) / "archive.zip") as zf:
        return zf.read("0.bin")


CRASH_STEPS = 5


def _kill_after_checkpoint(ledger: Ledger, run: str, above: int) -> int:
    """SIGKILL the run's worker once its checkpoint is past step `above`; returns the checkpoint's step."""
    checkpoint = ledger.lab.run_dir(run) / CHECKPOINT_NAME

    def saved_past() -> bool:
        try:
            return ledger.get(run).status == "running" and read_header(checkpoint).step > above
        except CheckpointError:  # not written yet
            return False

    polling.wait_until(saved_past, 900, f"{run}'s checkpoint past step {above}")
    worker = ledger.get(run).pid
    assert worker is not None
    os.kill(worker, signal.SIGKILL)
    polling.wait_until(lambda: not alive(worker), 30, "the worker to die")
    saved = read_header(checkpoint).step
    assert above < saved < CRASH_STEPS
    return saved


def test_a_killed_workers_run_resumes_from_its_checkpoint_when_requeued_and_when_retried(
    demo_assets, tmp_path: Path
) -> None:
    lab = Lab.create(tmp_path / "lab", demo_assets.clip, demo_assets.models)
    ledger = Ledger(lab)
    tables = {
        "run": {"label": "neural-crash"},
        "encode": {"codec": "neural"},
        "neural": {
            "latent_dim": 4,
            "channels": 8,
            "upsample": 6,
            "steps": CRASH_STEPS,
            "batch": 1,
            "checkpoint_every": 1,
            "loss": {"pixel": 1.0},
        },
    }
    crashed = ledger.add_run(parse_spec(tables, lab_source(lab)).to_dict(), label="neural-crash").id

    def leftovers() -> None:
        for record in ledger.records(ledger.all()):
            kill_run(run_tag(lab.root, record.id), record.pid, grace=1.0)

    with schedulers(lab, leftovers, stop_timeout=30) as start:
        start(slots=1)
        first = _kill_after_checkpoint(ledger, crashed, 0)
        log = lab.run_dir(crashed) / "log.txt"
        own = lab.run_dir(crashed) / CHECKPOINT_NAME
        polling.wait_until(lambda: f"resumed at step {first} from {own}" in log.read_text(), 900, "the requeued run")
        assert ledger.get(crashed).requeued == 1 and "was killed by SIGKILL" in ledger.get(crashed).failure_reason

        second = _kill_after_checkpoint(ledger, crashed, first)  # twice lost: left interrupted, for a person
        polling.wait_until(lambda: ledger.get(crashed).status == "interrupted", 60, "the run left interrupted")
        (retry,) = control.retry(lab, crashed)
        retried = retry.id
        polling.wait_until(lambda: ledger.get(retried).status in ("done", "failed"), 1800, "the retry to end")

    done = ledger.get(retried)
    assert done.status == "done" and done.metrics is not None, done.failure_reason
    folder = Path(done.artifacts)
    assert f"resumed at step {second} from {folder / CHECKPOINT_NAME}" in (folder / "log.txt").read_text()
    assert done.extra["neural"]["resumed_at"] == second and read_header(folder / CHECKPOINT_NAME).step == CRASH_STEPS
    assert [p["step"] for p in load_curve(folder)] == list(range(1, CRASH_STEPS + 1))  # the parent's curve goes on


@pytest.mark.parametrize(
    ("neural", "message"),
    [
        ({"latent_dim": 0}, "neural.latent_dim = 0 is out of range: use 1..1024"),
        ({"loss": {"ssim": 1.0}}, "neural.loss key = 'ssim' is not allowed: use one of segnet, posenet, pixel"),
        ({"hidden": 8}, "unknown key neural.hidden: [neural] takes latent_dim"),
        ({"init_from": "best"}, "neural.init_from = 'best' is not a run id: name a run such as r0042"),
        ({"entropy": "brotli"}, "neural.entropy = 'brotli' is not allowed: use one of lzma, zlib, bz2, none"),
        ({"qat_from": 50, "steps": 10}, "neural.qat_from = 50 is out of range: use 0..10"),
    ],
)
def test_bad_neural_keys_are_one_line_spec_errors(neural: dict, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec({"encode": {"codec": "neural"}, "neural": neural}, SourceSpec(clip="c.mkv", models="m"))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_neural_section_on_another_codec_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"\[neural\] is for encode.codec = 'neural'"):
        parse_spec({"neural": {"steps": 5}}, SourceSpec(clip="c.mkv", models="m"))


def test_init_from_a_run_without_a_checkpoint_is_one_line_and_costs_no_training(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path, "neural-orphan", extra='init_from = "r0999"')
    assert main(["run", str(spec), "--lab", str(lab.root)]) == 2
    assert "neural.init_from = 'r0999': r0999 has no checkpoint" in _one_line_error(capsys)
