"""When the lab cannot be read, or the console hits a bug: one message, kept in view, never a flood.

A lab whose ledger a newer comma-tui wrote is real (its file says schema 99); the bug is made by
having the client's live read raise an exception that no user mistake raises.
"""

from __future__ import annotations

import json

import pytest

from comma_tui.app import LOG_NAME, CommaApp
from ledger import Lab
from ledger.schema import SCHEMA_VERSION
from tests.comma_tui.pilot import SIZE, wait_for

pytestmark = pytest.mark.anyio


def status_of(app: CommaApp) -> str:
    """The main screen's status line, as text."""
    return str(app.screen.query_one("#status").content)


async def test_a_lab_it_cannot_read_says_so_once_and_keeps_it_in_view(lab: tuple[Lab, dict[str, str]]) -> None:
    the_lab, _ = lab
    path = the_lab.ledger_dir / "runs-0000.json"
    good = path.read_text()
    data = json.loads(good)
    data["_meta"]["1"]["schema"] = SCHEMA_VERSION + 98
    path.write_text(json.dumps(data))
    app = CommaApp(the_lab, start_scheduler=False, poll_seconds=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "cannot read the lab" in status_of(app))
        assert "newer comma-tui" in status_of(app)
        await pilot.pause(3.0)  # thirty polls' worth of time
        errors = [n for n in app._notifications if n.severity == "error"]
        assert len(errors) == 1 and "newer comma-tui" in errors[0].message
        assert "retrying every 2 s" in status_of(app) or "retrying every 4 s" in status_of(app)
        path.write_text(good)  # the right comma-tui again: the console recovers by itself
        await wait_for(pilot, lambda: app.snapshot is not None, timeout=15)
        await wait_for(pilot, lambda: "cannot read" not in status_of(app))
    assert not (the_lab.root / LOG_NAME).exists()  # a user's problem is no bug: nothing logged


async def test_a_bug_is_logged_with_its_traceback_and_the_status_line_says_where(
    lab: tuple[Lab, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from comma_tui.lab_client import LabClient

    def broken(_self: LabClient) -> None:
        raise KeyError("slots")

    monkeypatch.setattr(LabClient, "live", broken)
    the_lab, _ = lab
    app = CommaApp(the_lab, start_scheduler=False, poll_seconds=0.1)
    async with app.run_test(size=SIZE) as pilot:
        log = the_lab.root / LOG_NAME
        await wait_for(pilot, lambda: log.is_file() and f"traceback is in {log}" in status_of(app))
        await pilot.pause(1.5)
        errors = [n for n in app._notifications if n.severity == "error"]
        assert len(errors) == 1 and "KeyError: 'slots'" in errors[0].message
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "in broken" in text and "KeyError: 'slots'" in text
