"""Previews kept while scoring: the pairs chosen, the bounded top-k, the files, and numbers left alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.scoring.early import EarlyPlan, Floor
from engine.scoring.evaluate import evaluate
from engine.scoring.previews import (
    PREVIEW_BUDGET_BYTES,
    PreviewKeeper,
    fixed_pairs,
    split_count,
    write_previews,
)
from engine.scoring.scorer import Scorer
from ledger.previews import INDEX_NAME


@pytest.fixture(scope="module")
def scorer(demo_assets) -> Scorer:
    return Scorer(demo_assets.models, device="cpu")


def test_fixed_pairs_are_evenly_spaced_and_depend_only_on_the_clip() -> None:
    assert fixed_pairs(600, 6) == (50, 150, 250, 350, 450, 550)
    assert fixed_pairs(600, 6) == fixed_pairs(600, 6)
    assert fixed_pairs(3, 6) == (0, 1, 2)  # a clip shorter than the list previews every pair
    assert split_count(12) == (6, 3) and split_count(4) == (2, 1) and split_count(16) == (8, 4)


def test_the_keeper_holds_a_bounded_top_k_and_ends_with_the_worst() -> None:
    rng = np.random.default_rng(3)
    pairs, batch = 200, 16
    keeper = PreviewKeeper(pairs, 12)
    seg_all, pose_all = rng.random(pairs).astype(np.float32), rng.random(pairs).astype(np.float32)
    order = rng.permutation(range(0, pairs, batch))  # batches in any order, as early verdicts visit them
    for first in order:
        n = min(batch, pairs - first)
        maps = torch.from_numpy(rng.integers(0, 5, (n, 384, 512), dtype=np.uint8))
        keeper.observe(
            int(first),
            maps,
            maps,
            torch.from_numpy(pose_all[first : first + n]),
            torch.from_numpy(seg_all[first : first + n]),
        )
        assert len(keeper.kept) <= len(keeper.fixed) + 2 * keeper.worst  # never more maps than previews
    worst_seg = set(np.argsort(-seg_all)[: keeper.worst].tolist())
    worst_pose = set(np.argsort(-pose_all)[: keeper.worst].tolist())
    assert set(keeper.kept) == set(keeper.fixed) | worst_seg | worst_pose
    assert "worst-segnet" in keeper.reasons(int(np.argmax(seg_all)))
    assert keeper.reasons(keeper.fixed[0])[0] == "fixed"


def test_previews_leave_the_numbers_alone_and_fit_the_budget(
    demo_assets, light_and_heavy, scorer: Scorer, tmp_path: Path
) -> None:
    _, raw = light_and_heavy["heavy"]
    plain = evaluate(scorer, demo_assets.clip, raw, archive_bytes=1000, batch_size=4)
    keeper = PreviewKeeper(6, 4)
    watched = evaluate(scorer, demo_assets.clip, raw, archive_bytes=1000, batch_size=4, previews=keeper)
    assert watched.report == plain.report
    assert np.array_equal(watched.distortions.segnet_per_pair, plain.distortions.segnet_per_pair)
    assert np.array_equal(watched.distortions.posenet_per_pair, plain.distortions.posenet_per_pair)

    size = write_previews(keeper, tmp_path / "previews", demo_assets.clip, raw)
    files = list((tmp_path / "previews").iterdir())
    assert size == sum(f.stat().st_size for f in files) <= PREVIEW_BUDGET_BYTES
    index = json.loads((tmp_path / "previews" / INDEX_NAME).read_text())
    kept = {e["pair"]: e for e in index["kept"]}
    worst = int(np.argmax(plain.distortions.segnet_per_pair))
    assert "worst-segnet" in kept[worst]["why"]
    assert kept[worst]["segnet"] == pytest.approx(float(plain.distortions.segnet_per_pair[worst]))
    assert index["fixed"] == [1, 4] and {1, 4} <= set(kept)
    assert kept[1]["frame"] == 3  # SegNet's frame of pair 1: the last of frames 2 and 3
    # Budgets too small for every pair: each holds; the largest that leaves a pair out keeps the worst.
    # (JPEG quality gives way first, so how small that is depends on the clip: step down to it.)
    for step in range(15, 0, -1):
        budget = size * step // 16
        tight = write_previews(keeper, tmp_path / "tight", demo_assets.clip, raw, budget=budget)
        assert tight == sum(f.stat().st_size for f in (tmp_path / "tight").iterdir()) <= budget
        tight_kept = {e["pair"] for e in json.loads((tmp_path / "tight" / INDEX_NAME).read_text())["kept"]}
        if len(tight_kept) < len(kept):
            break
    assert worst in tight_kept and len(tight_kept) < len(kept)
    frame = Image.open(tmp_path / "previews" / "00001-candidate.jpg")
    classes = np.asarray(Image.open(tmp_path / "previews" / "00001-candidate-classes.png"))
    assert frame.size == (512, 384) and classes.shape == (384, 512) and classes.max() < 5


def test_an_early_stop_previews_only_the_pairs_it_scored(demo_assets, light_and_heavy, scorer: Scorer) -> None:
    encoded, raw = light_and_heavy["heavy"]
    size = encoded.stat().st_size
    plan = EarlyPlan(Floor("r0001", 0.5, 0.005), 0.999, seed=3, charged_bytes=size)
    keeper = PreviewKeeper(6, 4)
    result = evaluate(scorer, demo_assets.clip, raw, size, batch_size=1, early=plan, previews=keeper)
    assert result.report.early is not None
    scored = set(np.flatnonzero(~np.isnan(result.distortions.segnet_per_pair)).tolist())
    assert scored and set(keeper.kept) <= scored
