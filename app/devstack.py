"""`make run`: the whole stack on one machine, in the foreground, with honcho.

Redis (the one at REDIS_URL when it answers, else an embedded redis-server), the sandbox, the
web process, a worker and Flower, from `Procfile.dev`. honcho hands out `PORT` as base + 100
per process; `web` comes first in the Procfile so it gets `PORT` itself, and every other
process takes its port from its own variable. Ctrl-C stops everything honcho started.

The stack's whereabouts (Redis, namespace, sandbox) also go to `STACK_FILE` in the directory
`make run` was started in, which the CLI reads: `fulfillment watch` in a new shell talks to
this stack whatever its ports.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import redis

import settings
from settings import STACK_FILE, Settings

ROOT = Path(__file__).resolve().parent.parent
#: What a new shell needs to reach the stack (the rest has defaults or is the processes').
_STACK_VARIABLES = (
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "FULFILLMENT_NAMESPACE",
    "SANDBOX_DIR",
    "SANDBOX_HOST",
    "SANDBOX_SALESFORCE_PORT",
    "SANDBOX_WHMCS_PORT",
    "SANDBOX_PUBSUB_PORT",
    "PORT",
)


def stack_environment(chosen: Settings) -> dict[str, str]:
    """The processes' environment: this one, with the stack's resolved settings spelled out
    (so every process, and the stack file, agree)."""
    env = settings.process_environment()  # what this process was given, `.env` included
    env.update(
        {
            "PORT": str(chosen.server.port),
            "FLOWER_PORT": str(chosen.server.flower_port),
            "REDIS_URL": chosen.redis.url,
            "CELERY_BROKER_URL": chosen.broker.url,
            "FULFILLMENT_NAMESPACE": chosen.namespace,
            "SANDBOX_DIR": str(chosen.sandbox.dir),
            "SANDBOX_HOST": chosen.sandbox.host,
            "SANDBOX_SALESFORCE_PORT": str(chosen.sandbox.salesforce_port),
            "SANDBOX_WHMCS_PORT": str(chosen.sandbox.whmcs_port),
            "SANDBOX_PUBSUB_PORT": str(chosen.sandbox.pubsub_port),
            "FLOWER_BASIC_AUTH": chosen.server.flower_basic_auth
            or f"admin:{secrets.token_urlsafe(12)}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.setdefault("WEB_CONCURRENCY", "1")
    # Each process kind keeps its own metrics (the Procfile gives the worker a directory);
    # one shared directory would put the worker's and Flower's series in the web's /metrics.
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # The venv's console scripts (fulfillment, celery, gunicorn) must be found by honcho's shell.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def write_stack_file(env: dict[str, str], directory: Path) -> Path:
    path = directory / STACK_FILE
    lines = ["# written by `make run`: where its stack is, for the CLI in other shells"]
    lines += [f"{name}={env[name]}" for name in _STACK_VARIABLES if env.get(name)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def banner(env: dict[str, str], stack_file: Path) -> str:
    redis_note = "already running" if _redis_answers(env["REDIS_URL"]) else "embedded, starting"
    user, _, password = env["FLOWER_BASIC_AUTH"].partition(":")
    worker_metrics = env.get("WORKER_METRICS_PORT") or "9808"
    return "\n".join(
        [
            "",
            f"  Demo page   http://127.0.0.1:{env['PORT']}/  (sign in, place a demo order)",
            f"  API         http://127.0.0.1:{env['PORT']}/api/orders/<order id>",
            f"  Metrics     http://127.0.0.1:{env['PORT']}/metrics (web), "
            f"http://127.0.0.1:{worker_metrics}/metrics (worker)",
            f"  Flower      http://127.0.0.1:{env['FLOWER_PORT']}/",
            f"              user {user}, password {password}",
            f"  Redis       {env['REDIS_URL']} ({redis_note})",
            f"  Sandbox     {env['SANDBOX_DIR']}",
            f"  CLI         `fulfillment ...` run here finds this stack ({stack_file.name})",
            "  Ctrl-C stops everything.",
            "",
        ]
    )


def main() -> None:
    chosen = settings.from_environment()
    chosen.sandbox.dir.mkdir(parents=True, exist_ok=True)
    env = stack_environment(chosen)
    stack_file = write_stack_file(env, Path.cwd())
    print(banner(env, stack_file), flush=True)
    procfile = ROOT / "Procfile.dev"
    command = [sys.executable, "-m", "honcho", "-f", str(procfile), "-d", str(ROOT), "start"]
    os.execve(sys.executable, command, env)  # noqa: S606


if __name__ == "__main__":
    main()
