"""A subscriber's mailbox under real threads: the hub's reader may be a thread, not a greenlet,
so a frame delivered while the stream drains its mailbox must be taken then or next time,
never lost."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from streaming.hub import Frame, Subscriber

FRAMES = 300_000


@pytest.fixture
def frequent_switches() -> Iterator[None]:
    """Switch threads as often as the interpreter allows, so the race shows in every run."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def test_every_frame_delivered_during_takes_arrives_once_in_order(frequent_switches) -> None:
    subscriber = Subscriber("801", "ch", limit=FRAMES + 1)  # never a slow client here
    frames = [Frame((n, 0), b"x", False) for n in range(FRAMES)]
    received: list[Frame] = []
    out_of_order: list[tuple[int, int]] = []  # (expected, got)

    def produce() -> None:  # what the hub's reader does for each message
        for frame in frames:
            subscriber.deliver(frame)
        subscriber.end("done")

    def consume() -> None:  # a stream's live loop, always behind: it never waits for frames
        expected = 0
        while True:
            finished = subscriber.ended is not None  # every frame was delivered before this
            taken = subscriber.take(0)
            for frame in taken:  # checked as they come, as a stream writes each one
                if frame.event_id[0] != expected:
                    out_of_order.append((expected, frame.event_id[0]))
                expected = frame.event_id[0] + 1
            received.extend(taken)
            if finished and not taken:
                return

    threads = [threading.Thread(target=consume), threading.Thread(target=produce)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)

    assert out_of_order == [], f"gaps or repeats (expected, got): {out_of_order[:5]}"
    assert len(received) == FRAMES
    assert [frame.event_id for frame in received] == [frame.event_id for frame in frames]
