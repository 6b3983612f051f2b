"""Order events: the lifecycle contract, publishing, state and history, and the stream.

`publish(order_id, update)` works from any process that has `REDIS_URL` (a Celery worker, a
script): no Flask app or request context is needed.
"""

from .events import IllegalTransition, InvalidUpdate, Stage, is_terminal
from .order_ids import normalize_order_id
from .publish import PublishConflict, publish
from .state import Snapshot, current_state, events_after, read_snapshot

__all__ = [
    "IllegalTransition",
    "InvalidUpdate",
    "PublishConflict",
    "Snapshot",
    "Stage",
    "current_state",
    "events_after",
    "is_terminal",
    "normalize_order_id",
    "publish",
    "read_snapshot",
]
