"""The demo lab's assets: a synthetic clip with known classes, and a demo scorer calibrated on it."""
