"""A Ray cluster's Jobs REST API over plain HTTP: submit, status, logs, stop, list, and its resources.

Nothing here imports ray: the scheduler talks to the head's dashboard (`/api/jobs/`, and the
state API's `/api/v0/nodes` for what the nodes hold) with urllib, so neither it nor the console
needs Ray installed. When the cluster uses token auth, each request carries its bearer token,
found as Ray finds it: `RAY_AUTH_TOKEN`, else the file `RAY_AUTH_TOKEN_PATH` names, else
`~/.ray/auth_token` (none when `RAY_AUTH_MODE=disabled`).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from engine.sched.state import SchedulerError
from ledger.scheduler_settings import SchedulerSettings

TIMEOUT = 30.0  # seconds per request: the dashboard answers in milliseconds, unless its machine is swamped
FINAL_STATES = ("SUCCEEDED", "FAILED", "STOPPED")
_TOKEN_HINT = "set RAY_AUTH_TOKEN, or put the cluster's token in ~/.ray/auth_token (ray get-auth-token on its head)"


class RayError(SchedulerError):
    """The Ray cluster refused or failed a request; the message names the cluster and the fix."""

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, when the cluster answered
        self.body = body


class RayUnreachable(RayError):
    """Nothing answers at the Ray address (no head there, a tunnel down, a wrong port)."""


@dataclass(frozen=True)
class JobInfo:
    """One Ray job as the Jobs API describes it."""

    submission_id: str
    status: str  # PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED
    message: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    exit_code: int | None = None

    @property
    def final(self) -> bool:
        """Whether the job has ended for good."""
        return self.status in FINAL_STATES

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> JobInfo:
        """A job from the API's JSON."""
        return cls(
            submission_id=str(data.get("submission_id") or data.get("job_id") or ""),
            status=str(data.get("status", "")),
            message=str(data.get("message") or ""),
            metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
            exit_code=data.get("driver_exit_code"),
        )


@dataclass(frozen=True)
class Resources:
    """What the cluster's live nodes hold (`nodes`: each node's CPU/GPU), and how much is in use."""

    nodes: tuple[Mapping[str, float], ...]
    busy: Mapping[str, float] | None = None  # from the autoscaler's report; None before it has one

    def total(self, kind: str) -> float:
        """CPUs or GPUs over all live nodes."""
        return sum(node.get(kind, 0.0) for node in self.nodes)

    def fits(self, cpus: float, gpus: float) -> bool:
        """Whether some node holds a run asking for `cpus` and `gpus` (else it can never be placed)."""
        return any(node.get("CPU", 0.0) >= cpus and node.get("GPU", 0.0) >= gpus for node in self.nodes)


def auth_token(environ: Mapping[str, str] | None = None) -> str | None:
    """The cluster's bearer token as Ray looks for it, or None (no token, or token auth disabled here)."""
    env = os.environ if environ is None else environ
    if env.get("RAY_AUTH_MODE", "").strip().lower() == "disabled":
        return None
    if env.get("RAY_AUTH_TOKEN", "").strip():
        return env["RAY_AUTH_TOKEN"].strip()
    named = env.get("RAY_AUTH_TOKEN_PATH", "").strip()
    path = Path(named).expanduser() if named else Path(env.get("HOME") or Path.home()) / ".ray" / "auth_token"
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        if named:
            raise RayError(
                f"RAY_AUTH_TOKEN_PATH {named} does not exist: point it at the cluster's token file"
            ) from None
        return None
    except OSError as exc:
        raise RayError(f"cannot read the Ray token {path} ({exc.strerror}): fix its permissions") from None


