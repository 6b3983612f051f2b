"""The ways the processes are started (Procfile, Docker, compose) stay in step with the code."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def procfile(name: str) -> dict[str, str]:
    lines = (ROOT / name).read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def test_the_procfile_runs_web_worker_listener_and_flower() -> None:
    processes = procfile("Procfile")
    assert set(processes) == {"web", "worker", "listener", "flower"}
    assert processes["listener"] == "fulfillment listen"
    assert processes["web"].startswith("gunicorn 'app:create_app()'")
    assert "--task-events" in processes["worker"] and "tasks.celery_app" in processes["worker"]
    assert "FLOWER_BASIC_AUTH" in processes["flower"] and "FLOWER_PORT" in processes["flower"]


def test_the_dev_procfile_puts_web_first() -> None:
    # honcho gives the first process PORT itself (then +100 per process): web must be first.
    assert list(procfile("Procfile.dev"))[:1] == ["web"]
    assert set(procfile("Procfile.dev")) == {
        "web",
        "redis",
        "sandbox",
        "worker",
        "listener",
        "flower",
    }


def test_the_image_contains_every_package() -> None:
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]
    names = [p.rstrip("*") for p in packages["find"]["include"]]
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    for name in names:
        assert re.search(rf"^COPY {name} ", dockerfile, re.M), name
    assert re.search(r"^USER (?!root)", dockerfile, re.M)


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_the_compose_file_is_valid_and_checks_health() -> None:
    import yaml

    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker" / "compose.yaml"), "config"],
        capture_output=True, text=True, env={"FLOWER_BASIC_AUTH": "a:b", "PATH": "/usr/bin:/bin"},
        check=True,
    )  # fmt: skip
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"redis", "sandbox", "web", "worker", "flower"}
    assert all("healthcheck" in service for service in services.values())
