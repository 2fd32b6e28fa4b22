"""`comma-tui sched ...` and `comma-tui queue ...`, through the real command line.

Queue commands run in-process on a lab with stand-in clip and models; `sched` commands start a
real scheduler (on an empty or paused queue, so no worker is launched) and stop it afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from comma_tui.cli import main
from engine.sched import control
from engine.sched.pool import alive, child_env
from ledger import Lab, Ledger
from tests.ledger.fixtures import result
from tests.polling import wait_until
from tests.sources import lfs_pointer, small_source

SPEC = """
[run]
label = "tiny"

[preprocess]
width = 128
height = 96

[encode]
crf = 34
preset = "12"
"""


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A lab with stand-in clip and models; any scheduler started on it is stopped afterwards."""
    (tmp_path / "clip.mkv").write_bytes(b"a stand-in clip")
    (tmp_path / "models").mkdir()
    lab = Lab.create(tmp_path / "lab", tmp_path / "clip.mkv", tmp_path / "models", original_bytes=1_000_000)
    try:
        yield lab
    finally:
        state = control.status(lab)
        if state.pid is not None:
            try:
                control.stop(lab, now=True, wait=True, timeout=20)
            finally:
                if alive(state.pid):
                    os.kill(state.pid, signal.SIGKILL)


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(SPEC)
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """Run `comma-tui ARGS`; returns (exit status, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_queue_add_with_sweeps_then_list_bump_cancel_and_retry(
    lab: Lab, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    at = ("--lab", lab.root)
    code, out, _ = cli(capsys, "queue", "add", spec_file, "--sweep", "crf=32..33", "--sweep", "film_grain=0,22", *at)
    assert code == 0
    assert "queued r0001  main  tiny crf=32 film_grain=0" in out and "4 run(s) queued" in out
    assert "the scheduler is not running: start it with comma-tui sched start" in out

    code, _, err = cli(capsys, "queue", "add", spec_file, "--sweep", "crf=32,99", *at)
    assert code == 2 and "sweep point crf=99: encode.crf (for libsvtav1) = 99 is out of range" in err
    code, _, err = cli(capsys, "queue", "add", spec_file, "--sweep", "crff=1..2", *at)
    assert code == 2 and "unknown axis 'crff'" in err
    assert len(Ledger(lab).all()) == 4  # the bad sweeps queued nothing

    assert cli(capsys, "queue", "bump", "r0004", "--by", "5", *at)[1].strip() == "r0004 priority 5"
    assert cli(capsys, "queue", "bump", "r0003", "--by", "-1", *at)[1].strip() == "r0003 priority -1"
    code, out, _ = cli(capsys, "queue", "list", *at)
    queued = [line.split()[0] for line in out.splitlines() if line.startswith("  r")]
    assert code == 0 and queued == ["r0004", "r0001", "r0002", "r0003"]
    assert out.startswith("scheduler: stopped")

    assert cli(capsys, "queue", "cancel", "r0001", *at)[1].strip() == "r0001 cancelled"
    code, out, _ = cli(capsys, "queue", "retry", "r0001", *at)
    assert code == 0 and "queued r0005, a retry of r0001 (tiny crf=32 film_grain=0)" in out
    code, _, err = cli(capsys, "queue", "retry", "r0002", *at)
    assert code == 2 and "r0002 is queued: only failed, cancelled or interrupted runs are retried" in err

    data = json.loads(cli(capsys, "queue", "list", "--json", *at)[1])
    assert [q["id"] for q in data["queued"]] == ["r0004", "r0002", "r0005", "r0003"]
    assert data["state"] == "stopped" and data["running"] == []


def test_queue_add_makes_the_lab_from_the_specs_source_on_first_use(
    tmp_path: Path, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small_source(tmp_path / "checkout")
    spec_file.write_text(SPEC + '\n[source]\nclip = "checkout/videos/0.mkv"\nmodels = "checkout/models"\n')
    code, out, err = cli(capsys, "queue", "add", spec_file, "--sweep", "crf=32..33", "--lab", tmp_path / "new")
    made = Lab.open(tmp_path / "new")
    clip = tmp_path / "checkout" / "videos" / "0.mkv"
    assert code == 0 and err.strip() == f"made lab {made.root} from the [source] of {spec_file} (clip {clip})"
    assert made.source().clip == clip and "2 run(s) queued" in out
    assert [r.label for r in Ledger(made).queued()] == ["tiny crf=32", "tiny crf=33"]


def test_queue_add_without_a_lab_or_a_source_makes_nothing(
    tmp_path: Path, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "queue", "add", spec_file, "--lab", tmp_path / "new")
    assert code == 2 and "no lab in" in err and "make one with comma-tui init" in err
    lfs_pointer(tmp_path / "videos" / "0.mkv")
    spec_file.write_text(SPEC + '\n[source]\nclip = "videos/0.mkv"\nmodels = "models"\n')
    code, _, err = cli(capsys, "queue", "add", spec_file, "--lab", tmp_path / "new")
    assert code == 2 and "is a Git LFS pointer, not a video: run git lfs pull" in err
    assert not (tmp_path / "new").exists()


def test_queue_add_around_floor(lab: Lab, spec_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    at = ("--lab", lab.root)
    code, _, err = cli(capsys, "queue", "add", "--around-floor", "main", "crf=-1..+1", *at)
    assert code == 2 and "track 'main' has no floor yet" in err

    assert cli(capsys, "queue", "add", spec_file, *at)[0] == 0
    ledger = Ledger(lab)
    ledger.update("r0001", status="running")
    ledger.record_result("r0001", result(2.0, archive_bytes=10_000, scorer="s", clip="c"))

    code, out, _ = cli(capsys, "queue", "add", "--around-floor", "main", "crf=-1..+1", "film_grain=+10", *at)
    assert code == 0 and "3 run(s) queued" in out
    assert [(r.label, r.parent) for r in ledger.queued()] == [
        ("crf=33", "r0001"),
        ("crf=35", "r0001"),
        ("film_grain=10", "r0001"),
    ]
    code, _, err = cli(capsys, "queue", "add", "--around-floor", "main", *at)
    assert code == 2 and "--around-floor needs offsets" in err
    code, _, err = cli(capsys, "queue", "add", spec_file, "extra.toml", *at)
    assert code == 2 and "takes one SPEC.toml" in err


def test_queue_add_skips_what_was_measured_unless_again(
    lab: Lab, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    at = ("--lab", lab.root)
    cli(capsys, "queue", "add", spec_file, "--sweep", "crf=33", *at)
    ledger = Ledger(lab)
    ledger.update("r0001", status="running")
    ledger.record_result("r0001", result(2.0, archive_bytes=10_000, scorer="s", clip="c"))
    code, out, _ = cli(capsys, "queue", "add", spec_file, "--sweep", "crf=32..34", *at)
    assert code == 0
    assert "1 of 3 already measured: r0001 (tiny crf=33) (skipped: --again queues them too)" in out
    assert [r.label for r in ledger.queued()] == ["tiny crf=32", "tiny crf=34"]
    code, out, _ = cli(capsys, "queue", "add", spec_file, "--sweep", "crf=33", "--again", *at)
    assert code == 0 and "already measured" not in out and ledger.queued()[-1].label == "tiny crf=33"


def test_queue_cancel_and_retry_take_several_runs_all_or_nothing(
    lab: Lab, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    at = ("--lab", lab.root)
    cli(capsys, "queue", "add", spec_file, "--sweep", "crf=30..32", *at)
    code, out, _ = cli(capsys, "queue", "cancel", "r0001", "r0002", *at)
    assert code == 0 and out.splitlines() == ["r0001 cancelled", "r0002 cancelled"]
    code, _, err = cli(capsys, "queue", "cancel", "r0003", "r0001", *at)
    assert code == 2 and "r0001 is cancelled" in err and Ledger(lab).get("r0003").status == "queued"
    code, out, _ = cli(capsys, "queue", "retry", "r0001", "r0002", *at)
    assert code == 0 and [line.split()[1] for line in out.splitlines()] == ["r0004,", "r0005,"]


def test_pause_resume_and_status_of_a_stopped_scheduler(
    lab: Lab, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    at = ("--lab", lab.root)
    cli(capsys, "queue", "add", spec_file, "--sweep", "crf=30,31", *at)
    ledger = Ledger(lab)
    ledger.update("r0002", status="running")
    ledger.record_failure("r0002", "worker (pid 7) was killed by SIGKILL (out of memory, or killed by hand)")
    code, out, _ = cli(capsys, "queue", "pause", *at)
    assert code == 0 and out.startswith("queue paused")

    code, out, _ = cli(capsys, "sched", "status", *at)
    assert code == 0
    assert out.startswith(f"scheduler: stopped (start it with comma-tui sched start --lab {lab.root})")
    assert "queue: paused since" in out and "queued (1):" in out and "running (0):" in out
    assert "floors: none yet" in out
    assert "recent failures:\n  r0002  failed" in out and "killed by SIGKILL (out of memory" in out

    data = json.loads(cli(capsys, "sched", "status", "--json", *at)[1])
    assert (data["state"], data["pid"], data["paused"]) == ("stopped", None, True)
    assert [q["id"] for q in data["queued"]] == ["r0001"] and data["failures"][0]["id"] == "r0002"
    assert cli(capsys, "queue", "resume", *at)[1].startswith("queue resumed")
    assert not ledger.paused()


def test_sched_start_status_and_stop(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    at = ("--lab", lab.root)
    code, _, err = cli(capsys, "sched", "start", "--slots", "0", *at)
    assert code == 2 and "--slots 0 must be at least 1" in err

    code, out, _ = cli(capsys, "sched", "start", "--slots", "2", *at)
    assert code == 0 and "scheduler started for lab" in out and "2 slot(s)" in out
    pid = control.status(lab).pid
    assert pid is not None and f"pid {pid}" in out
    assert control.glance(lab) == control.Glance("running", 2)  # what the console's status line shows
    code, _, err = cli(capsys, "sched", "start", *at)
    assert code == 2 and f"already running (pid {pid}, since " in err and f"for lab {lab.root}" in err

    code, out, _ = cli(capsys, "sched", "status", *at)
    assert out.startswith(f"scheduler: running, pid {pid}, 2 slot(s), GPUs ")
    assert json.loads(cli(capsys, "sched", "status", "--json", *at)[1])["pid"] == pid

    code, out, _ = cli(capsys, "sched", "stop", "--wait", *at)
    assert code == 0 and f"scheduler (pid {pid}) stopped after its running runs finished" in out
    assert not alive(pid)
    assert cli(capsys, "sched", "status", *at)[1].startswith("scheduler: stopped")
    assert control.glance(lab) == control.Glance("stopped", None, held=True)  # stopped by hand: it stays stopped
    assert cli(capsys, "sched", "stop", *at)[1].strip() == f"no scheduler is running for lab {lab.root}"


def test_sched_start_in_the_foreground_stops_on_sigterm(lab: Lab) -> None:
    script = Path(sys.executable).parent / "comma-tui"
    command = [str(script)] if script.exists() else [sys.executable, "-c", "from comma_tui.cli import main; main()"]
    proc = subprocess.Popen(
        [*command, "sched", "start", "--foreground", "--lab", str(lab.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=child_env(),
    )
    try:
        wait_until(lambda: control.status(lab).pid == proc.pid or proc.poll() is not None, 60, "it to come up")
        assert control.status(lab).state == "running"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "stopping (graceful)" in out and out.rstrip().endswith("stopped")


def test_sched_start_on_an_unreachable_ray_cluster_is_one_line_and_loses_nothing(lab: Lab) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens there once the socket closes
    record = Ledger(lab).add_run({"run": {"label": "waits"}})
    script = Path(sys.executable).parent / "comma-tui"
    command = [str(script)] if script.exists() else [sys.executable, "-c", "from comma_tui.cli import main; main()"]
    for extra in ([], ["--foreground"]):
        argv = ["sched", "start", "--lab", str(lab.root), "--backend", "ray", "--ray-address", closed, *extra]
        done = subprocess.run([*command, *argv], capture_output=True, text=True, env=child_env(), timeout=120)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(f"comma-tui: error: cannot reach the Ray cluster at {closed} (")
        assert done.stderr.count("\n") == 1 and "fix --ray-address" in done.stderr
    assert control.status(lab).pid is None and Ledger(lab).get(record.id).status == "queued"
