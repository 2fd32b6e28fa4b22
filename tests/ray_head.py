"""A real Ray head on loopback, for the Ray tests and `benchmarks/ray_overhead.py`.

Started as `ray start --head --block` in a session of its own: the dashboard on 127.0.0.1, unique
ports and temp dir, usage stats off, token auth on with a fresh token, 2 CPUs and no GPU. Stopped
by its own process ids (the processes of its session), never by `ray stop`, which kills every
Ray process on the machine by name.

Where the platform allows it (root may make a mount namespace), the head and its jobs see an empty
folder over `hidden`: a lab made there is invisible to the cluster, as on a node without the
shared filesystem.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

START_TIMEOUT = 240.0  # a loaded machine (CI, shared boxes) starts a fresh head slowly


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def session_pids(sid: int) -> list[int]:
    """The live processes of session `sid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


@dataclass
class RayHead:
    """A running head: its dashboard address, its token, its process, and a folder its jobs cannot see."""

    address: str
    token: str
    proc: subprocess.Popen[bytes]
    temp_dir: Path
    hidden: Path | None
    log: BinaryIO
    root: Path

    def request(self, method: str, path: str) -> object:
        """One call on the dashboard with the head's token."""
        req = urllib.request.Request(self.address + path, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=60) as response:
            return json.loads(response.read() or b"null")

    def jobs(self) -> list[dict]:
        """Every job the head knows."""
        found = self.request("GET", "/api/jobs/")
        assert isinstance(found, list)
        return found

    def stop(self) -> None:
        """Stop the jobs still running, then end every process of the head's session."""
        try:
            for job in self.jobs():
                if job.get("status") in ("PENDING", "RUNNING"):
                    self.request("POST", f"/api/jobs/{job['submission_id']}/stop")
        except OSError:
            pass  # the head is gone already
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in session_pids(self.proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 15
            while session_pids(self.proc.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
        self.proc.wait(timeout=15)
        self.log.close()
        # Ray's own logs stay beside the test's files, for a failure to be read afterwards.
        with contextlib.suppress(OSError):
            shutil.copytree(self.temp_dir / "session_latest" / "logs", self.root / "ray-logs", dirs_exist_ok=True)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _can_hide() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode == 0


def _hiding(hidden: Path, command: list[str]) -> list[str]:
    """`command` in a mount namespace of its own, where an empty tmpfs covers `hidden`."""
    mount = 'mount -t tmpfs tmpfs "$1" && shift && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, "sh", str(hidden), *command]


class HeadFailed(RuntimeError):
    """This try at a head did not come up."""


def start_head(root: Path, tries: int = 3) -> RayHead:
    """Start a head on loopback and wait until it runs jobs; the caller stops it.

    A raylet whose dashboard agent takes more than Ray's fixed 15 s to start (a machine under
    heavy load) dies at once (ray-project/ray#65983): such a try is ended and another started.
    """
    for attempt in range(1, tries + 1):
        try:
            return _start_head(root / f"try{attempt}")
        except HeadFailed:
            if attempt == tries:
                raise
    raise AssertionError("unreachable")


def _start_head(root: Path) -> RayHead:
    root.mkdir(parents=True, exist_ok=True)
    temp_dir = Path(f"/tmp/ct-ray-{secrets.token_hex(4)}")  # short: Ray's socket paths must fit 107 bytes
    hidden = root / "hidden"
    hidden.mkdir(parents=True, exist_ok=True)
    gcs, dashboard, client, agent, agent_grpc, env_agent, metrics, node, objects = _free_ports(9)
    base = 20000 + secrets.randbelow(120) * 100  # worker ports below the ephemeral range
    token = secrets.token_hex(16)
    command = [
        sys.executable,
        "-m",
        "ray.scripts.scripts",
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1",
        f"--port={gcs}",
        f"--dashboard-port={dashboard}",
        f"--ray-client-server-port={client}",
        f"--dashboard-agent-listen-port={agent}",
        f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--runtime-env-agent-port={env_agent}",
        f"--metrics-export-port={metrics}",
        f"--node-manager-port={node}",
        f"--object-manager-port={objects}",
        f"--min-worker-port={base}",
        f"--max-worker-port={base + 99}",
        f"--temp-dir={temp_dir}",
        "--num-cpus=2",
        "--num-gpus=0",
        "--disable-usage-stats",
    ]
    can_hide = _can_hide()
    command = _hiding(hidden, command) if can_hide else command
    env = os.environ | {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    # On a loaded machine the raylet, its agents and each worker process may take minutes to start;
    # Ray's defaults (seconds to a minute) would give up on the node, or kill each worker and start
    # another for ever.
    env |= {"RAY_raylet_start_wait_time_s": "600", "RAY_worker_register_timeout_seconds": "600"}
    log = open(root / "head.log", "wb")  # noqa: SIM115 (the head writes it for its whole life; stop closes it)
    proc = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    head = RayHead(f"http://127.0.0.1:{dashboard}", token, proc, temp_dir, hidden if can_hide else None, log, root)
    try:
        _wait_ready(head, root / "head.log")
    except BaseException:
        head.stop()
        raise
    return head


def _wait_ready(head: RayHead, log: Path) -> None:
    """Until a trivial job has run: the dashboard, its job agent and a worker all answer."""
    deadline = time.monotonic() + START_TIMEOUT
    submitted = False
    raylet = head.temp_dir / "session_latest" / "logs" / "raylet.out"
    while time.monotonic() < deadline:
        if head.proc.poll() is not None:
            raise HeadFailed(f"the Ray head exited at start: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            if "Check failed" in raylet.read_text(errors="replace"):
                raise HeadFailed(f"the raylet died at start: see {raylet}")
        try:
            if not submitted:
                body = json.dumps({"entrypoint": "true", "submission_id": "warm-up"}).encode()
                req = urllib.request.Request(head.address + "/api/jobs/", data=body, method="POST")
                req.add_header("Authorization", f"Bearer {head.token}")
                req.add_header("Content-Type", "application/json")
                urllib.request.urlopen(req, timeout=60).close()
                submitted = True
            status = head.request("GET", "/api/jobs/warm-up")
            said = status.get("status") if isinstance(status, dict) else None
            if said == "SUCCEEDED":
                head.request("DELETE", "/api/jobs/warm-up")
                return
            if said in ("FAILED", "STOPPED"):
                raise HeadFailed(f"the Ray head's warm-up job {said}: {status}")
        except urllib.error.HTTPError as exc:
            submitted = submitted or b"already exists" in exc.read()  # an answer that came too late
        except OSError:
            pass  # not up yet
        time.sleep(0.5)
    raise HeadFailed(f"the Ray head did not run a job within {START_TIMEOUT:.0f} s: see {log}")
