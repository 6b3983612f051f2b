"""kombu's Redis transport, with one Redis client per channel instead of one per call.

kombu builds a new `redis.Redis` for every broker operation that has no client at hand:
each task event published, each message recorded as unacknowledged and each acknowledgement
(`Channel.conn_or_acquire`). `Redis.__init__` copies a table of some two hundred response
callbacks, which made it the largest single cost of a worker's consumer in the pipeline
profile. A client is a thin, thread-safe handle over the channel's connection pool (which
notices a fork by itself), so one per channel serves every call. Selected for `redis://` and
`rediss://` brokers by `tasks.config` (`broker_transport`).
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis


class Channel(redis.Channel):
    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:  # the event loop's own (BRPOP), already one per channel
            return super()._create_client(asynchronous=True)
        client = self.__dict__.get("_shared_client")
        if client is None:
            client = self.__dict__["_shared_client"] = super()._create_client()
        return client


class Transport(redis.Transport):
    Channel = Channel
