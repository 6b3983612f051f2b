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

bind = f"0.0.0.0:{os.environ.get('PORT') or 5000}"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
worker_class = "gevent"
#: Open streams per worker process; each also needs a file descriptor.
worker_connections = int(os.environ.get("WEB_WORKER_CONNECTIONS") or 20000)


def _raise_fd_limit(wanted: int) -> None:
    """Each stream is a socket: let the workers (who inherit it) open as many as configured.
    Only the soft limit moves, up to the hard one the operator set."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


_raise_fd_limit(worker_connections + 1024)
#: A burst of reconnecting browsers (after a deploy) must not overflow the listen queue.
backlog = int(os.environ.get("WEB_BACKLOG") or 4096)
timeout = 30
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT") or 10)
keepalive = 5
preload_app = False
#: gunicorn's control socket defaults to one path per user: several servers would share it.
control_socket_disable = True

#: Access log ("-" is stdout; empty disables it). %(U)s is the path without its query string:
#: stream tickets travel in the query string and must never reach a log.
accesslog = os.environ.get("WEB_ACCESS_LOG", "-") or None
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
    "formatters": {"main": {"()": "tasks.logs.formatter"}},
    "handlers": {"main": _handler},
    "root": {"level": (os.environ.get("LOG_LEVEL") or "INFO").upper(), "handlers": ["main"]},
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
#: (prometheus-client's multiprocess mode); it must be set before the workers start.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="fulfillment-web-metrics-")


def when_ready(server):  # type: ignore[no-untyped-def]
    """With `METRICS_PORT`, the master serves every worker's metrics on a port of its own, so
    /metrics need not be reachable where the web port is."""
    port = int(os.environ.get("METRICS_PORT") or 0)
    if not port:
        return
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(port, addr=os.environ.get("METRICS_ADDRESS") or "0.0.0.0", registry=registry)
    server.log.info("metrics on port %s", port)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):  # type: ignore[no-untyped-def]
    if _own_metrics_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """End open event streams as soon as the worker is asked to stop.

    gunicorn's gevent worker waits up to `graceful_timeout` for requests to finish, and an
    event stream never finishes by itself. Ending the streams at once lets browsers reconnect
    (to another worker or host) and resume by event id, and lets the worker exit quickly.
    """
    import gc
    import signal

    import gevent

    from notifier.hub import get_hub

    # What the app loaded (Flask, redis-py, gevent, ...) never becomes garbage: freeze it out
    # of the collector, which otherwise walked it at every full collection (a fifth of a
    # reconnect storm's CPU, measured with gc.callbacks). The thresholds stay the default:
    # raising them made the rarer full collections long pauses in the middle of a burst.
    gc.freeze()

    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):  # type: ignore[no-untyped-def]
        gevent.spawn(get_hub().shutdown)
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
