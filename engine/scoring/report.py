"""The challenge score and its report: the formula, written once, and the official report lines.

score = 100*segnet + sqrt(10*posenet) + 25*rate, computed in the evaluator's operation order so the
printed digits agree. Torch-free, so the CLI, the ledger's tests and the console can use it cheaply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ledger import Metrics


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
        )

    def lines(self) -> list[str]:
        """The result lines of the official report, same labels and decimals."""
        return [
            f"=== Evaluation results over {self.pairs} samples ===",
            f"  Average PoseNet Distortion: {self.posenet:.8f}",
            f"  Average SegNet Distortion: {self.segnet:.8f}",
            f"  Submission file size: {self.archive_bytes:,} bytes",
            f"  Original uncompressed size: {self.original_bytes:,} bytes",
            f"  Compression Rate: {self.rate:.8f}",
            f"  Final score: 100*segnet_dist + sqrt(10*posenet_dist) + 25*rate = {self.score:.2f}",
        ]

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
        }
