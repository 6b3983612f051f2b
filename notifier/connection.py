"""The process's pooled Redis client.

One `BlockingConnectionPool` per process (and per URL, so tests can point elsewhere): callers
wait for a free connection instead of failing with "Too many connections" when thousands of
streams open at once (redis-py 8 caps plain pools at 100). redis-py pools notice a fork and
reconnect, so a module-level client is safe in Celery's prefork children too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.client import Pipeline
from redis.commands.core import Script

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}
_scripts: dict[str, Script] = {}


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def get_redis() -> redis.Redis:
    """The shared client for `REDIS_URL` (strings decoded)."""
    url = redis_url()
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.get(url) or _new_client(url)
            _clients[url] = client
    return client


def _new_client(url: str) -> redis.Redis:
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=int(os.environ.get("REDIS_MAX_CONNECTIONS") or 8),
        timeout=float(os.environ.get("REDIS_POOL_TIMEOUT_SECONDS") or 5),
        decode_responses=True,
        health_check_interval=30,
    )
    return redis.Redis(connection_pool=pool)


def run_script(
    source: str, keys: Sequence[Any], args: Sequence[Any], client: redis.Redis | None = None
) -> Any:
    """Run a Lua script by its SHA (EVALSHA) on `client` (the shared one by default).

    One `Script` per source serves every client: redis-py loads it again on a server that does
    not know it (NOSCRIPT, e.g. after a Redis restart), so no script text travels per call.
    In a pipeline use `queue_script` instead.
    """
    client = client or get_redis()
    return _script(source)(keys=keys, args=args, client=client)


def queue_script(pipe: Pipeline, source: str, keys: Sequence[Any], args: Sequence[Any]) -> None:
    """Queue the script (EVALSHA) on `pipe`, which `run_pipeline` executes.

    Not redis-py's way (`Script(client=pipe)`): that makes every execute ask SCRIPT EXISTS
    first, a second round trip per pipeline; here a missing script is loaded only when Redis
    answers NOSCRIPT (after a restart), and the pipeline runs again."""
    pipe.execute_command("EVALSHA", _script(source).sha, len(keys), *keys, *args)


def run_pipeline(build: Callable[[Pipeline], None], transaction: bool = False) -> list[Any]:
    """Build a pipeline with `build` and execute it, loading the scripts once if Redis lost
    them. `build` may run twice: what it queues must be safe to repeat."""
    client = get_redis()
    for attempt in range(2):
        pipe = client.pipeline(transaction=transaction)
        build(pipe)
        try:
            return list(pipe.execute())
        except redis.exceptions.NoScriptError:
            if attempt:
                raise
            for script in list(_scripts.values()):
                client.script_load(script.script)
    raise AssertionError("unreachable")


def _script(source: str) -> Script:
    script = _scripts.get(source)
    if script is None:
        with _lock:
            script = _scripts.get(source) or get_redis().register_script(source)
            _scripts[source] = script
    return script


def reset_clients() -> None:
    """Drop cached clients (tests switch URLs; a restarted Redis needs nothing from this)."""
    with _lock:
        for client in _clients.values():
            client.connection_pool.disconnect()
        _clients.clear()
