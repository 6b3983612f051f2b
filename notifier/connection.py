"""The process's pooled Redis client.

One `BlockingConnectionPool` per process (and per Redis settings, so a test can point a
process elsewhere by configuring other settings): callers
wait for a free connection instead of failing with "Too many connections" when thousands of
streams open at once (redis-py 8 caps plain pools at 100). redis-py pools notice a fork and
reconnect, so a module-level client is safe in Celery's prefork children too.

With `REDIS_CLUSTER=1` the client is a `RedisCluster` (one blocking pool per node, the slot
map learned from the node `REDIS_URL` names and followed on MOVED); it takes the same calls.
What may commit together on a cluster is `notifier.placement`'s.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast
from urllib.parse import urlparse

import redis
from redis.client import Pipeline
from redis.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.commands.core import Script
from redis.connection import parse_url

import settings
from settings import RedisSettings

from . import replication
from .scripts import LuaScript

_lock = threading.Lock()
_clients: dict[RedisSettings, redis.Redis] = {}
_scripts: dict[str, Script] = {}


def get_redis(where: RedisSettings | None = None) -> redis.Redis:
    """The shared client for `where` (default: this process's settings), strings decoded."""
    where = where or settings.current().redis
    client = _clients.get(where)
    if client is None:
        with _lock:
            client = _clients.get(where) or _new_client(where)
            _clients[where] = client
    return client


def _new_client(where: RedisSettings) -> redis.Redis:
    if where.cluster:
        return _cluster_client(where)
    pool = redis.BlockingConnectionPool.from_url(
        where.url,
        max_connections=where.max_connections,
        timeout=where.pool_timeout_seconds,
        decode_responses=True,
        health_check_interval=30,
    )
    return redis.Redis(connection_pool=pool)


class _Cluster(RedisCluster):
    """A RedisCluster whose failures are RedisErrors, as one Redis's are.

    redis-py raises `RedisClusterException` (not a RedisError) when no node answers or a slot
    is not covered, and ResponseErrors for CLUSTERDOWN and TRYAGAIN, mid-failover: every
    caller that treats "Redis is down" as such (a 503, a step retried, a stream ended) would
    see an unknown error instead, and a worker would fail the order.
    """

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        with _as_redis_errors():
            return super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        execute = pipe.execute

        def guarded(*args: Any, **kwargs: Any) -> Any:
            with _as_redis_errors():
                return execute(*args, **kwargs)

        pipe.execute = guarded
        return pipe


#: A cluster mid-failover or mid-restart: to every caller, a Redis that is down.
_UNAVAILABLE = (
    redis.exceptions.RedisClusterException,  # no node answers, a slot not covered
    redis.exceptions.ClusterDownError,  # CLUSTERDOWN, MASTERDOWN
    redis.exceptions.TryAgainError,  # TRYAGAIN: a slot migrating
)


@contextmanager
def _as_redis_errors() -> Iterator[None]:
    try:
        yield
    except _UNAVAILABLE as exc:
        raise redis.exceptions.ConnectionError(f"Redis Cluster unavailable: {exc}") from exc


def _cluster_client(where: RedisSettings) -> redis.Redis:
    client = cluster_client(
        where.url,
        decode_responses=True,
        connection_pool_class=redis.BlockingConnectionPool,
        max_connections=where.max_connections,
        timeout=where.pool_timeout_seconds,
        health_check_interval=30,
    )
    # The same calls as a `Redis` (commands, pipelines, scripts): typed as one, so callers
    # need not care which they hold.
    return cast(redis.Redis, client)


def cluster_client(url: str, **options: Any) -> RedisCluster:
    """A cluster client that learns the cluster from the nodes `url` names: one node's URL, or
    several, comma-separated (`redis://a:6379,redis://b:6379`; the first's credentials and
    TLS serve all). It asks each in turn for the slot map, so a process that starts while
    one of them is down (its primary just killed) still connects; if none answers, a
    ConnectionError, as from one Redis that is down."""
    first, *others = _seeds(url)
    startup = [ClusterNode(parts.hostname, parts.port or 6379) for parts in map(urlparse, others)]
    with _as_redis_errors():
        return _Cluster(url=first, startup_nodes=startup, **options)


def node_options(url: str) -> dict[str, Any]:
    """What a plain client of one cluster node needs from `url` besides its host and port
    (credentials, TLS), for connections of one's own to a node (the stream hub's)."""
    options = dict(parse_url(_seeds(url)[0]))
    options.pop("host", None)
    options.pop("port", None)
    return options


def _seeds(url: str) -> list[str]:
    seeds = [part.strip() for part in url.split(",") if part.strip()]
    return [seed if "://" in seed else f"redis://{seed}" for seed in seeds]


def run_script(
    script: LuaScript,
    keys: Sequence[Any],
    args: Sequence[Any],
    client: redis.Redis | None = None,
    replicated: bool = False,
) -> Any:
    """Run a Lua script by its SHA (EVALSHA) on `client` (the shared one by default).

    One `Script` per source serves every client: redis-py loads it again on a server that does
    not know it (NOSCRIPT, e.g. after a Redis restart), so no script text travels per call.
    In a pipeline use `queue_script` instead. `keys` and `args` must match the script's
    header (see `notifier.scripts`), or TypeError before anything is sent. `replicated`: a
    commit, which waits for replicas when the settings ask (`notifier.replication`).
    """
    script.check(keys, args)
    if replicated and settings.current().redis.wait_replicas:
        queue = lambda pipe: queue_script(pipe, script, keys, args)  # noqa: E731
        return run_pipeline(queue, replicated=True, client=client)[0]
    client = client or get_redis()
    return _script(script.source)(keys=keys, args=args, client=client)


def queue_script(
    pipe: Pipeline, script: LuaScript, keys: Sequence[Any], args: Sequence[Any]
) -> None:
    """Queue the script (EVALSHA) on `pipe`, which `run_pipeline` executes.

    Not redis-py's way (`Script(client=pipe)`): that makes every execute ask SCRIPT EXISTS
    first, a second round trip per pipeline; here a missing script is loaded only when Redis
    answers NOSCRIPT (after a restart), and the pipeline runs again. `keys` and `args` are
    checked as in `run_script`.

    In a cluster's pipeline the script goes to the node of its first key's slot, named here:
    redis-py 8.1's cluster pipeline otherwise asks a node `COMMAND GETKEYS` for every EVALSHA
    it routes, one more round trip per script call (its plain client reads the keys itself).
    A slot that moved meanwhile is answered MOVED, and redis-py routes the retry by key."""
    script.check(keys, args)
    command = ("EVALSHA", _script(script.source).sha, len(keys), *keys, *args)
    if isinstance(pipe, ClusterPipeline) and keys:
        node = pipe.nodes_manager.get_node_from_slot(pipe.keyslot(keys[0]))
        replication.note_node(pipe, node)
        pipe.execute_command(*command, target_nodes=node)
    else:
        pipe.execute_command(*command)


def run_pipeline(
    build: Callable[[Pipeline], None],
    transaction: bool = False,
    replicated: bool = False,
    client: redis.Redis | None = None,
) -> list[Any]:
    """Build a pipeline with `build` and execute it, loading the scripts once if Redis lost
    them. `build` may run twice: what it queues must be safe to repeat. `replicated`: its
    scripts are commits, which wait for replicas when the settings ask (the replies are
    `build`'s alone)."""
    client = client or get_redis()
    where = settings.current().redis
    for attempt in range(2):
        pipe = client.pipeline(transaction=transaction)
        build(pipe)
        waits = replication.queue_waits(pipe, where) if replicated and where.wait_replicas else 0
        try:
            replies = list(pipe.execute())
        except redis.exceptions.NoScriptError:
            if attempt:
                raise
            for script in list(_scripts.values()):
                client.script_load(script.script)
            continue
        if waits:
            replication.check(replies[-waits:], where)
            del replies[-waits:]
        return replies
    raise AssertionError("unreachable")


def _script(source: str) -> Script:
    script = _scripts.get(source)
    if script is None:
        with _lock:
            script = _scripts.get(source) or get_redis().register_script(source)
            _scripts[source] = script
    return script
