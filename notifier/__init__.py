"""Order events: the lifecycle contract (`events.py`, pure), key and channel names
(`keys.py`), the pooled Redis client and its scripts (`connection.py`), publishing
(`publish.py`), reading state and history back (`state.py`), who owns an order (`owners.py`)
and Salesforce id validation (`order_ids.py`).

`publish(order_id, update)` works from any process that has `REDIS_URL` (a Celery worker, a
script): no Flask app or request context is needed.

Rule of this package: it is what workers import, so it imports only `settings` from the
project, and nothing of Flask or gevent. Serving streams to browsers is `streaming/`.
"""

from .events import IllegalTransition, InvalidUpdate, Stage, is_terminal
from .order_ids import normalize_order_id
from .publish import DuplicateEvent, PublishConflict, Published, Update, publish, publish_many
from .state import Snapshot, current_state, events_after, read_snapshot

__all__ = [
    "DuplicateEvent",
    "IllegalTransition",
    "InvalidUpdate",
    "PublishConflict",
    "Published",
    "Snapshot",
    "Stage",
    "Update",
    "current_state",
    "events_after",
    "is_terminal",
    "normalize_order_id",
    "publish",
    "publish_many",
    "read_snapshot",
]
