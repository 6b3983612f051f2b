"""What the hub sends Redis for its subscriptions: streams that end together leave in one
UNSUBSCRIBE, and a channel left and joined again at once is still followed (order kept)."""

from __future__ import annotations

import random
import string

import settings
from notifier import keys, publish
from notifier.order_ids import normalize_order_id
from streaming.hub import Hub
from tests.helpers import commands_sent, subscribers, wait_until


def new_order_id() -> str:
    body = "801" + "".join(random.choices(string.ascii_letters + string.digits, k=12))
    return str(normalize_order_id(body))


def queued(order_id: str) -> str:
    return publish(order_id, {"stage": "queued", "message": "waiting"})


def test_streams_ending_together_leave_in_one_unsubscribe(redis_client):
    # A wide window, so that a loaded machine's test steps surely fit in it.
    hub = Hub(settings.current().redis.url, gather_leaving=2.0)
    leaving = [new_order_id() for _ in range(3)]
    staying = new_order_id()
    subscribed = {order_id: hub.subscribe(order_id, limit=10) for order_id in leaving}
    follower = hub.subscribe(staying, limit=10)
    channels = [keys.channel(order_id) for order_id in leaving]
    try:
        with commands_sent() as sent:
            hub.unsubscribe(subscribed[leaving[0]])
            # The reader has run since that stream left (it delivered a later event), and
            # still sent nothing: its channel waits for the others to leave with it.
            queued(staying)
            assert follower.take(timeout=10), "the reader delivered nothing"
            for order_id in leaving[1:]:
                hub.unsubscribe(subscribed[order_id])
            wait_until(lambda: subscribers(channels) == 0, 20)
        # Only ours: another hub of this process (an earlier test's) may leave meanwhile.
        unsubscribes = [
            command
            for command in sent
            if command.upper().startswith("UNSUBSCRIBE") and any(c in command for c in channels)
        ]
        assert len(unsubscribes) == 1, unsubscribes
        assert all(channel in unsubscribes[0] for channel in channels), unsubscribes
        assert subscribers([keys.channel(staying)]) == 1
    finally:
        hub.shutdown()


def test_a_channel_left_and_joined_again_at_once_is_still_followed(redis_client):
    hub = Hub(settings.current().redis.url, gather_leaving=2.0)
    order_id = new_order_id()
    try:
        hub.unsubscribe(hub.subscribe(order_id, limit=10))
        again = hub.subscribe(order_id, limit=10)  # queued behind the UNSUBSCRIBE, not before
        queued(order_id)
        assert again.take(timeout=10), "the channel was left after it was joined again"
        wait_until(lambda: subscribers([keys.channel(order_id)]) == 1, 10)
    finally:
        hub.shutdown()
