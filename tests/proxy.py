"""Debian's nginx, run with docker/nginx.conf in front of web processes, for tests.

The config is the one compose ships, not a copy: only what differs between a container and a
test is rewritten (the listen address, the upstream servers, the certificate, where the logs,
pid and temporary files go, the worker user), and a rewrite that no longer finds its line
fails, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "docker" / "nginx.conf"
_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_path() -> str | None:
    """`NGINX_PATH`, else nginx on PATH, else Debian's (in /usr/sbin, often not on PATH)."""
    configured = os.environ.get("NGINX_PATH")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def _sub(pattern: str, replacement: str, text: str, count: int = 1) -> str:
    """`re.sub` that insists on finding exactly `count` matches."""
    result, found = re.subn(pattern, replacement, text, flags=re.M)
    if found != count:
        raise ValueError(f"{CONFIG.name}: expected {count} match(es) of {pattern!r}, found {found}")
    return result


def render(
    text: str, *, port: int, upstreams: list[int], cert: Path, key: Path, directory: Path
) -> str:
    """docker/nginx.conf with this machine's ports and files in place of the container's."""
    servers = re.compile(r"^(\s*server )web-[a-z]+:\d+", re.M)
    found = len(servers.findall(text))
    if found != len(upstreams):
        raise ValueError(f"{CONFIG.name} has {found} upstream servers, not {len(upstreams)}")
    ports = iter(upstreams)
    text = servers.sub(lambda m: f"{m.group(1)}127.0.0.1:{next(ports)}", text)
    text = _sub(r"^(\s*listen )\d+( ssl http2;)", rf"\g<1>127.0.0.1:{port}\2", text)
    text = _sub(r"^(\s*ssl_certificate ).+;", rf"\g<1>{cert};", text)
    text = _sub(r"^(\s*ssl_certificate_key ).+;", rf"\g<1>{key};", text)
    text = _sub(r"^pid .+;", f"pid {directory / 'nginx.pid'};", text)
    text = _sub(r"^error_log \S+", f"error_log {directory / 'error.log'}", text)
    text = _sub(r"^(\s*access_log )\S+", rf"\g<1>{directory / 'access.log'}", text)
    # A master running as root hands its workers to the named user, who could not enter this
    # private temporary directory; the tests' own user owns it. As anyone else nginx has no
    # choice and warns about the directive, so it goes.
    user = pwd.getpwuid(os.geteuid()).pw_name
    text = _sub(r"^user .+;\n", f"user {user};\n" if os.geteuid() == 0 else "", text)
    # Debian's compiled-in temporary paths are under /var/lib/nginx, writable by root only.
    temp = "".join(f"    {name}_temp_path {directory / name};\n" for name in _TEMP_PATHS)
    return _sub(r"^http \{\n", "http {\n" + temp, text)


@dataclass
class Proxy:
    """One nginx master (not a daemon: a child of the test) and its workers."""

    port: int
    process: subprocess.Popen[bytes]
    directory: Path
    #: The certificate it serves; self-signed, its own CA, so clients can verify against it.
    cert: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def error_log(self) -> str:
        path = self.directory / "error.log"
        return path.read_text() if path.exists() else ""

    def client_connections(self) -> int:
        """Established connections the workers hold on the listening port (from browsers)."""
        import psutil

        return sum(
            1
            for worker in psutil.Process(self.process.pid).children()
            for c in worker.net_connections("tcp")
            if c.laddr and c.laddr.port == self.port and c.status == psutil.CONN_ESTABLISHED
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # nginx's fast shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_proxy(upstreams: list[int], directory: Path, cert: Path, key: Path) -> Proxy:
    """nginx with docker/nginx.conf on a free port in front of `upstreams` (ports on 127.0.0.1).

    Raises RuntimeError when nginx is not installed (callers skip) or does not come up (with
    its error log).
    """
    binary = nginx_path()
    if binary is None:
        raise RuntimeError("nginx is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "nginx.conf"
    config.write_text(
        render(
            CONFIG.read_text(), port=port, upstreams=upstreams, cert=cert, key=key,
            directory=directory,
        )
    )  # fmt: skip
    test = subprocess.run(
        [binary, "-t", "-q", "-p", str(directory), "-c", str(config)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if test.returncode != 0:
        raise RuntimeError(f"nginx refused the config: {test.stderr}")
    command = [binary, "-p", str(directory), "-c", str(config), "-g", "daemon off;"]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    proxy = Proxy(port, process, directory, cert)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {proxy.error_log()}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proxy
        time.sleep(0.05)
    proxy.stop()
    raise RuntimeError(f"nginx did not come up: {proxy.error_log()}")
