"""The Salesforce event listener's part of the settings (`fulfillment listen`)."""

from __future__ import annotations

from dataclasses import dataclass

from .environment import Environment
from .sections import SalesforceConfig, SandboxSettings

#: Salesforce's public Pub/Sub API endpoint.
PUBLIC_PUBSUB = "api.pubsub.salesforce.com:7443"


@dataclass(frozen=True)
class ListenerSettings:
    #: The Platform Event channel a record-triggered Flow publishes approvals on.
    topic: str
    #: The event's field holding the Salesforce Order id.
    order_field: str
    #: host:port of the Pub/Sub API (the sandbox's when Salesforce is the sandbox).
    pubsub_target: str
    #: The certificate bundle to trust for it (the sandbox's; None: the system's).
    pubsub_ca_bundle: str | None
    #: Events asked for at a time (Salesforce caps a call at 100).
    batch_size: int
    #: How long the active listener's lease lasts unrenewed: a standby takes over after it.
    lease_seconds: float
    #: The longest silence expected between keep-alives (Salesforce: within 270 s); with a
    #: grace added, a silent stream is resubscribed.
    keepalive_seconds: float
    #: SOQL condition of an approved Order, for the sweep that finds approvals the stream lost.
    approved_condition: str
    #: The listener's Prometheus endpoint (0: not served).
    metrics_port: int
    metrics_address: str


def read_listener(
    env: Environment, sandbox: SandboxSettings, salesforce: SalesforceConfig
) -> ListenerSettings:
    target = env.text("SALESFORCE_PUBSUB_URL")
    if target is None:
        # Salesforce's sandbox serves the Pub/Sub API too, with the same certificate.
        uses_sandbox = salesforce.sandbox_credentials is not None
        target = f"{sandbox.host}:{sandbox.pubsub_port}" if uses_sandbox else PUBLIC_PUBSUB
    return ListenerSettings(
        topic=env.required_text("SALESFORCE_EVENT_TOPIC", "/event/Order_Activation__e"),
        order_field=env.required_text("SALESFORCE_EVENT_ORDER_FIELD", "OrderId__c"),
        pubsub_target=target.removeprefix("https://").rstrip("/"),
        pubsub_ca_bundle=salesforce.ca_bundle,
        batch_size=max(1, min(100, env.whole("LISTENER_BATCH_SIZE", 100))),
        lease_seconds=env.number("LISTENER_LEASE_SECONDS", 15),
        keepalive_seconds=env.number("LISTENER_KEEPALIVE_SECONDS", 270),
        approved_condition=env.required_text("SALESFORCE_APPROVED_CONDITION", "Approved__c = true"),
        metrics_port=env.whole("LISTENER_METRICS_PORT", 9809),
        metrics_address=env.required_text("LISTENER_METRICS_ADDRESS", "0.0.0.0"),
    )
