"""The listener's loop: hold the lease, subscribe from the stored position, handle what
arrives, keep the position, and start over the way the Pub/Sub API asks.

    standby ── lease taken ──► subscribe (CUSTOM after the position; none: LATEST + sweep)
       ▲                          │ each response: handle its events, store latest_replay_id,
       │                          │ ask for as many more as were handled (never buffer more
       │                          │ than LISTENER_BATCH_SIZE)
       │     lease lost ◄─────────┤ UNAVAILABLE / INTERNAL / ended ─► resubscribe, backoff
       └──────────────────────────┤ UNAUTHENTICATED ─► log in again, resubscribe
                                  │ replay id refused ─► forget it, EARLIEST + sweep
                                  └ silence past keep-alive + grace ─► resubscribe
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass

import grpc

from fulfillment.ports import Dispatcher
from integrations import SalesforceGateway, TransientError
from integrations.pubsub_client import PubSubClient, PubSubError, Subscription, open_channel
from settings import ListenerSettings

from . import position
from .handler import Handler
from .lease import Lease
from .metrics import ACTIVE, POSITION_AGE, RECONNECTS
from .sweep import sweep

log = logging.getLogger(__name__)

#: Added to the keep-alive interval before a silent stream counts as dead (at most this).
_GRACE_SECONDS = 30.0


@dataclass
class _Backoff:
    """Jittered exponential backoff between resubscriptions, reset by a healthy response."""

    attempt: int = 0

    def next_delay(self) -> float:
        self.attempt += 1
        ceiling = min(30.0, 0.5 * 2 ** (self.attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.attempt = 0


class Listener:
    def __init__(
        self,
        config: ListenerSettings,
        gateway: SalesforceGateway,
        handler: Handler,
        dispatcher: Dispatcher,
    ) -> None:
        self.config, self.gateway = config, gateway
        self.handler, self.dispatcher = handler, dispatcher
        self.lease = Lease(config.lease_seconds)
        self.stopping = threading.Event()
        self._lost = threading.Event()
        self._backoff = _Backoff()

    # -- standby and lease -----------------------------------------------------------------

    def run(self) -> None:
        """Until stopped: wait for the lease, then listen while holding it."""
        while not self.stopping.is_set():
            if not self._take_lease():
                self.stopping.wait(self.config.lease_seconds / 3)
                continue
            log.info("listener active", extra={"outcome": "active", "code": self.lease.token})
            ACTIVE.set(1)
            self._lost = threading.Event()
            renewer = threading.Thread(
                target=self._keep_lease, args=(self._lost,), name="listener-lease", daemon=True
            )
            renewer.start()
            try:
                self._listen()
            except Exception:  # never let one bad moment end the process (and make run's stack)
                log.exception("listener failed; standing by and trying again")
                self.stopping.wait(self._backoff.next_delay())
            finally:
                ACTIVE.set(0)
                self._lost.set()
                renewer.join(timeout=self.config.lease_seconds)
        self.lease.release()

    def _take_lease(self) -> bool:
        try:
            return self.lease.take()
        except Exception as exc:  # Redis away: stay a standby
            log.warning("listener lease not taken: %r", exc)
            return False

    def _keep_lease(self, lost: threading.Event) -> None:
        while not lost.is_set() and not self.stopping.wait(self.config.lease_seconds / 3):
            try:
                if not self.lease.renew():
                    break
            except Exception as exc:  # a missed renewal only shortens the lease
                log.warning("listener lease renewal failed: %r", exc)
        lost.set()

    def _holding(self) -> bool:
        return not self.stopping.is_set() and not self._lost.is_set()

    # -- subscribing -------------------------------------------------------------------------

    def _listen(self) -> None:
        try:
            channel = open_channel(self.config.pubsub_target, self.config.pubsub_ca_bundle)
        except OSError as exc:  # the sandbox still starting (no certificate yet), say
            log.warning("Pub/Sub API not reachable yet: %r", exc)
            self.stopping.wait(self._backoff.next_delay())
            return
        try:
            client = PubSubClient(channel, self.gateway.pubsub_auth())
            earliest = False
            while self._holding():
                try:
                    earliest = self._subscribe_once(client, earliest)
                except (TransientError, PubSubError):
                    raise
                except Exception:  # Redis or the broker away: try again, never give up
                    log.exception("listener subscription failed")
                    RECONNECTS.labels("error").inc()
                    self.stopping.wait(self._backoff.next_delay())
            if not self.stopping.is_set():
                RECONNECTS.labels("lease-lost").inc()
                log.warning("listener lease lost; standing by")
        except (TransientError, PubSubError) as exc:  # Salesforce down: stand by, try again
            log.warning("listener could not log in: %s", exc)
            self.stopping.wait(self._backoff.next_delay())
        finally:
            channel.close()

    def _subscribe_once(self, client: PubSubClient, earliest: bool) -> bool:
        """One Subscribe call, until it ends; returns whether the next must start EARLIEST."""
        stored = position.load(self.config.topic)
        if stored is not None:
            POSITION_AGE.set(stored.age_seconds)
        replay_id = stored.replay_id if stored else None
        subscription = client.subscribe(
            self.config.topic, replay_id, self.config.batch_size, earliest=earliest
        )
        try:
            if stored is None:
                # No position (first start, or Salesforce refused it): the stream cannot tell
                # what was missed, Salesforce's records can. Swept once the subscription is
                # open, so an approval between the two is in one or the other.
                self._sweep()
            self._consume(subscription)
        except PubSubError as exc:
            return self._after_error(client, exc)
        finally:
            subscription.close()
        return earliest

    def _consume(self, subscription: Subscription) -> None:
        keepalive = self.config.keepalive_seconds
        silence = keepalive + min(_GRACE_SECONDS, keepalive)
        heard = time.monotonic()
        while self._holding():
            # Short waits, so a lost lease or a stop is noticed within a third of a lease.
            batch = subscription.next_batch(timeout=min(silence, self.config.lease_seconds / 3))
            if batch is None:
                if time.monotonic() - heard >= silence:
                    RECONNECTS.labels("silent").inc()
                    log.warning("no response or keep-alive for %.0f s: resubscribing", silence)
                    return
                continue
            heard = time.monotonic()
            self._backoff.reset()
            if "failed" in self.handler.handle(batch.events):
                # Not stored: the batch comes again from the stored position (what was
                # started is then a duplicate, refused by its event id).
                RECONNECTS.labels("error").inc()
                self.stopping.wait(self._backoff.next_delay())
                return
            if batch.latest_replay_id:
                # After the starts: each recorded its event's id with its claim.
                if not position.store(self.lease, self.config.topic, batch.latest_replay_id):
                    return  # the lease went to another listener
                POSITION_AGE.set(0)
            if batch.events:
                subscription.ask(len(batch.events))  # as many more as were handled

    def _after_error(self, client: PubSubClient, exc: PubSubError) -> bool:
        """Decide how to subscribe again after the call ended with `exc`."""
        log.warning("subscription ended: %s", exc)
        if exc.replay_refused:
            RECONNECTS.labels("replay-refused").inc()
            position.forget()  # never retried in a loop: EARLIEST, and the sweep
            return True
        if exc.unauthenticated:
            RECONNECTS.labels("unauthenticated").inc()
            client.auth = self.gateway.pubsub_auth(renew=True)
            return False
        reason = "unavailable" if exc.code is grpc.StatusCode.UNAVAILABLE else "error"
        RECONNECTS.labels(reason).inc()
        self.stopping.wait(self._backoff.next_delay())
        return False

    def _sweep(self) -> None:
        try:
            sweep(self.gateway, self.config.approved_condition, self.dispatcher)
        except TransientError as exc:  # Salesforce busy: the next subscription sweeps again
            log.warning("sweep failed: %s", exc)
