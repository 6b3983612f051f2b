"""A worker keeps its long-lived objects out of the garbage collector's full collections
(`tasks.celery_app`): frozen before the pool forks, once the consumer is ready, and after
each of a pool process's first tasks, then no more."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from tasks import celery_app


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # this test process's objects back in the collector's sight


def test_the_main_process_freezes_before_its_pool_forks_and_once_ready() -> None:
    celery_app._freeze_before_the_pool_forks()
    assert gc.get_freeze_count() > 0
    gc.unfreeze()

    kept = [[number] for number in range(1_000)]
    celery_app._freeze_the_consumer()

    assert gc.get_freeze_count() >= len(kept)


def test_a_pool_process_freezes_after_its_first_tasks_then_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(celery_app, "_tasks_run", 0)
    for _ in range(celery_app.FREEZE_AFTER_TASKS):
        kept = [[number] for number in range(100)]
        celery_app._freeze_what_first_tasks_made()
        assert gc.get_freeze_count() >= len(kept)
        gc.unfreeze()

    celery_app._freeze_what_first_tasks_made()  # the next task: nothing more is frozen

    assert gc.get_freeze_count() == 0


def test_young_garbage_is_collected_not_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(celery_app, "_tasks_run", 0)
    node = Node()
    node.me = node  # a cycle: only the collector frees it
    alive = weakref.ref(node)
    del node

    celery_app._freeze_what_first_tasks_made()

    assert alive() is None


class Node:
    me: object = None
