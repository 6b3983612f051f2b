"""`integrations.pubsub_client` with the real grpcio client against the Pub/Sub API emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import settings
from integrations import SalesforceGateway
from integrations.pubsub_client import PubSubClient, Subscription, open_channel
from tests.helpers import wait_until

TOPIC = "/event/Order_Activation__e"


@pytest.fixture
def subscription(sandbox, sandbox_client) -> Iterator[Subscription]:
    sandbox_client.pubsub_settings(keepaliveSeconds=0.3)
    config = settings.current().listener
    channel = open_channel(config.pubsub_target, config.pubsub_ca_bundle)
    client = PubSubClient(channel, SalesforceGateway(settings.current().salesforce).pubsub_auth())
    subscribed = client.subscribe(TOPIC, None, batch_size=10)
    try:
        assert subscribed.next_batch(timeout=10) is not None  # a keep-alive: the stream is live
        yield subscribed
    finally:
        subscribed.close()
        channel.close()
        sandbox_client.pubsub_settings(keepaliveSeconds=270)


def test_responses_that_arrived_while_busy_come_as_one_batch(sandbox_client, subscription):
    # Approved one by one, so the emulator sends each in its own response, as Salesforce does
    # at a trickle; taken only once all have arrived, as by a listener still busy.
    orders = [sandbox_client.approve_order(o["orderId"]) for o in sandbox_client.create_orders(5)]
    wait_until(lambda: subscription.arrived() >= 5, timeout=10)
    batch = subscription.next_batch(timeout=0)
    assert batch is not None
    assert [e.event_id for e in batch.events] == [o["eventId"] for o in orders]
    assert batch.latest_replay_id == batch.events[-1].replay_id  # where to resume after them
