"""`python -m bench.dashboard_preview --uplot DIR`: docs/dashboard.png, the Grafana dashboard's
panels drawn from a real Prometheus.

Where no Docker engine (and so no Grafana) runs, this starts a small real stack (its own
redis-server, the sandbox, two web processes, a worker, the listener and Flower), and Debian's
Prometheus (`/usr/bin/prometheus`) scraping them with docker/prometheus.yml's jobs (targets
moved to this host's ports, a 5 s scrape interval for a short run). It places a few dozen orders
(HTTP triggers and Salesforce approvals, with WHMCS made busy, slow or refusing now and then),
holds account streams open, opens a burst past the web's stream limit and sends a few refused
credentials; then it asks Prometheus's HTTP API for every query of
docker/grafana/dashboards/fulfillment.json (Grafana's `$__rate_interval` and `$__range` filled
in), draws them with uPlot (from npm: `npm install --prefix /tmp/x uplot`, then
`--uplot /tmp/x/node_modules/uplot/dist`) in the dashboard's grid, and screenshots that page
with Playwright driving Debian's chromium. Every process it started is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
import yaml

import settings
from app.auth import SERVICE_SCOPE, mint_token
from sandbox.client import SandboxClient
from sandbox.redis_server import free_port

from .environment import private_sandbox, private_stack

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "docker" / "grafana" / "dashboards" / "fulfillment.json"
PROMETHEUS_CONFIG = ROOT / "docker" / "prometheus.yml"
TEMPLATE = Path(__file__).resolve().parent / "dashboard_preview.html"
SCRAPE_SECONDS = 5
RATE_INTERVAL = "30s"  # what Grafana's $__rate_interval is replaced with
STREAM_LIMIT = 10  # SSE_MAX_STREAMS of each web process: a burst past it is shed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uplot", type=Path, required=True, help="uPlot's dist/ directory")
    parser.add_argument("--orders", type=int, default=40)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--prometheus", default=shutil.which("prometheus") or "")
    parser.add_argument("--data", type=Path, help="draw a former run's data.json again")
    args = parser.parse_args()
    if args.data:
        screenshot(json.loads(args.data.read_text()), args.uplot, args.chromium, args.out)
        return
    if not args.prometheus:
        sys.exit("Debian's prometheus is needed: apt-get install prometheus")
    work = Path(tempfile.mkdtemp(prefix="dashboard-preview-"))
    with private_stack(), private_sandbox(), processes(work, args.prometheus) as stack:
        started = time.time()
        load = Load(stack, args.orders)
        try:
            load.run()
            time.sleep(3 * SCRAPE_SECONDS)  # the last counts scraped (twice)
            data = query_panels(stack["prometheus"], started - SCRAPE_SECONDS, time.time())
        finally:
            load.close()  # the customers' streams stay open until the picture is taken
    (work / "data.json").write_text(json.dumps(data))
    screenshot(data, args.uplot, args.chromium, args.out)
    print(f"wrote {args.out} (series and logs in {work})")


# --- the stack ----------------------------------------------------------------------------


@contextlib.contextmanager
def processes(work: Path, prometheus: str) -> Iterator[dict[str, str]]:
    """Two web processes, a worker, the listener, Flower and Prometheus; their URLs."""
    ports = {name: free_port() for name in ("web-a", "web-b", "worker", "listener", "flower")}
    ports["prometheus"] = free_port()
    env = {**os.environ, "LOG_LEVEL": "WARNING", "WEB_CONCURRENCY": "1"}
    env["SSE_MAX_STREAMS"] = str(STREAM_LIMIT)
    env.update(WORKER_METRICS_ADDRESS="127.0.0.1", LISTENER_METRICS_ADDRESS="127.0.0.1")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    (work / "worker-metrics").mkdir()
    python = sys.executable
    celery = [python, "-m", "celery", "--app", "tasks.celery_app"]
    web = [python, "-m", "gunicorn", "app:create_app()"]
    worker = [*celery, "worker", "--task-events", "--concurrency", "2", "--loglevel", "INFO"]
    flower = [*celery, "flower", f"--port={ports['flower']}", "--address=127.0.0.1"]
    flower.append("--basic-auth=preview:preview")
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "web-a": (web, {"PORT": str(ports["web-a"])}),
        "web-b": (web, {"PORT": str(ports["web-b"])}),
        "worker": (
            worker,
            {
                "WORKER_METRICS_PORT": str(ports["worker"]),
                "PROMETHEUS_MULTIPROC_DIR": str(work / "worker-metrics"),
            },
        ),
        "listener": (
            [python, "-m", "app.cli", "listen"],
            {"LISTENER_METRICS_PORT": str(ports["listener"])},
        ),
        "flower": (flower, {}),
    }
    config = work / "prometheus.yml"
    config.write_text(yaml.safe_dump(local_prometheus_config(ports)))
    commands["prometheus"] = (
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
        ],
        {},
    )
    started: list[subprocess.Popen[bytes]] = []
    try:
        for name, (command, extra) in commands.items():
            log = (work / f"{name}.log").open("ab")
            started.append(
                subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env={**env, **extra},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        wait_for_targets(urls["prometheus"], started)
        yield urls
    finally:
        for process in reversed(started):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def local_prometheus_config(ports: dict[str, int]) -> dict[str, Any]:
    """docker/prometheus.yml with each compose service's target on this host's port for it."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"].update(scrape_interval=f"{SCRAPE_SECONDS}s", scrape_timeout="4s")
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            hosts = [target.rpartition(":")[0] for target in static["targets"]]
            static["targets"] = [f"127.0.0.1:{ports[host]}" for host in hosts]
        # The instance label stays the compose name and port, as Prometheus shows it there.
        job["relabel_configs"] = [
            {"source_labels": ["__address__"], "regex": f"127.0.0.1:{port}",
             "target_label": "instance", "replacement": f"{host}:{compose_port(host)}"}
            for host, port in ports.items() if host != "prometheus"
        ]  # fmt: skip
    return dict(config)


