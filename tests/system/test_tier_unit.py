"""The system unit of the shared cache tier, neurofs-tier.service: it verifies, and its
command, run as systemd would run it (its cache directory and arguments in the environment),
serves a tier that stops on the unit's kill signal."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.tier import free_port, nginx_available
from tests.system.conftest import require, require_tool
from tests.system.unit_file import command, read_unit

REPO = Path(__file__).resolve().parents[2]
NEUROFS = REPO / ".venv" / "bin" / "neurofs"


def _rendered(tmp_path: Path) -> Path:
    text = (REPO / "systemd" / "neurofs-tier.service").read_text()
    unit = tmp_path / "neurofs-tier.service"
    unit.write_text(text.replace("@NEUROFS@", str(NEUROFS)))
    return unit


def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze")
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(_rendered(tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result


def test_its_command_serves_a_tier_and_stops_on_the_kill_signal(tmp_path: Path) -> None:
    require(nginx_available(), "nginx is not installed")
    unit = read_unit(_rendered(tmp_path))
    (start,) = unit[("Service", "ExecStart")]
    argv = command(start, {}).argv
    kill = getattr(signal, unit[("Service", "KillSignal")][0])
    port = free_port()
    cache = tmp_path / "cache"
    cache.mkdir()
    # What systemd puts in the environment: CacheDirectory=, and TIER_ARGS from tier.env.
    args = f"--listen=127.0.0.1:{port} --origin http://127.0.0.1:9 --max-size 1GiB"
    if os.geteuid() == 0:  # no DynamicUser= here: the workers stay root like the test
        args += " --user root"
    env = {**os.environ, "CACHE_DIRECTORY": str(cache), "TIER_ARGS": args}
    process = subprocess.Popen(argv, env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/o/http/127.0.0.1:10/x",
                    headers={"X-Neurofs-Key": "k"},
                )
                break
            except httpx.TransportError:
                assert process.poll() is None, "the tier exited"
                assert time.monotonic() < deadline, "the tier never answered"
                time.sleep(0.1)
        assert answer.status_code == 403  # not among its origins
        assert (cache / "nginx.conf").is_file() and (cache / "slices").is_dir()
        process.send_signal(kill)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
