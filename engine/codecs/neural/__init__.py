"""The neural codec: the clip learned by a small HNeRV-style decoder, one latent per frame pair."""

from pathlib import Path


def runtime_path() -> Path:
    """The standalone inflate program (`runtime.py`), found without importing it (it loads torch)."""
    return Path(__file__).with_name("runtime.py")
