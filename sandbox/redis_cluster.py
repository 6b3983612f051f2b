"""A throwaway local Redis Cluster: N masters (and optional replicas) on 127.0.0.1, for the
tests and benchmarks that run the event store on a cluster (`REDIS_CLUSTER=1`).

Each node is Debian's `redis-server` in cluster mode, a few MB each; `redis-cli --cluster
create` assigns the slots. Nothing is kept on disk. A cluster needs Redis 7 (sharded pub/sub)
and `redis-cli`: `available()` says whether this machine has them.

    python -m sandbox.redis_cluster --masters 3   # prints the first node's URL, Ctrl-C stops
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from redis.cluster import RedisCluster

from .redis_server import RedisServer, find_binary, free_port


def available() -> str | None:
    """Why a local cluster cannot run here, or None when it can."""
    if shutil.which("redis-cli") is None or shutil.which("redis-server") is None:
        return "Debian's redis-server and redis-cli are needed for a local Redis Cluster"
    command = [find_binary(), "--version"]
    version = subprocess.run(command, capture_output=True, text=True, check=False).stdout  # noqa: S603
    major = version.split("v=", 1)[-1].split(".", 1)[0]
    if not major.isdigit() or int(major) < 7:
        return f"Redis 7 or newer is needed for sharded pub/sub ({version.strip()})"
    return None


class LocalCluster:
    """`masters` primaries (with `replicas` replicas each), started and joined."""

    def __init__(
        self,
        masters: int = 3,
        replicas: int = 0,
        data_dir: str | None = None,
        appendonly: bool = False,
    ):
        self.masters, self.replicas, self.appendonly = masters, replicas, appendonly
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="redis-cluster-"))
        self.nodes: list[RedisServer] = []

    @property
    def url(self) -> str:
        """A running node's URL: the cluster client learns the others from it."""
        return next(node for node in self.nodes if node.process is not None).url

    @property
    def seeds(self) -> str:
        """Every node's URL, comma-separated: a `REDIS_URL` that outlives any one node."""
        return ",".join(node.url for node in self.nodes)

    def start(self, timeout: float = 30.0) -> LocalCluster:
        for _ in range(self.masters * (1 + self.replicas)):
            port = free_port()
            node_dir = self.data_dir / str(port)
            # The bus port on a free port of its own: the default (port + 10000) may be taken,
            # or past 65535.
            extra = ("--cluster-enabled", "yes",
                     "--cluster-config-file", str(node_dir / "nodes.conf"),
                     "--cluster-node-timeout", "2000",
                     "--cluster-port", str(free_port()))  # fmt: skip
            node = RedisServer(port, str(node_dir), self.appendonly, "always", extra=extra)
            self.nodes.append(node.start())
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        cli = shutil.which("redis-cli") or "redis-cli"
        create = [cli, "--cluster", "create", *addresses,
                  "--cluster-replicas", str(self.replicas), "--cluster-yes"]  # fmt: skip
        subprocess.run(create, check=True, capture_output=True, timeout=timeout)  # noqa: S603
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every node says the cluster is ok and a client reaches every slot's master."""
        deadline = time.monotonic() + timeout
        while not self._ready():
            if time.monotonic() > deadline:
                raise RuntimeError("the local Redis Cluster did not become ready")
            time.sleep(0.1)

    def _ready(self) -> bool:
        try:
            for node in self.nodes:
                if node.process is None:
                    continue
                info = _client(node).cluster("info")
                if info.get("cluster_state") != "ok":
                    return False
                # A replica still in its first sync cannot be promoted if its primary dies.
                replication = _client(node).info("replication")
                if (
                    replication.get("role") == "slave"
                    and replication.get("master_link_status") != "up"
                ):
                    return False
            client = RedisCluster.from_url(self.url)
            try:
                return bool(client.ping(target_nodes=RedisCluster.PRIMARIES))
            finally:
                client.close()
        except (redis.exceptions.RedisError, OSError):
            return False

    def primary_of(self, key: str) -> RedisServer:
        """The node that serves `key`'s slot now."""
        client = RedisCluster.from_url(self.url)
        try:
            node = client.get_node_from_key(key)
        finally:
            client.close()
        return next(n for n in self.nodes if n.port == int(node.port))

    def replica_of(self, primary: RedisServer) -> RedisServer:
        """A replica of `primary` (the cluster must have been started with replicas)."""
        ports = {int(port) for _, port, _ in _client(primary).execute_command("ROLE")[2]}
        return next(n for n in self.nodes if n.port in ports)

    def move_slot(self, slot: int, to: RedisServer) -> None:
        """Move `slot` and its keys to node `to`, as `redis-cli --cluster reshard` does."""
        source = next(n for n in self.nodes if _serves(n, slot))
        origin, target = _client(source), _client(to)
        origin_id, target_id = origin.cluster("myid"), target.cluster("myid")
        target.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", origin_id)
        origin.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)
        while found := origin.execute_command("CLUSTER GETKEYSINSLOT", slot, 100):
            origin.execute_command("MIGRATE", "127.0.0.1", to.port, "", 0, 5000, "KEYS", *found)
        for node in self.nodes:
            if node.process is not None:
                _client(node).execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)

    def stop_nodes(self) -> None:
        """Stop every node (SIGTERM: each writes its append-only file) and keep their data."""
        for node in self.nodes:
            node.stop()

    def start_nodes(self, timeout: float = 60.0) -> None:
        """Start the nodes `stop_nodes` stopped, on their ports, from their files."""
        for node in self.nodes:
            if node.process is None:
                node.start()
        self.wait_ready(timeout)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop(kill=True)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _client(node: RedisServer) -> redis.Redis:
    return redis.Redis(port=node.port, decode_responses=True)


def _serves(node: RedisServer, slot: int) -> bool:
    """Whether `node` is the primary that owns `slot` now."""
    if node.process is None:
        return False
    client = _client(node)
    me = client.cluster("myid")
    for start, end, primary, *_ in client.execute_command("CLUSTER SLOTS"):
        if start <= slot <= end:
            return bool(primary[2] == me)  # [host, port, node id]
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--masters", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=0)
    args = parser.parse_args()
    missing = available()
    if missing:
        raise SystemExit(missing)
    cluster = LocalCluster(args.masters, args.replicas).start()
    print(f"redis cluster: {cluster.url} (REDIS_CLUSTER=1 REDIS_URL={cluster.url})", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
