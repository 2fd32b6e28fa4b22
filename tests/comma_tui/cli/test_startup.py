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


def test_ledger_commands_load_only_the_ledger() -> None:
    # `comma-tui ledger show RUN` must answer in well under a second on a 100,000-run lab: it
    # loads the ledger, not the codecs (PyAV), the scheduler or the other command groups.
    probe = (
        "import sys, comma_tui.cli as cli; cli.build_parser(['--lab', 'x', 'ledger', 'show', 'r1']); "
        "print(sorted(m for m in ('av', 'engine.sched.control', 'comma_tui.cli.sched', 'comma_tui.cli.ledger') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['comma_tui.cli.ledger']"
