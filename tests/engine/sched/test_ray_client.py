"""The Ray Jobs client's parts that need no cluster: where the token comes from, what the nodes hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.sched.ray_client import RayError, RayJobsClient, RayUnreachable, Resources, auth_token


def test_the_token_is_found_where_ray_looks_for_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("from-home\n")
    (tmp_path / "named").write_text("from-path")
    env = {"HOME": str(home)}
    assert auth_token(env) == "from-home"
    assert auth_token(env | {"RAY_AUTH_TOKEN_PATH": str(tmp_path / "named")}) == "from-path"
    assert auth_token(env | {"RAY_AUTH_TOKEN_PATH": str(tmp_path / "named"), "RAY_AUTH_TOKEN": " env "}) == "env"
    assert auth_token(env | {"RAY_AUTH_TOKEN": "env", "RAY_AUTH_MODE": "disabled"}) is None
    assert auth_token({"HOME": str(tmp_path)}) is None  # no token anywhere: none is sent
    with pytest.raises(RayError, match=f"RAY_AUTH_TOKEN_PATH {tmp_path / 'gone'} does not exist"):
        auth_token(env | {"RAY_AUTH_TOKEN_PATH": str(tmp_path / "gone")})


def test_resources_say_what_fits_on_one_node() -> None:
    cluster = Resources(({"CPU": 16.0, "GPU": 0.0}, {"CPU": 8.0, "GPU": 4.0}), busy={"CPU": 3.0, "GPU": 1.0})
    assert (cluster.total("CPU"), cluster.total("GPU")) == (24.0, 4.0)
    assert cluster.fits(cpus=8, gpus=1) and cluster.fits(cpus=16, gpus=0)
    assert not cluster.fits(cpus=16, gpus=1)  # no single node has both
    assert not Resources(()).fits(1, 0)


def test_nothing_listening_is_one_line_naming_the_address() -> None:
    client = RayJobsClient("http://127.0.0.1:9", timeout=5)  # the discard port: nothing answers
    with pytest.raises(RayUnreachable) as raised:
        client.jobs()
    said = str(raised.value)
    assert said.startswith("cannot reach the Ray cluster at http://127.0.0.1:9 (") and "\n" not in said
