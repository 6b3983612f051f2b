"""The Salesforce event listener (`fulfillment listen`): Platform Events over the Pub/Sub API
start fulfillment, through the same use case as the HTTP trigger.

One active listener per stack holds a Redis lease (`lease.py`) and subscribes; the others
wait as standbys. It keeps its place in the event stream (`position.py`, written only after
the starts it covers are recorded), turns each event into a start (`handler.py`), finds
approvals the stream lost with a SOQL sweep (`sweep.py`), and reconnects, resubscribes and
re-authenticates as the API asks (`service.py`). Metrics in `metrics.py`.

Rule of this package: it runs without gevent (gRPC and monkey-patching do not mix). It
imports `settings`, `observability`, `notifier`, `integrations`, `fulfillment` and `tasks`
(to queue work), never `app` or `streaming`.
"""
