"""The ways the processes are started (Procfile, Docker, compose) stay in step with the code."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
NGINX_CONF = ROOT / "docker" / "nginx.conf"
SERVICES = {
    "redis",
    "sandbox",
    "web-a",
    "web-b",
    "nginx",
    "worker",
    "listener",
    "flower",
    "prometheus",
    "grafana",
}


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
    assert set(services) == SERVICES
    assert all("healthcheck" in service for service in services.values())


def compose_services() -> dict[str, Any]:
    """The services as compose sees them (YAML anchors and merge keys resolved)."""
    import yaml

    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def test_compose_puts_nginx_in_front_of_two_alike_web_processes() -> None:
    services = compose_services()
    web_a, web_b, nginx = services["web-a"], services["web-b"], services["nginx"]

    assert set(services) == SERVICES
    assert all("healthcheck" in service for service in services.values())
    # The same process twice: only the published port differs.
    assert {k: v for k, v in web_a.items() if k != "ports"} == {
        k: v for k, v in web_b.items() if k != "ports"
    }
    assert web_a["command"] == ["gunicorn", "app:create_app()"]
    assert set(nginx["depends_on"]) == {"web-a", "web-b"}
    assert nginx["ports"] == ["127.0.0.1:8443:8443"]
    assert any(volume.endswith(":/etc/nginx/tls") for volume in nginx["volumes"])
    # The upstreams nginx proxies to are the compose services, on the port they listen on.
    upstreams = re.findall(r"^\s*server (\S+?)(?: |;)", upstream_block(), re.M)
    assert upstreams == [
        f"web-a:{web_a['environment']['PORT']}",
        f"web-b:{web_b['environment']['PORT']}",
    ]


def test_every_published_port_is_on_loopback() -> None:
    ports = [port for service in compose_services().values() for port in service.get("ports", [])]
    # web-a, web-b, nginx, Flower, Prometheus and Grafana; nothing else by accident
    assert len(ports) == 6
    assert all(port.startswith("127.0.0.1:") for port in ports), ports


def upstream_block() -> str:
    match = re.search(r"^\s*upstream web \{\n(.*?)^\s*\}", NGINX_CONF.read_text(), re.M | re.S)
    assert match
    return match.group(1)


def nginx_directives(block: str) -> dict[str, list[str]]:
    """`name -> [value, ...]` of the directives at the top of `block` (nested blocks skipped)."""
    found: dict[str, list[str]] = {}
    depth = 0
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.endswith("{"):
            depth += 1
        elif line == "}":
            depth -= 1
        elif depth == 0 and line.endswith(";"):
            name, _, value = line[:-1].partition(" ")
            found.setdefault(name, []).append(value.strip())
    return found


def location_blocks() -> dict[str, str]:
    """Each location's matcher -> the text of its block."""
    text = NGINX_CONF.read_text()
    return {
        match.group(1).strip(): match.group(2)
        for match in re.finditer(r"^\s*location ([^{]+)\{\n(.*?)^\s*\}", text, re.M | re.S)
    }


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m|h)?", value)
    assert match, value
    return int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]


def stream_location() -> str:
    streams = [matcher for matcher in location_blocks() if "events" in matcher]
    assert len(streams) == 1, streams
    return streams[0]


def test_the_proxy_streams_each_event_as_it_comes() -> None:
    import settings

    stream = nginx_directives(location_blocks()[stream_location()])
    http = nginx_directives(NGINX_CONF.read_text().split("\nhttp {", 1)[1])
    heartbeat = float(settings.variables_read()["SSE_HEARTBEAT_SECONDS"] or 0)

    assert stream["proxy_buffering"] == ["off"]
    assert stream["proxy_cache"] == ["off"]
    assert stream["gzip"] == ["off"]
    assert "proxy_ignore_headers" not in stream  # it would ignore X-Accel-Buffering
    # Several heartbeats may go missing before nginx gives up on a quiet stream.
    assert seconds(stream["proxy_read_timeout"][0]) >= 3 * heartbeat > 0
    assert http["proxy_http_version"] == ["1.1"]
    assert 'Connection ""' in http["proxy_set_header"]


