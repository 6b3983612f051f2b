"""How a commit waits for replicas before the step goes on (`REDIS_WAIT_REPLICAS`).

Redis replicates asynchronously: a primary that dies a few milliseconds after acknowledging a
write can take the write with it, and its promoted replica then holds an order one event
behind what a browser already saw (its `Last-Event-ID` names an event the new primary never
had). `WAIT n timeout` after a commit, on the same connection, returns once `n` replicas
hold everything that connection wrote, or at the timeout with how many did. That narrows the
window to the timeout's misses (counted and logged here); it does not make Redis a
consensus store, and a step that saw too few acknowledgements goes on: its commit is on the
primary, and refusing it would only turn a rare loss into a retry that publishes twice.

The commits that wait are the ones the guarantees rest on: publishing (a claim, a step's end,
an announcement) and the provisioning section's record of the WHMCS order. Reads and marks
that expire by themselves do not.

Where the WAITs go: one after a plain pipeline (one connection); on a cluster, one to each
node a script was sent to (`note_node`, called by `connection.queue_script`), since the
cluster pipeline gives each node its own connection, in order.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import Counter
from redis.client import Pipeline
from redis.cluster import ClusterNode, ClusterPipeline

from settings import RedisSettings

log = logging.getLogger(__name__)

UNREPLICATED = Counter(
    "fulfillment_redis_unreplicated_commits_total",
    "Commits that fewer replicas than REDIS_WAIT_REPLICAS acknowledged within "
    "REDIS_WAIT_TIMEOUT_MS (a failover just then could lose them).",
)

_NODES = "_replication_nodes"


def note_node(pipe: Pipeline, node: ClusterNode) -> None:
    """Remember that `pipe` (a cluster pipeline) sends a write to `node`."""
    pipe.__dict__.setdefault(_NODES, {})[node.name] = node


def queue_waits(pipe: Pipeline, where: RedisSettings) -> int:
    """Queue the WAITs for what `pipe` holds; how many replies they add at the end."""
    command = ("WAIT", where.wait_replicas, where.wait_timeout_ms)
    if not isinstance(pipe, ClusterPipeline):
        pipe.execute_command(*command)
        return 1
    nodes = list(pipe.__dict__.get(_NODES, {}).values())
    for node in nodes:
        pipe.execute_command(*command, target_nodes=node)
    return len(nodes)


def check(acknowledged: list[Any], where: RedisSettings) -> None:
    """Count (and log) the WAITs that came back short."""
    short = [int(n) for n in acknowledged if int(n) < where.wait_replicas]
    if short:
        UNREPLICATED.inc(len(short))
        log.warning(
            "a commit reached %d of %d replicas within %d ms",
            min(short), where.wait_replicas, where.wait_timeout_ms,
        )  # fmt: skip
