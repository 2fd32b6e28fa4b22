"""Fixtures of the console's tests: a lab with a fixed synthetic history, and Pilot on asyncio."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import Lab
from tests.comma_tui.app_fixtures import fill_fixed, make_lab, stand_in_assets


@pytest.fixture
def anyio_backend() -> str:
    """Pilot runs on asyncio."""
    return "asyncio"


@pytest.fixture
def lab(tmp_path: Path) -> tuple[Lab, dict[str, str]]:
    """A lab with the fixed synthetic history; returns it and the ids by role."""
    assets = stand_in_assets(tmp_path / "assets")
    made = make_lab(tmp_path / "lab", assets.clip, assets.models)
    return made, fill_fixed(made)