def test_every_proxy_header_is_set_once_for_all_locations() -> None:
    # One proxy_set_header in a server or location replaces every one inherited from http {},
    # the `Connection ""` (HTTP/1.1 keep-alive and streaming) and X-Forwarded-* among them.
    text = NGINX_CONF.read_text()
    everywhere = re.findall(r"^\s*proxy_set_header (\S+)", text, re.M)
    at_http_level = nginx_directives(text.split("\nhttp {", 1)[1])["proxy_set_header"]
    assert len(everywhere) == len(at_http_level)
    wanted = {"Connection", "Host", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"}
    assert wanted <= set(everywhere)


@pytest.mark.parametrize(
    ("path", "streams"),
    [
        ("/api/orders/8015g00000AbCdEAAV/events", True),
        ("/api/orders/events", True),
        ("/api/orders/8015g00000AbCdEAAV", False),
        ("/api/orders/8015g00000AbCdEAAV/events/x", False),
        ("/api/orders/a/b/events", False),
        ("/orders/8015g00000AbCdEAAV", False),
        ("/api/client-events", False),
    ],
)
def test_the_stream_location_matches_both_streams_and_nothing_else(
    path: str, streams: bool
) -> None:
    matcher = stream_location()
    assert matcher.startswith(
        "~ "
    )  # a case-sensitive regex location (PCRE; Python's re agrees here)
    assert bool(re.search(matcher[2:].strip(), path)) is streams


def test_the_test_proxy_rewrites_every_container_address() -> None:
    from tests.proxy import render

    rendered = render(
        NGINX_CONF.read_text(), port=1234, upstreams=[5001, 5002], cert=Path("/t/c.pem"),
        key=Path("/t/k.pem"), directory=Path("/t"),
    )  # fmt: skip
    code = "\n".join(line.split("#", 1)[0] for line in rendered.splitlines())

    assert "listen 127.0.0.1:1234 ssl http2;" in code
    assert re.findall(r"server (127\.0\.0\.1:\d+)", code) == ["127.0.0.1:5001", "127.0.0.1:5002"]
    assert "ssl_certificate /t/c.pem;" in code and "ssl_certificate_key /t/k.pem;" in code
    for container_path in ("web-a", "web-b", "/etc/nginx/tls", "/run/", "/dev/stdout", "stderr"):
        assert container_path not in code, container_path
    with pytest.raises(ValueError, match="upstream servers"):
        render(
            NGINX_CONF.read_text(), port=1, upstreams=[5001], cert=Path("c"), key=Path("k"),
            directory=Path("/t"),
        )  # fmt: skip


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_the_nginx_container_makes_a_certificate_once_and_keeps_it(tmp_path: Path) -> None:
    from cryptography import x509

    env = {"PATH": "/usr/bin:/bin", "TLS_DIR": str(tmp_path / "tls"), "TLS_NAMES": "nginx 10.0.0.7"}
    script = str(ROOT / "docker" / "nginx-entrypoint.sh")

    first = subprocess.run(
        ["sh", script, "echo", "started"], env=env, capture_output=True, text=True, check=True
    )
    cert = (tmp_path / "tls" / "cert.pem").read_bytes()
    again = subprocess.run(
        ["sh", script, "echo", "again"], env=env, capture_output=True, text=True, check=True
    )

    assert first.stdout == "started\n" and again.stdout == "again\n"  # then runs the command
    assert (tmp_path / "tls" / "cert.pem").read_bytes() == cert  # kept, not made again
    assert (tmp_path / "tls" / "key.pem").stat().st_mode & 0o077 == 0
    names = (
        x509.load_pem_x509_certificate(cert)
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value
    )
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "nginx"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == [
        "127.0.0.1",
        "::1",
        "10.0.0.7",
    ]


def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    from sandbox.tls import ensure_certificate
    from tests.proxy import CONFIG, nginx_path, render

    nginx = nginx_path()
    if nginx is None:
        pytest.skip("Debian's nginx is not installed (apt-get install nginx)")
    cert, key = ensure_certificate(tmp_path)
    config = tmp_path / "nginx.conf"
    config.write_text(
        render(CONFIG.read_text(), port=1, upstreams=[2, 3], cert=cert, key=key, directory=tmp_path)
    )

    checked = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(config)], capture_output=True, text=True
    )

    assert checked.returncode == 0, checked.stderr
    assert "[warn]" not in checked.stderr  # e.g. a directive deprecated or ignored