def _said(body: str) -> str:
    """The telling line of an error body (a traceback's last line)."""
    lines = [line.strip() for line in body.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"


class RayJobsClient:
    """Blocking calls on one cluster's dashboard; every failure is a one-line RayError."""

    def __init__(self, address: str, token: str | None = None, timeout: float = TIMEOUT) -> None:
        self.address = address.rstrip("/")
        self.host = urlsplit(self.address).netloc or self.address
        self.token = token
        self.timeout = timeout

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.address + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            raise self._refused(exc.code, method, path, exc.read().decode(errors="replace")) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RayUnreachable(
                f"cannot reach the Ray cluster at {self.address} ({reason}): start its head "
                "(ray start --head --dashboard-host 127.0.0.1), open the SSH tunnel, or fix --ray-address"
            ) from None
        try:
            return json.loads(text) if text.strip() else None
        except ValueError:
            raise RayError(f"{self.address}{path} did not answer JSON: is {self.address} a Ray dashboard?") from None

    def _refused(self, code: int, method: str, path: str, body: str) -> RayError:
        if code == 401:
            return RayError(f"the Ray cluster at {self.address} uses token auth and got no token: {_TOKEN_HINT}")
        if code == 403:
            return RayError(f"the Ray cluster at {self.address} refused our token: {_TOKEN_HINT}")
        return RayError(
            f"the Ray cluster at {self.address} answered {code} to {method} {path}: {_said(body)}", code, body
        )

    def submit(
        self,
        submission_id: str,
        entrypoint: str,
        metadata: Mapping[str, str],
        cpus: float,
        gpus: float,
        env: Mapping[str, str] | None = None,
    ) -> bool:
        """Submit a job; False when a job of this submission id exists already (Ray refuses a second)."""
        body: dict[str, Any] = {"entrypoint": entrypoint, "submission_id": submission_id, "metadata": dict(metadata)}
        if cpus or gpus:
            body |= {"entrypoint_num_cpus": cpus, "entrypoint_num_gpus": gpus}
        if env:
            body["runtime_env"] = {"env_vars": dict(env)}
        try:
            self._request("POST", "/api/jobs/", body)
        except RayError as exc:
            if "already exists" in exc.body:
                return False
            raise
        return True

    def job(self, submission_id: str) -> JobInfo | None:
        """A job's state, or None when the cluster does not know it."""
        try:
            data = self._request("GET", f"/api/jobs/{quote(submission_id)}")
        except RayError as exc:
            if exc.status == 404:
                return None
            raise
        return JobInfo.from_api(data)

    def jobs(self) -> list[JobInfo]:
        """Every job the cluster remembers (all users' and labs')."""
        return [JobInfo.from_api(d) for d in self._request("GET", "/api/jobs/") or [] if d.get("type") == "SUBMISSION"]

    def logs(self, submission_id: str) -> str:
        """What the job printed (its driver's stdout and stderr)."""
        data = self._request("GET", f"/api/jobs/{quote(submission_id)}/logs")
        return str((data or {}).get("logs", ""))

    def stop(self, submission_id: str) -> bool:
        """Ask the cluster to stop a job (SIGTERM, then SIGKILL); False when it had ended already."""
        data = self._request("POST", f"/api/jobs/{quote(submission_id)}/stop")
        return bool((data or {}).get("stopped"))

    def delete(self, submission_id: str) -> None:
        """Forget an ended job (its entry and logs)."""
        self._request("DELETE", f"/api/jobs/{quote(submission_id)}")

    def resources(self) -> Resources:
        """Each live node's CPUs and GPUs, and what is in use (when the autoscaler has said)."""
        data = self._request("GET", "/api/v0/nodes?detail=1&limit=10000") or {}
        rows = ((data.get("data") or {}).get("result") or {}).get("result") or []
        nodes = tuple(
            {kind: float((row.get("resources_total") or {}).get(kind, 0.0)) for kind in ("CPU", "GPU")}
            for row in rows
            if row.get("state") == "ALIVE"
        )
        status = self._request("GET", "/api/cluster_status") or {}
        report = (((status.get("data") or {}).get("clusterStatus") or {}).get("loadMetricsReport")) or {}
        usage = report.get("usage")
        busy = None if not isinstance(usage, dict) else {k: float(usage.get(k, [0.0])[0]) for k in ("CPU", "GPU")}
        return Resources(nodes, busy)


def connect(settings: SchedulerSettings) -> RayJobsClient:
    """A client of the cluster `settings` name, carrying its token when there is one."""
    return RayJobsClient(settings.ray_address, auth_token())
