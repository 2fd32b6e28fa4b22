"""Quick commands stay quick: the console and the ledger/queue commands never load torch."""

from __future__ import annotations

import subprocess
import sys


def test_console_and_queue_commands_start_without_torch() -> None:
    # torch takes seconds to import; `comma-tui sched status`, `ledger list` and the console's
    # first paint must not pay for it (only scoring, encoding and the demo assets do).
    probe = (
        "import sys; import comma_tui.cli, comma_tui.app, engine.sched.control, engine.sched.scheduler; "
        "comma_tui.cli.build_parser(); print(sorted(m for m in ('torch', 'timm') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
