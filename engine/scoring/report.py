"""The challenge score and its report: the formula, written once, and the official report lines.

score = 100*segnet + sqrt(10*posenet) + 25*rate, computed in the evaluator's operation order so the
printed digits agree. Torch-free, so the CLI, the ledger's tests and the console can use it cheaply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledger import Metrics

if TYPE_CHECKING:
    from engine.scoring.early import EarlyVerdict


def score_terms(posenet: float, segnet: float, rate: float) -> tuple[float, float, float]:
    """The score's three terms (segnet, posenet, rate); their sum in this order is the score."""
    return 100 * segnet, math.sqrt(posenet * 10), 25 * rate


def score_value(posenet: float, segnet: float, rate: float) -> float:
    """score = 100*segnet + sqrt(10*posenet) + 25*rate, in the evaluator's operation order."""
    segnet_term, posenet_term, rate_term = score_terms(posenet, segnet, rate)
    return segnet_term + posenet_term + rate_term


@dataclass(frozen=True)
class ScoreReport:
    """A scored submission: distortions, sizes, rate and score, plus what scored it."""

    posenet: float
    segnet: float
    pairs: int
    archive_bytes: int
    original_bytes: int
    fingerprint: str
    device: str
    early: EarlyVerdict | None = None  # set when an early verdict stopped scoring: the distortions are estimates

    @property
    def rate(self) -> float:
        return self.archive_bytes / self.original_bytes

    @property
    def score(self) -> float:
        return score_value(self.posenet, self.segnet, self.rate)

    @property
    def terms(self) -> dict[str, float]:
        """The three parts of the score, for explaining where it comes from."""
        segnet, posenet, rate = score_terms(self.posenet, self.segnet, self.rate)
        return {"segnet": segnet, "posenet": posenet, "rate": rate}

    def metrics(self, charged_bytes: int | None = None) -> Metrics:
        """The ledger's metrics of this report; `charged_bytes` adds the score on what inflate really reads."""
        segnet_term, posenet_term, rate_term = score_terms(self.posenet, self.segnet, self.rate)
        charged_score = None
        if charged_bytes is not None:
            charged_score = score_value(self.posenet, self.segnet, charged_bytes / self.original_bytes)
        return Metrics(
            posenet=self.posenet,
            segnet=self.segnet,
            archive_bytes=self.archive_bytes,
            original_bytes=self.original_bytes,
            rate=self.rate,
            score=self.score,
            segnet_term=segnet_term,
            posenet_term=posenet_term,
            rate_term=rate_term,
            charged_bytes=charged_bytes,
            charged_score=charged_score,
            pairs=self.pairs,
            **self._early_metrics(),
        )

    def _early_metrics(self) -> dict[str, Any]:
        if self.early is None:
            return {}
        look, plan = self.early.look, self.early.plan
        return {
            "estimated": True,
            "pairs_scored": look.pairs,
            "score_bound": look.bound,
            "confidence": plan.confidence,
            "early_floor": plan.floor.score,
        }

    def lines(self) -> list[str]:
        """The result lines of the official report, same labels and decimals; an estimate says so."""
        if self.early is None:
            head, estimated = f"=== Evaluation results over {self.pairs} samples ===", ""
        else:
            head = f"=== Rejected early: estimated from {self.early.look.pairs} of {self.pairs} samples ==="
            estimated = " (estimate)"
        lines = [
            head,
            f"  Average PoseNet Distortion{estimated}: {self.posenet:.8f}",
            f"  Average SegNet Distortion{estimated}: {self.segnet:.8f}",
            f"  Submission file size: {self.archive_bytes:,} bytes",
            f"  Original uncompressed size: {self.original_bytes:,} bytes",
            f"  Compression Rate: {self.rate:.8f}",
            f"  Final score{estimated}: 100*segnet_dist + sqrt(10*posenet_dist) + 25*rate = {self.score:.2f}",
        ]
        if self.early is not None:
            plan = self.early.plan
            lines.append(
                f"  Lower bound of the ranked score: {self.early.look.bound:.2f} with {plan.confidence * 100:g}% "
                f"confidence (floor {plan.floor.score:.2f} of {plan.floor.run_id} + epsilon {plan.floor.epsilon:g})"
            )
        return lines

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view, rounded nowhere."""
        return {
            "posenet": self.posenet,
            "segnet": self.segnet,
            "pairs": self.pairs,
            "archive_bytes": self.archive_bytes,
            "original_bytes": self.original_bytes,
            "rate": self.rate,
            "score": self.score,
            "terms": self.terms,
            "fingerprint": self.fingerprint,
            "device": self.device,
            "estimated": self.early is not None,
            **{k: v for k, v in self._early_metrics().items() if k != "estimated"},
        }
