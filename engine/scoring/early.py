"""Early verdicts: after each batch, a lower confidence bound of the full score, and when to stop.

Scoring visits the clip's batches (the evaluator's own: 16 consecutive pairs) in a seeded random
order that covers the clip evenly: the clip is cut into `MIN_BATCHES` parts of consecutive
batches, and each round visits one random batch of every part, so the batches seen are a
stratified random sample, without replacement, of the clip's batches, and no verdict rests on
one stretch of road. The batch is the sampling unit: consecutive pairs look alike, so pairs of
one batch are not independent draws, while batches drawn at random are.

Each distortion's clip mean is estimated with a ratio estimator whose auxiliary variable is the
floor's own distortion on the same batch, known for every batch (the floor was scored in full on
the same clip): scenes that are hard for one encode are hard for the other, so the ratio of a
run's batch to the floor's batch varies far less than the batch itself, and a sample that happens
to hold only hard (or only easy) scenes is weighed for it. Without the floor's per-pair values
(removed, or another layout) the auxiliary variable is the batch's pair count, which makes it the
plain mean of the pairs seen. Each batch stands for its part of the clip. Its standard error is
the one of a ratio estimate from a simple random sample of batches (which overstates a stratified
sample's), finite-population correction included:
    se = sqrt((1 - m/B) * s_e^2 / m) * (Xbar / xbar) * B / N,  e_b = y_b - R x_b,  R = sum y / sum x.
The lower bound is the estimate minus t * se, with Student's t at m - 1 degrees of freedom (a
spread estimated from a few batches is itself uncertain, and t pays for that), and never below
the certain bound (what was seen, over every pair: the pairs not seen cannot score below zero).

The score is 100*segnet + sqrt(10*posenet) + 25*rate: the rate term is exact, and the score rises
with both distortions, so the two lower bounds give a lower bound of the score (the square root
is applied to the PoseNet bound, never to an estimate). The confidence is split in two, half for
each distortion, and each half is spent evenly over the looks that may stop the run (Bonferroni):
the chance that any look, at any batch, puts the bound above the true full score is at most
1 - confidence, however often it looks. A run is rejected early when the bound exceeds the floor
plus epsilon; the last batch is no look at all, since the score is then exact.

Honest limits: t is exact for normally distributed ratio residuals and only approximately right
otherwise; no look comes before `MIN_BATCHES` batches. `benchmarks/early_verdict.py` replays real
runs in many orders and counts misses.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.scoring.report import score_terms

DEFAULT_CONFIDENCE = 0.999
MIN_BATCHES = 4  # no look before this many batches: fewer say too little about the spread


@dataclass(frozen=True)
class Floor:
    """The floor a run is compared with: its run, (ranked) score, the lab's epsilon, its per-pair values.

    The per-pair distortions (clip order) are the rule's auxiliary variable; empty when unknown.
    """

    run_id: str
    score: float
    epsilon: float
    posenet: tuple[float, ...] = ()
    segnet: tuple[float, ...] = ()


@dataclass(frozen=True)
class EarlyPlan:
    """What an early verdict is judged by: the floor to beat, the confidence, and the visiting order's seed."""

    floor: Floor
    confidence: float
    seed: int
    charged_bytes: int  # the bytes the ranked score's (exact) rate term charges


@dataclass(frozen=True)
class Look:
    """The rule's view after some batches: the estimate and lower bound of the full score."""

    batches: int  # batches seen
    pairs: int  # pairs seen
    posenet: float  # estimates of the clip's mean distortions
    segnet: float
    estimate: float  # of the ranked score
    bound: float  # -inf before the first look
    reject: bool  # the bound exceeds floor + epsilon: stop here


@dataclass(frozen=True)
class EarlyVerdict:
    """A run stopped early: the look that settled it, and the plan it was judged by."""

    look: Look
    plan: EarlyPlan


def strata(batches: int) -> list[np.ndarray]:
    """The clip's batch indexes cut into `MIN_BATCHES` runs of consecutive batches (its parts)."""
    return [part for part in np.array_split(np.arange(batches), min(MIN_BATCHES, batches)) if len(part)]


def visiting_order(batches: int, seed: int) -> list[int]:
    """A seeded random order that covers the clip evenly: each round takes one batch of every part.

    Within a part the batches come in random order, and so do the parts within a round; after any
    whole round the batches seen are a stratified random sample (one per part per round).
    """
    rng = np.random.default_rng(seed)
    queues = [[int(i) for i in rng.permutation(part)] for part in strata(batches)]
    order: list[int] = []
    while any(queues):
        order.extend(queues[h].pop() for h in rng.permutation(len(queues)) if queues[h])
    return order


@functools.cache
def student_t_quantile(p: float, df: int) -> float:
    """The `p` quantile (p > 0.5) of Student's t with `df` degrees of freedom, by bisection on its tail."""
    if df <= 0:
        return math.inf
    target = 1.0 - p
    low, high = 0.0, 1.0
    while _t_tail(high, df) > target:
        high *= 2.0
        if high > 1e12:
            return math.inf
    for _ in range(200):
        mid = 0.5 * (low + high)
        if _t_tail(mid, df) > target:
            low = mid
        else:
            high = mid
    return high


