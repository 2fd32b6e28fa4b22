"""Calibrating the demo networks: the fitted tail is the SegNet the scorer runs, and it learns the scene."""

from __future__ import annotations

import torch

from engine.demo.calibration import frozen_features, tail_logits
from engine.media.video import iter_pair_batches
from engine.scoring import networks
from engine.scoring.scorer import Scorer


def test_tail_on_the_frozen_features_is_the_whole_segnet(demo_assets) -> None:
    # The fit runs the decoder's last blocks on features computed once; if that split ever
    # drifted from smp's own forward (it re-implements the block), the fit would train a
    # different function from the one the scorer runs.
    segnet = Scorer(demo_assets.models, device="cpu").segnet
    batch = torch.from_numpy(next(iter_pair_batches(demo_assets.clip, 2)))
    seg_in = networks.segnet_input(networks.to_model_input(batch))
    with torch.no_grad():
        assert torch.equal(tail_logits(segnet, frozen_features(segnet, [seg_in])), segnet(seg_in))
