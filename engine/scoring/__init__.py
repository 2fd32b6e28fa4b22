"""The exact scorer: the two networks, their inputs, the evaluator's accumulation, and the reference cache."""
