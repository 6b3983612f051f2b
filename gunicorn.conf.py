"""gunicorn settings for the web process (gunicorn reads ./gunicorn.conf.py by itself).

This file lives outside the `app` package on purpose: gunicorn loads it in the master,
before gevent patches the workers, and importing the app there would import ssl unpatched.

gevent workers: each open event stream is a greenlet, not a thread. No `preload_app`: the app
must be imported after gevent has patched the standard library in each worker.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import tempfile

from gunicorn import glogging

import settings as process_settings

#: Read once here, in the master; the workers it forks inherit them (and `create_app` uses
#: them). The settings package imports nothing that gevent would need to patch first.
_settings = process_settings.current()
_server = _settings.server

#: An IPv6 address is bracketed, as gunicorn reads `[::1]:5000`.
_address = f"[{_server.address}]" if ":" in _server.address else _server.address
bind = f"{_address}:{_server.port}"
workers = _server.concurrency
worker_class = "gevent"
#: Open streams per worker process; each also needs a file descriptor.
worker_connections = _server.worker_connections


def _raise_fd_limit(wanted: int) -> None:
    """Each stream is a socket: let the workers (who inherit it) open as many as configured.
    Only the soft limit moves, up to the hard one the operator set."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


_raise_fd_limit(worker_connections + 1024)
#: A burst of reconnecting browsers (after a deploy) must not overflow the listen queue.
backlog = _server.backlog
timeout = 30
graceful_timeout = _server.graceful_timeout_seconds
keepalive = 5
preload_app = False
#: gunicorn's control socket defaults to one path per user: several servers would share it.
control_socket_disable = True

#: Access log ("-" is stdout; empty disables it). %(U)s is the path without its query string:
#: stream tickets travel in the query string and must never reach a log.
accesslog = _server.access_log or None
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'


class _Logger(glogging.Logger):
    """gunicorn's logger, minus the access line's cost when access lines are off.

    gunicorn builds every access line's fields before the logging level drops it: a burst that
    ends ten thousand streams spent a tenth of its time there (py-spy, `make bench`).
    """

    def access(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
        if self.access_log.isEnabledFor(logging.INFO):
            super().access(resp, req, environ, request_time)


logger_class = _Logger

#: Every log line (gunicorn's, the app's) through the same formatter: JSON by default.
_handler = {"class": "logging.StreamHandler", "formatter": "main", "stream": "ext://sys.stderr"}
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"main": {"()": "observability.logs.formatter"}},
    "handlers": {"main": _handler},
    "root": {"level": _settings.observability.log_level, "handlers": ["main"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["main"], "propagate": False},
        # With a logging config, gunicorn logs access lines even when `accesslog` is unset.
        "gunicorn.access": {
            "level": "INFO" if accesslog else "CRITICAL",
            "handlers": ["main"],
            "propagate": False,
        },
    },
}

#: Metrics from every worker process are added up through files in this directory
#: (prometheus-client's multiprocess mode). The web has its own unless one is given: its
#: /metrics shows the web's series, not those of other processes on the host. prometheus-client
#: finds the directory in the environment, so it goes there before the workers start.
_own_metrics_dir = not _settings.observability.metrics_dir
if _own_metrics_dir:
    _dir = tempfile.mkdtemp(prefix="fulfillment-web-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _dir
    _settings = process_settings.configure(_settings.replace(observability={"metrics_dir": _dir}))


def when_ready(server):  # type: ignore[no-untyped-def]
    """With `METRICS_PORT`, the master serves every worker's metrics on a port of its own, so
    /metrics need not be reachable where the web port is."""
    from observability import metrics

    if metrics.serve(_settings.observability, _server.metrics_port or 0, _server.metrics_address):
        server.log.info("metrics on port %s", _server.metrics_port)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    from observability import metrics

    metrics.forget_process(_settings.observability, worker.pid)


def on_exit(server):  # type: ignore[no-untyped-def]
    if _own_metrics_dir:
        shutil.rmtree(_settings.observability.metrics_dir or "", ignore_errors=True)


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """End open event streams as soon as the worker is asked to stop.

    gunicorn's gevent worker waits up to `graceful_timeout` for requests to finish, and an
    event stream never finishes by itself. Ending the streams at once lets browsers reconnect
    (to another worker or host) and resume by event id, and lets the worker exit quickly.
    """
    import gc
    import signal

    import gevent

    from streaming import collector
    from streaming.hub import process_hub

    # What the app loaded (Flask, redis-py, gevent, ...) never becomes garbage: freeze it out
    # of the collector, which otherwise walked it at every full collection (a fifth of a
    # reconnect storm's CPU, measured with gc.callbacks). The thresholds stay the default:
    # raising them made the rarer full collections long pauses in the middle of a burst.
    gc.freeze()
    # The same for what open streams hold, soon after they open (see streaming/collector.py).
    collector.enable()
    # gevent records each greenlet's spawning stack and parent, for debugging: a few hundred
    # bytes per open stream (each one is a greenlet), and time at every connection.
    gevent.config.track_greenlet_tree = False

    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):  # type: ignore[no-untyped-def]
        gevent.spawn(process_hub().shutdown)
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
