"""`make run`: the whole stack on one machine, in the foreground, with honcho.

Redis (the one at REDIS_URL when it answers, else an embedded redis-server), the sandbox, the
web process, a worker and Flower, from `Procfile.dev`. honcho hands out `PORT` as base + 100
per process; `web` comes first in the Procfile so it gets `PORT` itself, and every other
process takes its port from its own variable. Ctrl-C stops everything honcho started.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path

from dotenv import load_dotenv

from sandbox.redis_server import answers


def stack_environment() -> dict[str, str]:
    load_dotenv(override=False)
    env = dict(os.environ)
    env.setdefault("PORT", "5000")
    env.setdefault("FLOWER_PORT", "5555")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    env.setdefault("SANDBOX_DIR", ".sandbox")
    Path(env["SANDBOX_DIR"]).mkdir(parents=True, exist_ok=True)
    env.setdefault("FLOWER_BASIC_AUTH", f"admin:{secrets.token_urlsafe(12)}")
    env.setdefault("WEB_CONCURRENCY", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    # Web and worker share one metrics directory, so the web's /metrics shows both.
    metrics = Path(env["SANDBOX_DIR"]) / "metrics"
    shutil.rmtree(metrics, ignore_errors=True)
    metrics.mkdir(parents=True)
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics.resolve()))
    # The venv's console scripts (fulfillment, celery, gunicorn) must be found by honcho's shell.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def banner(env: dict[str, str]) -> str:
    redis_note = "already running" if answers(env["REDIS_URL"]) else "embedded, starting"
    user, _, password = env["FLOWER_BASIC_AUTH"].partition(":")
    return "\n".join(
        [
            "",
            f"  Demo page   http://127.0.0.1:{env['PORT']}/  (sign in, place a demo order)",
            f"  API         http://127.0.0.1:{env['PORT']}/api/orders/<order id>",
            f"  Metrics     http://127.0.0.1:{env['PORT']}/metrics",
            f"  Flower      http://127.0.0.1:{env['FLOWER_PORT']}/",
            f"              user {user}, password {password}",
            f"  Redis       {env['REDIS_URL']} ({redis_note})",
            f"  Sandbox     {env['SANDBOX_DIR']}",
            "  Ctrl-C stops everything.",
            "",
        ]
    )


def main() -> None:
    env = stack_environment()
    print(banner(env), flush=True)
    procfile = Path(__file__).resolve().parent.parent / "Procfile.dev"
    command = [sys.executable, "-m", "honcho", "-f", str(procfile), "-d", os.getcwd(), "start"]
    os.execve(sys.executable, command, env)  # noqa: S606


if __name__ == "__main__":
    main()
