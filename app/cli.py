"""`fulfillment`: submit, inspect and follow orders; mint development tokens; run the sandbox."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

import settings
from notifier import current_state, is_terminal, normalize_order_id, read_snapshot
from notifier.state import wait_for_events


def _order_id(raw: str) -> str:
    order_id = normalize_order_id(raw)
    if order_id is None:
        raise click.BadParameter(
            "not a 15- or 18-character Salesforce Order id", param_hint="ORDER_ID"
        )
    return order_id


def _redacted(url: str) -> str:
    """A Redis URL without its password."""
    scheme, sep, rest = url.partition("://")
    _, at, host = rest.rpartition("@")
    return f"{scheme}{sep}{'***@' if at else ''}{host}" if sep else url


def _print(data: Any) -> None:
    click.echo(json.dumps(data, indent=None, separators=(",", ":")))


@click.group()
def main() -> None:
    """Order fulfillment: Salesforce -> WHMCS, followed live over Server-Sent Events."""
    # A new shell has none of `make run`'s variables: the stack file it wrote says where.
    settings.configure(settings.from_environment(with_stack=True))


@main.command()
@click.argument("order_id")
def submit(order_id: str) -> None:
    """Queue fulfillment for ORDER_ID and print the task id."""
    _queue(order_id, retry=False)


@main.command()
@click.argument("order_id")
def retry(order_id: str) -> None:
    """Re-run a failed ORDER_ID from the step that failed; print the task id."""
    _queue(order_id, retry=True)


def _queue(order_id: str, retry: bool) -> None:
    """The same use case as `POST /api/orders/<id>/fulfill`, without a web app."""
    from fulfillment.ownership import Ownership
    from integrations import SalesforceGateway

    from .errors import ApiError
    from .orders import ask_for_fulfillment

    oid = _order_id(order_id)
    where = settings.current()
    known = Ownership(SalesforceGateway(where.salesforce), where.web)
    try:
        trigger = ask_for_fulfillment(known, oid, retry=retry)
    except ApiError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from None
    click.echo(trigger.task_id)
    if trigger.duplicate:
        click.echo(f"already {trigger.stage}: not queued again", err=True)


@main.command()
@click.argument("order_id")
@click.option("--history", is_flag=True, help="Include every past update.")
def status(order_id: str, history: bool) -> None:
    """Print ORDER_ID's current state as JSON."""
    snapshot = read_snapshot(_order_id(order_id))
    if snapshot is None:
        raise click.ClickException("this order has not been submitted for fulfillment")
    body = snapshot.body if history else {k: v for k, v in snapshot.body.items() if k != "history"}
    _print(body)


@main.command()
@click.argument("order_id")
@click.option("--timeout", type=float, default=None, help="Give up after this many seconds.")
def watch(order_id: str, timeout: float | None) -> None:
    """Print ORDER_ID's events as JSON lines until it completes or fails."""
    oid = _order_id(order_id)
    where = settings.current()
    if current_state(oid) is None:
        click.echo(
            f"{oid} has not been submitted for fulfillment yet; waiting for its first event "
            f"(Redis {_redacted(where.redis.url)}, namespace {where.namespace!r})",
            err=True,
        )
    last_id, waited = "0", 0.0
    while timeout is None or waited < timeout:
        for event_id, payload in wait_for_events(oid, last_id, timeout_ms=1000):
            _print({"id": event_id, **payload})
            last_id = event_id
            if is_terminal(payload.get("stage")):
                return
        waited += 1.0
    raise click.ClickException("timed out before a terminal state")


@main.command()
@click.option("--account", "account_id", required=True, help="Account id claim.")
@click.option("--scope", default=None, help='Space-separated scopes, e.g. "orders:fulfill".')
@click.option("--ttl", type=int, default=3600, show_default=True, help="Seconds until exp.")
@click.option("--subject", default=None, help="sub claim (default: the account id).")
def token(account_id: str, scope: str | None, ttl: int, subject: str | None) -> None:
    """Mint a JWT with the configured key (development and tests)."""
    from .auth import mint_token

    web = settings.current().web
    try:
        click.echo(mint_token(web, account_id=account_id, scope=scope, ttl=ttl, subject=subject))
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--status", "show_status", is_flag=True, help="Print who listens, and where.")
def listen(show_status: bool) -> None:
    """Start fulfillment from Salesforce's Platform Events (the Pub/Sub API) until stopped.

    Several may run: one holds the lease and subscribes, the others stand by."""
    from listener import process

    if show_status:
        _print(process.status())
        return
    process.run()


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--salesforce-port", type=int, default=None)
@click.option("--whmcs-port", type=int, default=None)
@click.option("--pubsub-port", type=int, default=None)
def sandbox(salesforce_port: int | None, whmcs_port: int | None, pubsub_port: int | None) -> None:
    """Run the Salesforce (REST and Pub/Sub API) and WHMCS emulators in the foreground."""
    args = [sys.executable, "-m", "sandbox"]
    if salesforce_port is not None:
        args += ["--salesforce-port", str(salesforce_port)]
    if whmcs_port is not None:
        args += ["--whmcs-port", str(whmcs_port)]
    if pubsub_port is not None:
        args += ["--pubsub-port", str(pubsub_port)]
    # The sandbox is its own program: nothing in the product imports it.
    os.execv(sys.executable, args)  # noqa: S606


if __name__ == "__main__":
    main()
