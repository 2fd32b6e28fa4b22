"""Early verdicts in the scorer: the rule's bound, and scoring in a random batch order.

The order must not move a single final number: a run scored in full in any order gets the
evaluator's digits (the oracle's), and a run stopped early reports estimates of the pairs it saw.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from engine.media.video import iter_pair_batches
from engine.scoring.early import (
    MIN_BATCHES,
    EarlyPlan,
    EarlyRule,
    Floor,
    replay,
    strata,
    student_t_quantile,
    visiting_order,
)
from engine.scoring.evaluate import evaluate
from engine.scoring.reference_cache import CacheKey, ReferenceCache
from engine.scoring.report import score_value
from engine.scoring.scorer import Scorer
from tests.engine.scoring.evaluator_oracle import oracle_evaluate, oracle_networks


def _plan(floor: float, epsilon: float = 0.005, seed: int = 0, per_pair: tuple | None = None) -> EarlyPlan:
    pose, seg = per_pair or ((), ())
    return EarlyPlan(Floor("r0001", floor, epsilon, tuple(pose), tuple(seg)), 0.999, seed, 0)


def test_student_t_quantiles_match_the_tables() -> None:
    assert student_t_quantile(0.975, 10) == pytest.approx(2.2281, abs=1e-4)
    assert student_t_quantile(0.999, 5) == pytest.approx(5.8934, abs=1e-4)
    assert student_t_quantile(0.9995, 3) == pytest.approx(12.9240, abs=1e-3)
    assert student_t_quantile(0.975, 100_000) == pytest.approx(1.95997, abs=1e-4)


def test_orders_are_seeded_permutations() -> None:
    assert sorted(visiting_order(38, 7)) == list(range(38))
    assert visiting_order(38, 7) == visiting_order(38, 7) != visiting_order(38, 8)


BATCHES, PAIRS = 38, 16


def _scenes(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair (pose, seg) of an encode of a clip whose first half is twice as hard as its second."""
    rng = np.random.default_rng(seed)
    hard = np.repeat([2.0, 1.0], BATCHES * PAIRS // 2)
    seg = 0.1 * hard * rng.uniform(0.8, 1.2, BATCHES * PAIRS)
    pose = 0.002 * hard * rng.gamma(4.0, 0.25, BATCHES * PAIRS)
    return pose, seg


def _totals(per_pair: np.ndarray) -> list[float]:
    return [float(b.sum()) for b in per_pair.reshape(BATCHES, PAIRS)]


def _score(pose: np.ndarray, seg: np.ndarray) -> float:
    return score_value(float(pose.mean()), float(seg.mean()), 0.0)


def _verdict(run: tuple[np.ndarray, np.ndarray], floor_score: float, seed: int, floor=None):
    pose, seg = run
    rule = EarlyRule(_plan(floor_score, per_pair=floor, seed=seed), [PAIRS] * BATCHES, rate_term=0.0)
    return rule, replay(rule, visiting_order(BATCHES, seed), _totals(pose), _totals(seg))


def test_a_clear_loser_is_rejected_at_the_first_look_against_a_floor_like_it() -> None:
    floor = _scenes(seed=1)
    loser = (floor[0] * 2.0, floor[1] * 2.0)  # the same scenes, twice the distortion everywhere
    rule = EarlyRule(_plan(_score(*floor), per_pair=floor), [PAIRS] * BATCHES, rate_term=0.0)
    order = visiting_order(BATCHES, 3)
    looks = [rule.add(i, _totals(loser[0])[i], _totals(loser[1])[i]) for i in order[:MIN_BATCHES]]
    assert not any(look.reject for look in looks[:-1]) and all(math.isinf(look.bound) for look in looks[:-1])
    assert looks[-1].reject and looks[-1].pairs == MIN_BATCHES * PAIRS
    assert looks[-1].bound < _score(*loser) and looks[-1].estimate == pytest.approx(_score(*loser))


def test_without_the_floors_values_a_loser_needs_more_batches_but_is_still_rejected() -> None:
    floor = _scenes(seed=1)
    loser = (floor[0] * 2.0, floor[1] * 2.0)
    _, look = _verdict(loser, _score(*floor), seed=3)
    assert look.reject and MIN_BATCHES < look.batches < BATCHES


def test_a_run_level_with_the_floor_is_never_rejected_early() -> None:
    for seed in range(20):
        run = _scenes(seed)
        for floor in (None, _scenes(seed + 100)):
            _, look = _verdict(run, _score(*run), seed, floor)
            assert not look.reject and look.batches == BATCHES and look.estimate == pytest.approx(_score(*run))


def test_the_bound_stays_below_the_full_score_in_every_order() -> None:
    run, floor = _scenes(seed=5), _scenes(seed=6)
    full = _score(*run)
    for seed in range(200):
        for aux in (None, floor):
            rule = EarlyRule(_plan(0.0, per_pair=aux), [PAIRS] * BATCHES, 0.0)
            bounds = [rule.add(i, _totals(run[0])[i], _totals(run[1])[i]).bound for i in visiting_order(BATCHES, seed)]
            assert max(bounds) <= full


def test_a_short_last_batch_and_the_rate_term_count_exactly() -> None:
    sizes = [16] * 5 + [7]
    pose, seg = [0.01 * n for n in sizes], [0.2 * n for n in sizes]
    rule = EarlyRule(_plan(floor=1e9), sizes, rate_term=0.75)
    for i in range(6):
        look = rule.add(i, pose[i], seg[i])
    assert look.pairs == 87 and not look.reject and math.isinf(look.bound)  # the last batch is no look
    assert look.estimate == pytest.approx(score_value(0.01, 0.2, 0.03))
    assert (look.posenet, look.segnet) == (pytest.approx(0.01), pytest.approx(0.2))


@pytest.fixture(scope="module")
def scorer(demo_assets) -> Scorer:
    return Scorer(demo_assets.models, device="cpu")


@pytest.fixture(scope="module")
def heavy(light_and_heavy) -> tuple[Path, int]:
    encoded, raw = light_and_heavy["heavy"]
    return raw, encoded.stat().st_size


def test_scored_in_full_in_a_random_order_gives_the_evaluators_digits(
    demo_assets, scorer: Scorer, heavy: tuple[Path, int], tmp_path: Path
) -> None:
    raw, size = heavy
    rate = size / demo_assets.clip.stat().st_size
    batches = list(zip(iter_pair_batches(demo_assets.clip, 1), iter_pair_batches(raw, 1), strict=True))
    pose, seg, score, per_pose, per_seg = oracle_evaluate(*oracle_networks(demo_assets.models), batches, rate)
    unbeatable = EarlyPlan(Floor("r0001", 1e9, 0.005), 0.999, seed=11, charged_bytes=size)  # never stops
    cache = ReferenceCache(tmp_path)
    seen: list[tuple[int, int, str]] = []
    shuffled = evaluate(
        scorer,
        demo_assets.clip,
        raw,
        size,
        batch_size=1,
        cache=cache,
        early=unbeatable,
        progress=lambda done, total, detail="": seen.append((done, total, detail)),
    )
    assert shuffled.report.early is None
    assert (shuffled.report.posenet, shuffled.report.segnet, shuffled.report.score) == (pose, seg, score)
    assert np.array_equal(shuffled.distortions.posenet_per_pair, per_pose)
    assert np.array_equal(shuffled.distortions.segnet_per_pair, per_seg)
    assert [s[:2] for s in seen] == [(i, 6) for i in range(7)]  # "0 of 6": scoring has begun
    assert seen[0][2] == "batches · floor 1000000000.00"  # before the first batch: nothing to estimate
    assert seen[1][2].startswith("batches · estimate ") and seen[1][2].endswith(" vs floor 1000000000.00")
    assert seen[4][2].startswith("batches · bound ")  # from the first look on
    # The cache, written in that order, holds the clip's batches in the clip's order.
    entry = cache.open(CacheKey.for_run(demo_assets.clip, scorer, 1, 6))
    assert entry is not None and [name for name, _, _ in entry.files] == [f"batch-{i:05d}.npz" for i in range(6)]
    warm = evaluate(scorer, demo_assets.clip, raw, size, batch_size=1, cache=cache, early=unbeatable)
    assert warm.report == shuffled.report


def test_a_clear_loser_stops_early_with_estimates(
    demo_assets, scorer: Scorer, heavy: tuple[Path, int], tmp_path: Path
) -> None:
    raw, size = heavy
    plan = EarlyPlan(Floor("r0001", 0.5, 0.005), 0.999, seed=3, charged_bytes=size)
    result = evaluate(scorer, demo_assets.clip, raw, size, batch_size=1, cache=ReferenceCache(tmp_path), early=plan)
    early = result.report.early
    assert early is not None and early.look.reject and early.look.pairs == MIN_BATCHES
    scored = ~np.isnan(result.distortions.segnet_per_pair)
    assert scored.sum() == MIN_BATCHES and set(np.flatnonzero(scored)) == set(visiting_order(6, 3)[:MIN_BATCHES])
    # Without the floor's values, each pair seen stands for its part of the clip (one seen of each part).
    weights = np.zeros(6)
    for part in strata(6):
        weights[part] = len(part)
    seen = result.distortions.segnet_per_pair[scored]
    assert result.report.segnet == pytest.approx(float((weights[scored] * seen).sum() / weights[scored].sum()))
    m = result.report.metrics(size)
    assert m.estimated and m.pairs_scored == MIN_BATCHES and m.pairs == 6 and m.score_bound > 0.505
    m.check()
    assert result.report.lines()[0] == f"=== Rejected early: estimated from {MIN_BATCHES} of 6 samples ==="
    assert not any((tmp_path / "reference").iterdir())  # an unfinished cache entry is never left behind
