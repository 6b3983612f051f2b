"""The step rules, with the shipped fakes and no services: adopt what WHMCS already has,
never move Salesforce back from Completed, ignore stale messages, transient vs permanent,
and where a run resumes."""

from __future__ import annotations

import pytest

from fulfillment import steps
from fulfillment.fakes import FakePorts, fake_ports
from fulfillment.plan import Job, Step
from fulfillment.recovery import ResumePoint, resume_point
from integrations import PermanentError, TransientError

ORDER = "8015g00000AbCdEAAV"


@pytest.fixture
def ports() -> FakePorts:
    ports = fake_ports()
    ports.salesforce.add(ORDER, client_id=7)
    ports.events.publish(ORDER, {"stage": "queued"})
    return ports


def run_chain(ports: FakePorts) -> None:
    for rule in steps.RULES.values():
        rule(Job(ORDER, run=1), ports)


def test_a_whole_chain_creates_one_whmcs_order_and_completes(ports) -> None:
    run_chain(ports)
    assert ports.events.stages(ORDER) == ["queued", "activating", "provisioning", "completed"]
    assert len(ports.whmcs.orders) == 1
    assert ports.salesforce.orders[ORDER]["status"] == "Completed"
    assert ports.events.owners[ORDER] == "001000000000001AAA"


def test_provisioning_adopts_the_whmcs_order_whose_answer_was_lost(ports) -> None:
    steps.activate(Job(ORDER, 1), ports)
    ports.whmcs.lose_next_answer = True  # AddOrder works in WHMCS, its answer never arrives
    with pytest.raises(TransientError):
        steps.provision(Job(ORDER, 1), ports)
    (created,) = [order for _, order in ports.whmcs.orders]
    assert ports.ledger.load_whmcs_order(ORDER) is None
    steps.provision(Job(ORDER, 1, attempt=2), ports)
    assert ports.whmcs.orders == [(ORDER, created)]
    assert ports.ledger.load_whmcs_order(ORDER) == created
    assert ports.whmcs.accepted == [created.order_id]


def test_only_a_repeated_provisioning_asks_whmcs_what_it_has(ports) -> None:
    steps.activate(Job(ORDER, 1), ports)
    steps.provision(Job(ORDER, 1), ports)
    assert ports.whmcs.lookups == 0  # announced just now: no AddOrder can have gone before
    ports.ledger.whmcs_orders.clear()  # as if the ledger's write had been lost
    steps.provision(Job(ORDER, 1, attempt=2), ports)
    assert ports.whmcs.lookups == 1
    assert len(ports.whmcs.orders) == 1


def test_activation_writes_and_reads_in_one_call_and_never_reads_again(ports) -> None:
    steps.activate(Job(ORDER, 1), ports)
    steps.activate(Job(ORDER, 1, attempt=2), ports)  # a redelivery: the ledger has it all
    assert ports.salesforce.reads == [ORDER]
    assert [change for _, change in ports.salesforce.updates] == [{"status": "Activating"}]
    assert ports.ledger.load_context(ORDER).client_id == 7


def test_a_redelivered_provision_step_creates_nothing_new(ports) -> None:
    steps.activate(Job(ORDER, 1), ports)
    steps.provision(Job(ORDER, 1), ports)
    steps.provision(Job(ORDER, 1, attempt=2), ports)
    assert len(ports.whmcs.orders) == 1
    assert ports.events.stages(ORDER).count("provisioning") == 1


def test_activation_never_moves_salesforce_back_from_completed_when_state_was_lost() -> None:
    ports = fake_ports()  # Redis lost the order's state: nothing says it is safe to write
    ports.salesforce.add(ORDER, client_id=7, status="Completed")
    steps.activate(Job(ORDER, 1), ports)
    assert all(change.get("status") != "Activating" for _, change in ports.salesforce.updates)
    assert ports.salesforce.reads == []  # the read-only path: no activating write with it
    assert ports.ledger.load_context(ORDER).client_id == 7


@pytest.mark.parametrize(
    ("job", "why"),
    [(Job(ORDER, run=2), "an older run's"), (Job(ORDER, run=1, epoch=0), "a taken-over epoch's")],
)
def test_a_stale_message_does_nothing(ports, job, why) -> None:
    ports.recovery.epochs[ORDER] = 1 if "epoch" in why else 0
    with pytest.raises(steps.StaleMessage):
        steps.activate(job, ports)
    assert ports.salesforce.updates == []
    assert ports.events.stages(ORDER) == ["queued"]


def test_a_message_for_a_finished_order_is_stale(ports) -> None:
    run_chain(ports)
    with pytest.raises(steps.StaleMessage):
        steps.provision(Job(ORDER, 1, attempt=3), ports)


def test_a_transient_vendor_error_propagates_for_a_retry_and_changes_nothing(ports) -> None:
    steps.activate(Job(ORDER, 1), ports)
    ports.whmcs.fail_next.append(TransientError("WHMCS_UNAVAILABLE", "down", system="whmcs"))
    with pytest.raises(TransientError):
        steps.provision(Job(ORDER, 1), ports)
    assert ports.whmcs.orders == []
    assert ports.ledger.load_whmcs_order(ORDER) is None


def test_an_account_without_a_whmcs_client_is_a_permanent_error(ports) -> None:
    ports.salesforce.orders[ORDER]["client_id"] = None
    with pytest.raises(PermanentError) as raised:
        steps.activate(Job(ORDER, 1), ports)
    assert raised.value.code == "WHMCS_CLIENT_MISSING"


def test_a_failure_is_written_to_salesforce_then_announced_with_its_step(ports) -> None:
    error = {"code": "WHMCS_REJECTED", "message": "no", "retryable": False}
    steps.record_failure(ORDER, 1, error, "provisioning", ports)
    state = ports.events.current_state(ORDER)
    assert (state["stage"], state["status"], state["step"]) == ("failed", "Failed", "provisioning")
    assert ports.salesforce.updates[-1] == (
        ORDER,
        {"status": "Failed", "error": "WHMCS_REJECTED: no"},
    )
    assert ports.ledger.load_failed_step(ORDER) == "provisioning"


def test_a_failure_of_an_older_run_is_ignored(ports) -> None:
    error = {"code": "X", "message": "late", "retryable": True}
    steps.record_failure(ORDER, 2, error, None, ports)
    assert ports.events.stages(ORDER) == ["queued"]


@pytest.mark.parametrize(
    ("state", "failed_step", "expected"),
    [
        (None, None, ResumePoint(Step.ACTIVATE)),
        ({"stage": "failed", "run": 1}, "provisioning", ResumePoint(Step.PROVISION, reopen=True)),
        ({"stage": "failed", "run": 1}, "completed", ResumePoint(Step.COMPLETE)),
        ({"stage": "failed", "run": 1}, None, ResumePoint(Step.ACTIVATE)),
        ({"stage": "queued", "run": 1}, "provisioning", ResumePoint(Step.ACTIVATE)),
        ({"stage": "queued", "run": 2}, "provisioning", ResumePoint(Step.PROVISION, reopen=True)),
        ({"stage": "activating", "run": 1}, None, ResumePoint(Step.PROVISION)),
        ({"stage": "provisioning", "run": 1}, None, ResumePoint(Step.PROVISION)),
        ({"stage": "retrying", "step": "completed", "run": 1}, None, ResumePoint(Step.COMPLETE)),
        ({"stage": "retrying", "run": 1}, None, ResumePoint(Step.ACTIVATE)),
    ],
)
def test_where_a_run_resumes(state, failed_step, expected) -> None:
    assert resume_point(state, failed_step) == expected
