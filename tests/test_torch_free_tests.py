"""The ledger's and the console's tests run without torch: importing them loads none of it.

torch costs seconds to import and ties these tests to the engine's heaviest dependency; the
fixtures that need the engine import it inside themselves (see `tests/conftest.py`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent
TORCH_FREE = ("ledger", "comma_tui")

# Each module in turn, in one process: the first one that pulls torch in is named.
PROBE = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
    if "torch" in sys.modules:
        print(name)
        break
"""


def _modules() -> list[str]:
    paths = sorted(p for folder in TORCH_FREE for p in (TESTS / folder).rglob("*.py"))
    return [".".join(p.relative_to(TESTS.parent).with_suffix("").parts) for p in paths]


def test_ledger_and_console_test_modules_import_no_torch() -> None:
    modules = _modules()
    assert "tests.comma_tui.app_fixtures" in modules and "tests.ledger.test_ledger" in modules
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *modules], capture_output=True, text=True, timeout=300, cwd=TESTS.parent
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"{done.stdout.strip()} imports torch"
