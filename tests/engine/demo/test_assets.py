"""Demo assets: a scorer that reads an encode as the real one would, made the same way every time."""

from __future__ import annotations

from pathlib import Path

from engine.demo.assets import make_demo_assets
from engine.scoring.evaluate import evaluate
from engine.scoring.scorer import Scorer
from engine.scoring.weights import POSENET_FILE, SEGNET_FILE


def test_a_light_encode_moves_only_a_few_segnet_pixels(demo_assets, light_and_heavy) -> None:
    # The real SegNet disagrees on about a percent of pixels for a light encode, so its term
    # (100 x the fraction) is about 1 of a score of 2-4. A demo SegNet on near-ties flipped
    # 15 %, and made the demo's scores ~20 points of SegNet alone.
    _, raw = light_and_heavy["light"]
    report = evaluate(Scorer(demo_assets.models, device="cpu"), demo_assets.clip, raw, archive_bytes=0).report
    assert 0 < report.segnet < 0.03
    assert report.posenet > 0


def test_the_same_frames_and_seed_give_the_same_weights_and_each_stage_reports(tmp_path: Path) -> None:
    # Reference caches and fingerprints key on the weight files' bytes.
    events: list[tuple[str, int, int]] = []
    first = make_demo_assets(tmp_path / "first", frames=2, progress=lambda *event: events.append(event))
    again = make_demo_assets(tmp_path / "again", frames=2)
    for name in (POSENET_FILE, SEGNET_FILE):
        assert (first.models / name).read_bytes() == (again.models / name).read_bytes()
    assert first.clip.read_bytes() == again.clip.read_bytes()
    stages = list(dict.fromkeys(stage for stage, _, _ in events))
    assert stages == ["clip", "calibrate", "fit"]
    for stage in stages:
        counts = [(done, total) for name, done, total in events if name == stage]
        assert counts[-1][0] == counts[-1][1] and [d for d, _ in counts] == sorted(d for d, _ in counts)
