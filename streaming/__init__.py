"""Web streaming: serving each order's events to browsers over Server-Sent Events.

The per-process pub/sub hub (`hub.py`), noticing closed clients (`liveness.py`), how many
streams a process takes and when it sheds (`admission.py`), stream slots per account
(`quota.py`), what a new stream reads in one round trip (`opening.py`), SSE framing
(`sse.py`, pure), one stream's catch-up and live loop (`stream.py`), keeping open streams out
of the garbage collector's walks (`collector.py`), stream metrics (`metrics.py`) and the
flask-sse blueprint that serves it (`blueprint.py`).

Rule of this package: it runs in the web process only (gevent). It imports `notifier` (the
event contract, keys, state), `observability` (the live writes' metric tally) and `settings`,
never `fulfillment`, `tasks` or `app`; nothing a worker imports may import it.
"""