def _t_tail(t: float, df: int) -> float:
    """P(T > t) for t >= 0: half the regularized incomplete beta I_{df/(df+t^2)}(df/2, 1/2)."""
    return 0.5 * _incomplete_beta(df / (df + t * t), df / 2.0, 0.5)


def _incomplete_beta(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function I_x(a, b), by its continued fraction (Lentz)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - _incomplete_beta(1.0 - x, b, a)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return front * h / a


class EarlyRule:
    """Feeds on batch totals in visiting order and says, after each, whether the run has lost for sure."""

    def __init__(self, plan: EarlyPlan, batch_pairs: Sequence[int], rate_term: float) -> None:
        self.plan = plan
        self.rate_term = rate_term
        self.batch_pairs = list(batch_pairs)
        self.total_pairs = sum(self.batch_pairs)
        looks = max(1, len(self.batch_pairs) - MIN_BATCHES)
        # Half the miss chance per distortion, spread evenly over the looks that may stop the run.
        self._alpha = (1.0 - plan.confidence) / 2.0 / looks
        self._aux_pose = self._auxiliary(plan.floor.posenet)
        self._aux_seg = self._auxiliary(plan.floor.segnet)
        self._part = np.empty(len(self.batch_pairs), dtype=np.int64)
        for h, part in enumerate(strata(len(self.batch_pairs))):
            self._part[part] = h
        self._seen: list[int] = []
        self._pose: list[float] = []
        self._seg: list[float] = []

    def _auxiliary(self, per_pair: Sequence[float]) -> np.ndarray:
        """The floor's per-batch totals of a distortion; the pair counts where they cannot serve."""
        counts = np.asarray(self.batch_pairs, dtype=np.float64)
        values = np.asarray(per_pair, dtype=np.float64)
        if len(values) != self.total_pairs or not np.isfinite(values).all():
            return counts
        totals = np.add.reduceat(values, np.cumsum([0, *self.batch_pairs[:-1]]))
        return totals if (totals > 0).all() else counts

    @property
    def limit(self) -> float:
        """The bound a run must exceed to be rejected early: floor + epsilon."""
        return self.plan.floor.score + self.plan.floor.epsilon

    def add(self, index: int, pose_total: float, seg_total: float) -> Look:
        """Take batch `index`'s distortion totals (sums over its pairs) and look."""
        self._seen.append(index)
        self._pose.append(pose_total)
        self._seg.append(seg_total)
        return self.look()

    def look(self) -> Look:
        """The estimate and bound from the batches seen so far."""
        seen = int(sum(self.batch_pairs[i] for i in self._seen))
        m, batches = len(self._seen), len(self.batch_pairs)
        pose, seg = np.asarray(self._pose), np.asarray(self._seg)
        pose_mean, pose_se = self._ratio(pose, self._aux_pose)
        seg_mean, seg_se = self._ratio(seg, self._aux_seg)
        estimate = self._score(seg_mean, pose_mean)
        if m < MIN_BATCHES or m >= batches:
            return Look(m, seen, pose_mean, seg_mean, estimate, -math.inf, False)
        t = student_t_quantile(1.0 - self._alpha, m - 1)
        bound = self._score(
            max(seg_mean - t * seg_se, float(seg.sum()) / self.total_pairs),
            max(pose_mean - t * pose_se, float(pose.sum()) / self.total_pairs),
        )
        return Look(m, seen, pose_mean, seg_mean, estimate, bound, bool(bound > self.limit))

    def _ratio(self, totals: np.ndarray, auxiliary: np.ndarray) -> tuple[float, float]:
        """The ratio estimate of the clip's mean of one distortion, and its standard error.

        Each batch seen stands for its part of the clip (its weight: the part's batches over the
        part's batches seen), so a round not yet finished does not lean to the parts it covered.
        The spread is taken as if the sample were simple random, which overstates a stratified
        sample's: the error is never understated for it.
        """
        m, batches = len(totals), len(self.batch_pairs)
        seen = np.asarray(self._seen)
        parts = self._part[seen]
        weights = np.bincount(self._part, minlength=parts.max() + 1)[parts] / np.bincount(parts)[parts]
        x = auxiliary[seen]
        ratio = float((weights * totals).sum() / (weights * x).sum())
        mean = ratio * float(auxiliary.sum()) / self.total_pairs
        if m < 2:
            return mean, math.inf
        residuals = totals - ratio * x
        spread = float(residuals @ residuals) / (m - 1)
        scale = float(auxiliary.mean() / x.mean()) * batches / self.total_pairs
        return mean, math.sqrt((1.0 - m / batches) * spread / m) * scale

    def _score(self, segnet: float, posenet: float) -> float:
        segnet_term, posenet_term, _ = score_terms(max(0.0, posenet), max(0.0, segnet), 0.0)
        return segnet_term + posenet_term + self.rate_term


def replay(rule: EarlyRule, order: Sequence[int], pose_totals: Sequence[float], seg_totals: Sequence[float]) -> Look:
    """Feed whole batches in `order` until the rule rejects or the clip ends; the last look."""
    look = None
    for index in order:
        look = rule.add(index, pose_totals[index], seg_totals[index])
        if look.reject:
            break
    assert look is not None, "a clip has at least one batch"
    return look
