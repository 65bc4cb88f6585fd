"""Session-wide clusters for the executor tests of every folder (pipeline, dedup): one real local Ray cluster, and the
local Slurm cluster of .ci/slurm-up (tests skip with the reason when it is not up). Defined once, here: a fixture
imported into two conftest files would start two Ray heads."""

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RAY_START_TIMEOUT_S = 120


@pytest.fixture(scope="session")
def job_pythonpath():
    """Task processes (forkserver children, Ray workers, Slurm jobs) import tests.pipeline.tiny_steps from the repo."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        yield


def _free_ports(count: int) -> list[int]:
    """`count` distinct free ports: every socket stays bound until all are chosen, else the kernel may hand the same
    released port out twice (Ray then refuses to start: "port number ... used by other components")."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


@pytest.fixture(scope="session")
def ray_address(job_pythonpath):
    """Address of a 2-CPU Ray head started for the session in its own temp dir, ports and auth token; stopped
    afterwards. The token is explicit because Ray 2.60 turns token auth on whenever ~/.ray/auth_token exists (a
    plain `ray.init()` writes it), and a driver connecting by address then needs RAY_AUTH_MODE=token too."""
    ray = Path(sys.executable).parent / "ray"
    temp_dir = tempfile.mkdtemp(prefix="mdr-ray-")  # short: Ray's socket paths must fit in 107 bytes
    token_path = Path(temp_dir) / "auth_token"
    token_path.write_text(secrets.token_hex(32))
    auth = pytest.MonkeyPatch()
    auth.setenv("RAY_AUTH_MODE", "token")  # for `ray start` below and for the drivers the tests start
    auth.setenv("RAY_AUTH_TOKEN_PATH", str(token_path))
    port, client_port, dashboard_port, agent_port, metrics_port = _free_ports(5)
    command = [
        str(ray), "start", "--head", "--block", "--num-cpus=2", f"--port={port}", f"--temp-dir={temp_dir}",
        "--include-dashboard=false", "--disable-usage-stats", f"--ray-client-server-port={client_port}",
        f"--dashboard-port={dashboard_port}", f"--dashboard-agent-listen-port={agent_port}",
        f"--metrics-export-port={metrics_port}",
    ]
    log_path = Path(temp_dir) / "ray-start.log"
    with open(log_path, "w") as log:
        head = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + RAY_START_TIMEOUT_S
        while "Ray runtime started" not in log_path.read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start failed: {log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        # Not `ray stop`, which kills every Ray process on the machine by name. SIGTERM makes our `ray start --block`
        # drain and stop the processes it started (about 2s); its process group is killed if that hangs.
        head.terminate()
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        auth.undo()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def slurm_cluster(job_pythonpath):
    """Skips unless the local Slurm cluster (.ci/slurm-up) answers with an idle or busy node."""
    if shutil.which("sinfo") is None:
        pytest.skip("Slurm not installed (no sinfo): run .ci/slurm-up to install and start a local cluster")
    result = subprocess.run(["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True)
    states = result.stdout.split()
    if result.returncode != 0 or not {"idle", "mixed", "allocated", "completing"} & set(states):
        reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"node states {states}"
        pytest.skip(f"Slurm cluster not up ({reason}): run .ci/slurm-up")
