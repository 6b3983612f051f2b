"""`make run`'s stack (`python -m app.devstack`): everything up on the configured ports, an
order completes, the CLI in a new shell finds the stack, Flower shows the order behind basic
auth, each process's metrics stay its own, Ctrl-C leaves nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from sandbox.client import SandboxClient
from sandbox.redis_server import free_port

pytestmark = pytest.mark.slow


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (requests.RequestException, OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout}s")


def test_make_run_stack(tmp_path):
    ports = {
        name: free_port() for name in ("web", "flower", "salesforce", "whmcs", "redis", "worker")
    }
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CELERY_BROKER_URL", "FULFILLMENT_NAMESPACE")
    }
    env.update(
        PORT=str(ports["web"]),
        FLOWER_PORT=str(ports["flower"]),
        SANDBOX_SALESFORCE_PORT=str(ports["salesforce"]),
        SANDBOX_WHMCS_PORT=str(ports["whmcs"]),
        SANDBOX_DIR=str(tmp_path / "sandbox"),
        REDIS_URL=f"redis://127.0.0.1:{ports['redis']}/0",  # nothing there: the embedded one starts
        WORKER_METRICS_PORT=str(ports["worker"]),
        FLOWER_BASIC_AUTH="ops:s3cret-pass",
    )
    log_path = tmp_path / "stack.log"
    output = log_path.open("wb")
    here = tmp_path / "checkout"  # where `make run` was started: the stack file goes there
    here.mkdir()
    stack = subprocess.Popen(
        [sys.executable, "-m", "app.devstack"], cwd=here, env=env, stdout=output,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    web = f"http://127.0.0.1:{ports['web']}"
    try:
        try:
            wait_for(
                lambda: requests.get(f"{web}/readyz", timeout=1).ok, 60, "web ready with Redis"
            )
        except AssertionError:
            raise AssertionError(log_path.read_text()[-4000:]) from None
        sandbox = SandboxClient(
            f"https://127.0.0.1:{ports['salesforce']}",
            f"http://127.0.0.1:{ports['whmcs']}",
            str(tmp_path / "sandbox" / "salesforce-cert.pem"),
        )
        order = wait_for(lambda: sandbox.create_order(), 30, "sandbox up")
        # A new shell: none of the stack's variables, only the file `make run` wrote.
        new_shell = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(tmp_path))}
        run = {"cwd": here, "env": new_shell, "capture_output": True, "text": True, "check": True}
        cli = [sys.executable, "-m", "app.cli"]
        waiting = subprocess.run(
            [*cli, "watch", order["orderId"], "--timeout", "1"],
            cwd=here, env=new_shell, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert "has not been submitted for fulfillment yet" in waiting.stderr
        assert f"127.0.0.1:{ports['redis']}" in waiting.stderr  # the stack's Redis, not 6379
        submitted = subprocess.run([*cli, "submit", order["orderId"]], timeout=60, **run)
        watched = subprocess.run(
            [*cli, "watch", order["orderId"], "--timeout", "60"], timeout=90, **run
        )
        assert '"stage":"completed"' in watched.stdout.splitlines()[-1]

        flower = f"http://127.0.0.1:{ports['flower']}"
        # Six processes start on two cores: Flower may still be coming up (a reset socket).
        anonymous = wait_for(
            lambda: requests.get(f"{flower}/api/tasks", timeout=5).status_code, 30, "Flower"
        )
        assert anonymous == 401
        tasks = wait_for(
            lambda: (
                requests.get(f"{flower}/api/tasks", auth=("ops", "s3cret-pass"), timeout=5).json()
                or None
            ),
            30,
            "Flower sees the tasks",
        )
        named = {t["name"] for t in tasks.values() if order["orderId"] in str(t.get("args"))}
        assert {"fulfillment.activate", "fulfillment.provision", "fulfillment.complete"} <= named
        assert submitted.stdout.strip() in tasks  # the trigger's task id is the chain's

        metrics = requests.get(f"{web}/metrics", timeout=5).text
        assert "fulfillment_streams_open" in metrics
        assert "flower_" not in metrics  # each process's series where a scraper expects them
        worker_metrics = wait_for(
            lambda: requests.get(f"http://127.0.0.1:{ports['worker']}/metrics", timeout=5).text,
            30,
            "the worker's metrics",
        )
        assert 'fulfillment_orders_total{outcome="completed"} 1.0' in worker_metrics
    finally:
        os.killpg(stack.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        stack.wait(timeout=60)
        output.close()
    log = (tmp_path / "stack.log").read_text()
    assert "starting an embedded redis-server" in log
    still = [name for name, port in ports.items() if listening(port)]
    assert still == [], f"still listening after Ctrl-C: {still}\n{log[-3000:]}"
