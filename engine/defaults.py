"""Defaults the CLI shows in its help, importable without loading torch."""

DEMO_FRAMES = 60  # one demo clip: 3 s at 20 fps, enough motion for both distortions to move
SCORE_BATCH_SIZE = 16  # the official evaluator's batch size; CPU results depend on it slightly
# Pairs a run keeps previews of for the compare view (`engine.scoring.previews`); 0 keeps none.
DEFAULT_PREVIEW_PAIRS = 12
MIN_PREVIEW_PAIRS, MAX_PREVIEW_PAIRS = 4, 16
