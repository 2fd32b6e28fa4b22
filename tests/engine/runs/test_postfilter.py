"""The learned post-filter: its file format, training, shipping inside the archive, and export."""

from __future__ import annotations

import dataclasses
import itertools
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from comma_tui.cli import main
from engine.media import inflate_runtime
from engine.media.inflate_runtime import (
    HEIGHT,
    LEARNED_FILTER_FILE,
    WIDTH,
    LearnedFilter,
    PackedFilter,
    filter_layers,
    pack_filter,
    unpack_filter,
)
from engine.media.video import iter_frames
from engine.runs.archive import write_archive
from engine.runs.postfilter import FramePairs, Objective, QATFilter, sample_crops, train_filter
from engine.runs.spec import InflateSpec, stage_names
from engine.scoring.scorer import Scorer
from ledger import Lab, Ledger
from tests.engine.runs.previews_check import assert_previews

SMALL = InflateSpec(postfilter="learned", hidden=8, depth=3, steps=30, lr=2e-3, batch=4, crop=64)

LEARNED_SPEC = """
[run]
label = "learned-tiny"
seed = 3

[preprocess]
width = 524
height = 394

[encode]
codec = "libsvtav1"
crf = 45
preset = 12

[inflate]
postfilter = "learned"
hidden = 8
steps = 20
crop = 64
batch = 2
"""


@pytest.fixture(scope="module")
def pairs(demo_assets) -> FramePairs:
    """Two pairs of demo frames, the candidate a dimmer, flatter copy of the reference.

    A codec's losses on the synthetic clip are mostly detail no 3x3 filter can restore, so a
    few steps cannot be relied on to beat the identity there; a contrast loss can be undone.
    """
    ref = np.stack(list(itertools.islice(iter_frames(demo_assets.clip), 4))).reshape(2, 2, HEIGHT, WIDTH, 3)
    cand = np.rint(ref * 0.8 + 20).astype(np.uint8)
    return FramePairs(cand, ref)


@pytest.fixture(scope="module")
def trained(pairs: FramePairs):
    return train_filter(pairs, SMALL, seed=0)


def _random_packed(quant: str, seed: int = 0) -> PackedFilter:
    rng = np.random.default_rng(seed)
    layers = filter_layers(16, 4)
    count = (lambda out: out) if quant == "per-channel" else (lambda out: 1)
    return PackedFilter(
        16,
        4,
        quant,
        tuple(rng.integers(-127, 128, (o, i, 3, 3), dtype=np.int8) for i, o in layers),
        tuple(rng.random(count(o), dtype=np.float32) / 100 for _, o in layers),
        tuple(rng.standard_normal(o).astype(np.float32) for _, o in layers),
    )


@pytest.mark.parametrize("quant", ["per-tensor", "per-channel"])
def test_int8_pack_unpack_round_trips_exactly(quant: str) -> None:
    packed = _random_packed(quant)
    data = pack_filter(packed)
    back = unpack_filter(data)
    assert (back.hidden, back.depth, back.quant) == (16, 4, quant)
    for name in ("weights", "scales", "biases"):
        for a, b in zip(getattr(packed, name), getattr(back, name), strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b)
    assert pack_filter(back) == data
    header, _, body = data.partition(b"\n")
    expected_header = {"format": "comma-tui-postfilter", "version": 1, "hidden": 16, "depth": 4, "quant": quant}
    assert json.loads(header) == expected_header
    scales = sum(o if quant == "per-channel" else 1 for _, o in filter_layers(16, 4))
    assert len(body) == sum(i * o * 9 for i, o in filter_layers(16, 4)) + 4 * scales + 4 * (16 * 3 + 3)
    with pytest.raises(ValueError, match="truncated"):
        unpack_filter(data[:-5])
    with pytest.raises(ValueError, match="not a comma-tui post-filter"):
        unpack_filter(b"PK\x03\x04" + data)


def test_the_untrained_filter_is_the_identity(tmp_path: Path) -> None:
    model = QATFilter(8, 3, "per-channel", torch.Generator().manual_seed(0))
    x = torch.randint(0, 256, (2, 3, 33, 47)).float()
    assert torch.equal(model(x), x)
    (tmp_path / LEARNED_FILTER_FILE).write_bytes(pack_filter(model.packed()))
    frame = np.random.default_rng(1).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    assert np.array_equal(inflate_runtime.make_postfilter("learned", tmp_path)(frame), frame)


def test_a_short_training_lowers_the_pixel_loss_and_is_reproducible(pairs: FramePairs, trained) -> None:
    first, last = trained.curve[0][1], trained.curve[-1][1]
    assert last < first * 0.99
    summary = trained.summary()
    assert summary["loss_first"] == first and summary["loss_last"] == last and summary["loss_best"] <= last
    assert summary["steps"] == 30 and summary["steps_per_s"] > 0
    again = train_filter(pairs, dataclasses.replace(SMALL, steps=5), seed=0)
    twice = train_filter(pairs, dataclasses.replace(SMALL, steps=5), seed=0)
    assert pack_filter(again.packed) == pack_filter(twice.packed)


