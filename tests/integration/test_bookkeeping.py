"""A step's bookkeeping against a real Redis: one script call as it begins, one as it ends
(counted by Redis's MONITOR), and what each leaves behind; the provisioning lease reads and
writes the ledger as it is taken and released."""

from __future__ import annotations

import json

import pytest

from fulfillment import bookkeeping, ledger, recovery
from fulfillment.bookkeeping import Owner, StepEnd
from fulfillment.ledger import OrderContext, ledger_key
from fulfillment.plan import Job
from integrations import OrderLine, TransientError
from notifier import IllegalTransition, keys, placement, publish
from notifier.state import read_snapshot
from tests.helpers import commands_sent

ORDER = "8015g00000BkKpAAAV"
ACCOUNT = "0015g00000AcCtAAAV"
CONTEXT = OrderContext(client_id=7, lines=(OrderLine(product_id=3, quantity=1, name="Fibre"),))
ACTIVATING = {"stage": "activating", "status": "Activating", "message": "marked"}


@pytest.fixture
def queued(redis_client) -> str:
    publish(ORDER, {"stage": "queued", "message": "waiting", "taskId": "t-1"})
    # Loaded before anything is counted: a first EVALSHA that Redis answers NOSCRIPT is sent
    # twice, whichever test happens to run first.
    for script in (bookkeeping._BEGIN, bookkeeping._FINISH, recovery._ENTER, recovery._LEAVE):
        redis_client.script_load(script.source)
    return ORDER


def test_a_step_begins_in_one_call_and_reads_what_it_decides_on(queued, redis_client) -> None:
    redis_client.hset(ledger_key(ORDER), "strikes", 1)
    with commands_sent() as sent:
        start = bookkeeping.begin(Job(ORDER, run=1), alive_seconds=15)
    assert len(sent) == 1, sent
    assert start.state["stage"] == "queued" and start.read.seq == 1
    assert (start.epoch, start.context, start.whmcs_order) == (0, None, None)
    assert redis_client.get(recovery.alive_key(ORDER)) == "running"
    assert redis_client.hget(ledger_key(ORDER), "runningEpoch") == "0"


def test_a_stale_epoch_does_not_mark_itself_running(queued, redis_client) -> None:
    redis_client.hset(ledger_key(ORDER), "epoch", 2)
    start = bookkeeping.begin(Job(ORDER, run=1, epoch=1), alive_seconds=15)
    assert start.epoch == 2
    assert redis_client.hget(ledger_key(ORDER), "runningEpoch") is None


def test_a_step_ends_in_one_call_with_everything_it_leaves(queued, redis_client) -> None:
    job = Job(ORDER, run=1)
    start = bookkeeping.begin(job, alive_seconds=15)
    redis_client.hset(ledger_key(ORDER), "strikes", 2)
    owner = Owner(ACCOUNT, {"number": "00000101", "placed": None, "total": None, "items": []})
    with commands_sent() as sent:
        event_id = bookkeeping.finish(job, start, StepEnd(ACTIVATING, CONTEXT, owner), 30)
    # One call; on a cluster the active set and the account's log and index follow in their
    # own slots (notifier.placement), one script each (a node that has not seen a script yet
    # answers NOSCRIPT, and the call is sent again once it is loaded).
    assert sent[0].split()[0] == "EVALSHA" and ":alive" in sent[0].split()[3], sent
    if placement.clustered():
        assert all(c.split()[0] == "EVALSHA" for c in sent) and len({c for c in sent[1:]}) == 3
    else:
        assert len(sent) == 1, sent
    books = redis_client.hgetall(ledger_key(ORDER))
    assert ledger.decode_context(books["context"]) == CONTEXT
    assert "runningEpoch" not in books and "strikes" not in books
    assert redis_client.get(recovery.alive_key(ORDER)) == "queued"
    assert 0 < redis_client.ttl(recovery.alive_key(ORDER)) <= 30
    state = redis_client.hgetall(keys.state_key(ORDER))
    assert state["owner"] == ACCOUNT and json.loads(state["summary"])["number"] == "00000101"
    assert redis_client.zscore(keys.account_orders_key(ACCOUNT), ORDER) is not None
    # The update reached the order's history and, the owner known now, the account's log.
    assert read_snapshot(ORDER).event_id == event_id
    (_, fields), *_ = redis_client.xrange(keys.account_events_key(ACCOUNT))
    assert json.loads(fields["data"])["eventId"] == event_id


def test_the_last_step_leaves_no_alive_mark(queued, redis_client) -> None:
    job = Job(ORDER, run=1)
    bookkeeping.finish(job, bookkeeping.begin(job, 15), StepEnd(ACTIVATING, last=True), 30)
    assert redis_client.exists(recovery.alive_key(ORDER)) == 0


def test_an_order_that_moved_during_the_step_is_published_afresh(queued, redis_client) -> None:
    job = Job(ORDER, run=1)
    start = bookkeeping.begin(job, alive_seconds=15)
    publish(
        ORDER,
        {
            "stage": "retrying",
            "step": "activating",
            "attempt": 2,
            "maxAttempts": 5,
            "nextRetryAt": "2030-01-01T00:00:00Z",
            "message": "busy",
        },
    )
    bookkeeping.finish(job, start, StepEnd(ACTIVATING), 30)
    stages = [entry["stage"] for entry in read_snapshot(ORDER).body["history"]]
    assert stages == ["queued", "retrying", "activating"]


def test_a_refused_update_still_ends_the_step(queued, redis_client) -> None:
    job = Job(ORDER, run=1)
    bookkeeping.finish(job, bookkeeping.begin(job, 15), StepEnd(ACTIVATING), 30)
    again = bookkeeping.begin(job, alive_seconds=15)
    with pytest.raises(IllegalTransition):
        bookkeeping.finish(job, again, StepEnd(ACTIVATING, CONTEXT), 30)
    assert redis_client.hget(ledger_key(ORDER), "runningEpoch") is None
    assert redis_client.get(recovery.alive_key(ORDER)) == "queued"


def test_the_provisioning_lease_reads_and_writes_the_ledger(redis_client) -> None:
    with recovery.exclusive(ORDER, "provision", 5, ledger.WHMCS_ORDER) as section:
        assert section.value is None
        assert redis_client.exists(keys.order_key(ORDER, "lock:provision")) == 1
        section.write('{"orderId": 9, "serviceIds": [90]}')
    assert redis_client.exists(keys.order_key(ORDER, "lock:provision")) == 0
    with commands_sent() as sent, recovery.exclusive(ORDER, "provision", 5, "whmcsOrder") as again:
        assert json.loads(again.value or "{}")["orderId"] == 9
    assert len(sent) == 2, sent  # taken (with the read), released


def test_a_held_lease_is_waited_for(redis_client) -> None:
    with (
        recovery.exclusive(ORDER, "provision", 0.3, ledger.WHMCS_ORDER),
        pytest.raises(TransientError) as raised,
        recovery.exclusive(ORDER, "provision", 0.3, ledger.WHMCS_ORDER),
    ):
        pass
    assert raised.value.code == "STEP_IN_PROGRESS"