def compose_port(host: str) -> str:
    targets = re.findall(rf"\b{re.escape(host)}:(\d+)", PROMETHEUS_CONFIG.read_text())
    return targets[0]


def wait_for_targets(prometheus: str, started: list[subprocess.Popen[bytes]]) -> None:
    """Until Prometheus has scraped every target successfully (60 s at most)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in started):
            raise RuntimeError("a process of the stack exited; see its log")
        with contextlib.suppress(requests.RequestException):
            targets = requests.get(f"{prometheus}/api/v1/targets", timeout=5).json()
            active = targets["data"]["activeTargets"]
            if active and all(target["health"] == "up" for target in active):
                return
        time.sleep(0.5)
    raise RuntimeError("Prometheus did not scrape every process in time")


# --- the load -----------------------------------------------------------------------------


class Stream:
    """One account stream, held by a thread that reads it until it ends or is closed."""

    def __init__(self, url: str, token: str, last_id: str | None = None):
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        headers = f"Authorization: Bearer {token}\r\n"
        if last_id:
            headers += f"Last-Event-ID: {last_id}\r\n"
        request = f"GET /api/orders/events HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n"
        self.sock.sendall(request.encode())
        self.last_id: str | None = last_id
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        buffer = b""
        with contextlib.suppress(OSError):
            while chunk := self.sock.recv(65536):
                buffer = buffer[-4096:] + chunk
                ids = re.findall(rb"^id: (\S+)$", buffer, re.M)
                if ids:
                    self.last_id = ids[-1].decode()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=5)


class Load:
    """A few dozen orders over a few minutes, with streams watching them."""

    def __init__(self, stack: dict[str, str], orders: int):
        self.webs = [stack["web-a"], stack["web-b"]]
        self.orders = orders
        self.sandbox = SandboxClient.from_environment()
        web = settings.current().web
        service = mint_token(web, account_id=None, scope=SERVICE_SCOPE, ttl=3600)
        self.service = {"Authorization": f"Bearer {service}"}
        self.accounts = [self.sandbox.create_order()["accountId"] for _ in range(7)]
        self.tokens = {
            account: mint_token(web, account_id=account, scope=None, ttl=3600)
            for account in self.accounts
        }
        self.placed: list[str] = []
        self.streams: list[Stream] = []
        self.random = random.Random(7)

    def run(self) -> None:
        self.streams = streams = [
            Stream(self.webs[i % 2], self.tokens[account])
            for i, account in enumerate(self.accounts)
        ]
        for number in range(self.orders):
            self._faults(number)
            self._place(number)
            if number % 10 == 5:
                self._burst(self.webs[number // 10 % 2])
            if number % 8 == 3:  # a tab that reconnects and resumes from its last event
                index = self.random.randrange(len(streams))
                old = streams[index]
                old.close()
                streams[index] = Stream(
                    self.webs[index % 2], self.tokens[self.accounts[index]], old.last_id
                )
            if number % 12 == 7:
                self._refused_credentials()
            time.sleep(3)
        self.sandbox.clear_faults()
        self._wait_for_terminal(deadline=time.monotonic() + 120)

    def close(self) -> None:
        for stream in self.streams:
            stream.close()

    def _faults(self, number: int) -> None:
        if number % 10 == 2:  # WHMCS busy twice: two retries
            self.sandbox.fault("whmcs", "AddOrder", mode="http503", times=2)
        if number % 13 == 9:  # WHMCS refuses the order: it fails
            self.sandbox.fault("whmcs", "AddOrder", mode="error", times=1)
        if number == self.orders // 3:  # a slow spell on Salesforce's writes
            self.sandbox.fault("salesforce", "update", latencyMs=400, times=8)

    def _place(self, number: int) -> None:
        account = self.accounts[number % len(self.accounts)]
        if number % 3 == 0:  # approved in Salesforce: the listener starts it
            approved = self.sandbox.create_order(account_id=account, approve=True)
            self.placed.append(approved["orderId"])
            return
        order_id = self.sandbox.create_order(account_id=account)["orderId"]
        self.placed.append(order_id)
        web = self.webs[number % 2]
        url = f"{web}/api/orders/{order_id}/fulfill"
        requests.post(url, headers=self.service, timeout=30).raise_for_status()
        if number % 7 == 1:  # the portal asks twice: a duplicate
            requests.post(url, headers=self.service, timeout=30).raise_for_status()

    def _burst(self, web: str) -> None:
        """More streams at once than the process takes: the newest are shed."""
        token = self.tokens[self.accounts[0]]
        burst = [Stream(web, token) for _ in range(STREAM_LIMIT + 2)]
        time.sleep(1)
        for stream in burst:
            stream.close()

    def _refused_credentials(self) -> None:
        web = settings.current().web
        stranger = mint_token(web, account_id=self.accounts[1], scope=None, ttl=3600)
        expired = mint_token(web, account_id=self.accounts[0], scope=None, ttl=-60)
        if self.placed:
            requests.get(
                f"{self.webs[0]}/api/orders/{self.placed[0]}",
                headers={"Authorization": f"Bearer {stranger}"},
                timeout=10,
            )
        requests.get(
            f"{self.webs[1]}/api/orders", headers={"Authorization": f"Bearer {expired}"}, timeout=10
        )

    def _wait_for_terminal(self, deadline: float) -> None:
        pending = set(self.placed)
        while pending and time.monotonic() < deadline:
            for order_id in list(pending):
                answer = requests.get(
                    f"{self.webs[0]}/api/orders/{order_id}", headers=self.service, timeout=10
                )
                if answer.ok and answer.json().get("stage") in ("completed", "failed"):
                    pending.discard(order_id)
            time.sleep(1)
        if pending:
            print(f"{len(pending)} orders not finished in time", file=sys.stderr)


# --- the panels ---------------------------------------------------------------------------


def query_panels(prometheus: str, start: float, end: float) -> dict[str, Any]:
    """The dashboard with each target's result from Prometheus: a range query for a time
    series, an instant query at `end` for a stat."""
    board = json.loads(DASHBOARD.read_text())
    step = SCRAPE_SECONDS
    start, end = start - start % step, end - end % step  # whole steps, as Grafana aligns them
    variables = {"$__rate_interval": RATE_INTERVAL, "$__range": f"{round(end - start)}s"}
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in variables.items():
                expr = expr.replace(name, value)
            if panel["type"] == "stat":
                params = {"query": expr, "time": end}
                answer = requests.get(f"{prometheus}/api/v1/query", params=params, timeout=30)
            else:
                params = {"query": expr, "start": start, "end": end, "step": step}
                answer = requests.get(f"{prometheus}/api/v1/query_range", params=params, timeout=30)
            answer.raise_for_status()
            target["result"] = answer.json()["data"]["result"]
            target["query"] = expr
    return {"dashboard": board, "start": start, "end": end, "step": step}


def screenshot(data: dict[str, Any], uplot: Path, chromium: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    page_html = (
        TEMPLATE.read_text()
        .replace("/*UPLOT_CSS*/", (uplot / "uPlot.min.css").read_text())
        .replace("/*UPLOT_JS*/", (uplot / "uPlot.iife.min.js").read_text())
        .replace("/*DATA*/null", json.dumps(data))
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        page = browser.new_page(viewport={"width": 1600, "height": 900}, device_scale_factor=1)
        page.set_content(page_html)
        page.wait_for_function("document.body.dataset.drawn === 'yes'", timeout=30_000)
        page.screenshot(path=str(out), full_page=True)
        browser.close()


if __name__ == "__main__":
    main()