def test_the_shipped_filter_at_inflate_equals_the_quantised_ema_model(trained) -> None:
    shipped = LearnedFilter(unpack_filter(pack_filter(trained.packed)), "cpu")
    x = torch.randint(0, 256, (1, 3, 48, 80)).float()
    with torch.no_grad():
        expected = trained.ema(x)
    assert not torch.equal(expected, x)  # it learned something
    assert torch.equal(shipped.forward(x), expected)
    frame = x[0].permute(1, 2, 0).to(torch.uint8).numpy()
    assert np.array_equal(shipped(frame), expected.round()[0].permute(1, 2, 0).to(torch.uint8).numpy())


def test_row_tiles_filter_a_frame_as_if_whole(trained, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = LearnedFilter(trained.packed, "cpu")
    frame = np.random.default_rng(2).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    whole = shipped(frame)
    monkeypatch.setattr(inflate_runtime, "TILE_ROWS", 16)
    tiled = shipped(frame)
    assert np.abs(whole.astype(int) - tiled).max() <= 1 and (whole == tiled).mean() > 0.999


def test_scorer_aware_loss_runs_on_cpu_and_lowers_its_own_loss(demo_assets, pairs: FramePairs) -> None:
    scorer = Scorer(demo_assets.models, device="cpu")
    spec = dataclasses.replace(SMALL, loss="scorer", crop=64)
    objective = Objective(spec, scorer)
    assert objective.paired and objective.scorer_loss is not None and objective.scorer_loss.size == (64, 64)
    cand, ref = sample_crops(pairs, np.random.default_rng(0), 2, 64, paired=True)
    model = QATFilter(8, 3, "per-channel", torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    losses = []
    for _ in range(5):  # a fixed batch, so the loss can only move because the filter learned
        loss = objective(model, cand, ref)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(p.grad is None for p in (*scorer.segnet.parameters(), *scorer.posenet.parameters()))
    # and the training loop takes it, mixed with the pixel loss
    mixed = dataclasses.replace(spec, loss={"pixel": 1.0, "scorer": 0.5}, steps=2, batch=1)
    assert len(train_filter(pairs, mixed, seed=0, scorer=scorer).curve) == 3


@pytest.fixture(scope="module")
def lab(demo_assets, tmp_path_factory: pytest.TempPathFactory) -> Lab:
    return Lab.create(tmp_path_factory.mktemp("pflab"), demo_assets.clip, demo_assets.models)


def test_a_learned_run_ships_its_filter_and_exports_to_the_same_score(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "learned.toml"
    spec.write_text(LEARNED_SPEC)
    assert main(["run", str(spec), "--lab", str(lab.root)]) == 0
    (record,) = Ledger(lab).records(Ledger(lab).runs(text="learned-tiny"))
    assert record.status == "done" and record.metrics is not None
    # In the order the queue pane draws them.
    assert list(record.stage_timings) == list(stage_names(record.spec))
    assert list(record.stage_timings) == ["encode", "train-data", "train", "archive", "inflate", "score"]
    info = record.extra["postfilter"]
    assert info["steps"] == 20 and info["hidden"] == 8 and info["pairs"] == 6
    assert {"loss_first", "loss_best", "loss_last", "steps_per_s", "curve"} <= set(info)
    assert info["loss_best"] <= min(info["loss_first"], info["loss_last"])

    # The archive is the video's own zip plus exactly one stored entry for the filter.
    archive = Path(record.artifacts) / "archive.zip"
    with zipfile.ZipFile(archive) as zf:
        assert zf.namelist() == ["0.mkv", LEARNED_FILTER_FILE]
        assert zf.getinfo(LEARNED_FILTER_FILE).file_size == info["bytes"]
        (tmp_path / "0.mkv").write_bytes(zf.read("0.mkv"))
    video_only = write_archive(tmp_path / "video.zip", {"0.mkv": tmp_path / "0.mkv"})
    entry_overhead = 30 + 46 + 2 * len(LEARNED_FILTER_FILE)  # local header + central directory record
    assert record.metrics.archive_bytes == archive.stat().st_size == video_only + info["bytes"] + entry_overhead
    assert_previews(Path(record.artifacts))

    dest = tmp_path / "submission"
    assert main(["export", record.id, str(dest), "--lab", str(lab.root)]) == 0
    assert "--postfilter learned" in (dest / "inflate.sh").read_text()
    assert main(["run", "--submission", str(dest), "--lab", str(lab.root), "--label", "learned-exported"]) == 0
    (exported,) = Ledger(lab).records(Ledger(lab).runs(text="learned-exported"))
    assert exported.metrics == record.metrics
    capsys.readouterr()
