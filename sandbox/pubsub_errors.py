"""What the Pub/Sub API emulator answers when something goes wrong, and its fault switches.

Salesforce ends a failed call with a gRPC status, a message ending in `rpcId: <id>`, and the
trailers `error-code: sfdc.platform.eventbus.grpc.*` and `rpc-id`. The codes used here are the
documented ones (handling-errors guide), except `topic.not.found` and `schema.not.found`,
whose exact spelling the stored docs did not show.

Kept free of grpc so the Salesforce emulator's fault registry can name the RPCs and modes.
"""

from __future__ import annotations

_PREFIX = "sfdc.platform.eventbus.grpc."
AUTH_ERROR = _PREFIX + "service.auth.error"
UNAVAILABLE = _PREFIX + "service.unavailable"
REPLAY_CORRUPTED = _PREFIX + "subscription.fetch.replayid.corrupted"
REPLAY_VALIDATION_FAILED = _PREFIX + "subscription.fetch.replayid.validation.failed"
REQUESTED_EVENTS_INVALID = _PREFIX + "subscription.fetch.requested.events.invalid"
TOPIC_NOT_FOUND = _PREFIX + "topic.not.found"
SCHEMA_NOT_FOUND = _PREFIX + "schema.not.found"

AUTH_MESSAGE = (
    "An authentication exception occurred. Provide valid authentication via metadata headers."
)

#: The RPCs a fault may name (the Salesforce emulator's registry holds them beside REST's).
RPCS = ("GetTopic", "GetSchema", "Subscribe", "Publish")
#: Fault modes of the event side, and the RPCs each applies to.
MODE_ACTIONS: dict[str, tuple[str, ...]] = {
    # The call (an open stream: at once) ends with UNAVAILABLE / service.unavailable.
    "unavailable": RPCS,
    # The session expired: the call ends with UNAUTHENTICATED and its token stops working.
    "unauthenticated": RPCS,
    # The next CUSTOM subscription's replay id is refused as corrupted, valid or not.
    "corrupt-replay": ("Subscribe",),
    # The stream stays open and sends nothing more, not even keep-alives (a half-open link).
    "silence": ("Subscribe",),
}
MODES = tuple(MODE_ACTIONS)
#: Modes that can hit a stream already open (corrupt-replay only applies when it starts).
STREAM_MODES = frozenset({"unavailable", "unauthenticated", "silence"})


class PubSubError(Exception):
    """Raised deep in the servicer; the edge turns it into a status and trailers."""

    def __init__(self, status: str, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.status = status  # a grpc.StatusCode name, e.g. "INVALID_ARGUMENT"
        self.error_code = error_code
        self.message = message


def replay_corrupted() -> PubSubError:
    return PubSubError("INVALID_ARGUMENT", REPLAY_CORRUPTED, "The Replay ID validation failed.")


def unauthenticated() -> PubSubError:
    return PubSubError("UNAUTHENTICATED", AUTH_ERROR, AUTH_MESSAGE)


def unavailable() -> PubSubError:
    return PubSubError("UNAVAILABLE", UNAVAILABLE, "The Pub/Sub API service is unavailable.")
