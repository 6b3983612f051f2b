"""Starting and stopping the emulators: Salesforce (REST and Pub/Sub API) and WHMCS.

`start()` runs them in background threads and returns a `Sandbox` handle (what tests use);
`serve()` runs them in the foreground until SIGINT/SIGTERM (what `python -m sandbox` uses).
Salesforce is served over HTTPS with the sandbox's own certificate, its Pub/Sub API over gRPC
with the same certificate, WHMCS over plain HTTP. They share one world, saved to
`<dir>/state.json`; Salesforce's REST and gRPC sides also share the OAuth tokens, the fault
switches and the event bus (which lives in memory only).
"""

from __future__ import annotations

import logging
import signal
import ssl
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from flask import Flask

from . import catalogue, credentials, oauth, persistence, pubsub, pubsub_bus, salesforce, tls, whmcs
from .credentials import Credentials
from .http_server import KeepAliveServer

log = logging.getLogger(__name__)


class Sandbox:
    """The running emulators. Stop them with `stop()` or use this as a context manager."""

    #: The sandbox org's id (`tenantid` on the Pub/Sub API, in every token's identity URL).
    org_id = oauth.ORG_ID

    def __init__(
        self,
        directory: Path,
        creds: Credentials,
        ca_file: Path,
        servers: dict[str, _Server],
        pubsub_server: pubsub.PubSubServer,
        saver: persistence.Autosaver,
        stopping: threading.Event,
    ) -> None:
        self.directory = directory
        self.credentials = creds
        self.ca_file = str(ca_file)
        self.salesforce_url = _url("https", servers["salesforce"])
        self.whmcs_url = _url("http", servers["whmcs"])
        #: `host:port` of the Pub/Sub API (a gRPC target, no scheme).
        self.pubsub_url = _address(pubsub_server)
        self._servers = servers
        self._pubsub = pubsub_server
        self._saver = saver
        self._stopping = stopping
        self._threads = [
            # A short poll interval keeps stop() quick: shutdown waits for the next poll.
            threading.Thread(
                target=s.serve_forever, args=(0.05,), name=f"sandbox-{name}", daemon=True
            )
            for name, s in servers.items()
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop serving, cut short any held (faulted) responses, and save the state."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        # Shut all down at once: each shutdown() waits for its server's next poll.
        stoppers = [threading.Thread(target=s.shutdown) for s in self._servers.values()]
        stoppers.append(threading.Thread(target=self._pubsub.stop))
        for thread in stoppers:
            thread.start()
        for thread in [*stoppers, *self._threads]:
            thread.join()
        for server in self._servers.values():
            server.server_close()
        self._saver.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start(
    directory: str | Path,
    salesforce_port: int = 0,
    whmcs_port: int = 0,
    host: str = "127.0.0.1",
    tls_names: Iterable[str] = (),
    pubsub_port: int = 0,
    *,
    pubsub_keepalive_seconds: float = pubsub_bus.DEFAULT_KEEPALIVE_SECONDS,
    pubsub_retention_seconds: float = pubsub_bus.DEFAULT_RETENTION_SECONDS,
) -> Sandbox:
    """Start the emulators in background threads; port 0 picks a free port."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    creds = credentials.load_or_create(root)
    cert, key = tls.ensure_certificate(root, [host, *tls_names])
    state_path = root / persistence.STATE_FILE
    world = persistence.load(state_path)
    catalogue.seed(world)
    stopping = threading.Event()
    tokens, faults = oauth.TokenStore(), salesforce.fault_registry()
    bus = pubsub_bus.EventBus(
        retention_seconds=pubsub_retention_seconds, keepalive_seconds=pubsub_keepalive_seconds
    )
    # A Pub/Sub fault switched on must reach streams that are waiting for events.
    faults.on_add(bus.wake)
    salesforce_app = salesforce.create_app(
        world, creds["salesforce"], tokens, faults, stopping, bus
    )
    whmcs_app = whmcs.create_app(world, creds["whmcs"], whmcs.fault_registry(), stopping)
    servers = {"salesforce": _Server(host, salesforce_port, salesforce_app, _tls(cert, key))}
    try:
        servers["whmcs"] = _Server(host, whmcs_port, whmcs_app)
        servicer = pubsub.PubSubServicer(bus, tokens, faults, stopping)
        pubsub_server = pubsub.PubSubServer(host, pubsub_port, servicer, cert, key)
    except OSError:
        for server in servers.values():
            server.server_close()
        raise
    saver = persistence.Autosaver(world, state_path).start()
    return Sandbox(root, creds, cert, servers, pubsub_server, saver, stopping)


def serve(
    directory: str | Path,
    salesforce_port: int,
    whmcs_port: int,
    host: str = "127.0.0.1",
    tls_names: Iterable[str] = (),
    pubsub_port: int = 0,
) -> None:
    """Run the emulators in the foreground until SIGINT or SIGTERM."""
    stop_requested = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop_requested.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        with start(directory, salesforce_port, whmcs_port, host, tls_names, pubsub_port) as sandbox:
            print(
                f"sandbox: Salesforce {sandbox.salesforce_url}  "
                f"Pub/Sub API {sandbox.pubsub_url}  WHMCS {sandbox.whmcs_url}  "
                f"(dir {sandbox.directory}, CA {sandbox.ca_file})",
                flush=True,
            )
            stop_requested.wait()
            log.info("sandbox stopping")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def _url(scheme: str, server: _Server) -> str:
    return f"{scheme}://{_address(server)}"


def _address(server: _Server | pubsub.PubSubServer) -> str:
    """`host:port` a client on this machine reaches the server at."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(server.host, server.host)
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{server.port}"


class _Server(KeepAliveServer):
    """An emulator's server: persistent HTTP/1.1 connections, TLS for Salesforce."""

    def __init__(
        self, host: str, port: int, app: Flask, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(host, port, app, ssl_context)
