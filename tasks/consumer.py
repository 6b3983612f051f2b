"""Celery's worker consumer, with its task events sent a batch at a time.

With task events on (Flower's), every task raises three (received, started, succeeded), and
the stock consumer publishes what is buffered at the next turn of its event loop: at the
pipeline's rates that is one PUBLISH per event or two, nine per order, about a tenth of the
worker's CPU in the pipeline profile. Here the first event buffered schedules a flush
`EVENT_FLUSH_SECONDS` later, so one PUBLISH carries everything raised meanwhile (Flower
reads the batch as the stock `task.multi` message it already understands); a full buffer
(celery's `buffer_limit`) still goes at once, and a warm shutdown flushes what is left.
Selected by `tasks.config` (`worker_consumer`).
"""

from __future__ import annotations

from celery.worker.consumer import Consumer as CeleryConsumer

#: How late an operator sees a task's event in Flower, at most (beyond the broker's delay).
EVENT_FLUSH_SECONDS = 0.1


class Consumer(CeleryConsumer):
    _flush_scheduled = False

    def on_send_event_buffered(self) -> None:
        if self.hub and not self._flush_scheduled:
            self._flush_scheduled = True
            self.hub.call_later(EVENT_FLUSH_SECONDS, self._flush_now)

    def _flush_now(self) -> None:
        self._flush_scheduled = False
        self._flush_events()

    def shutdown(self) -> None:
        self._flush_events()  # the events of the last tasks, while the connection is up
        super().shutdown()
