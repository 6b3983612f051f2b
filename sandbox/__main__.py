"""`python -m sandbox`: serve the Salesforce (REST and Pub/Sub API) and WHMCS emulators in the
foreground.

Options default to the environment: `SANDBOX_SALESFORCE_PORT` (8443), `SANDBOX_PUBSUB_PORT`
(7443), `SANDBOX_WHMCS_PORT` (8081), `SANDBOX_DIR` (`.sandbox/`), and `SANDBOX_TLS_NAMES`
(extra certificate names, comma separated, for when clients reach the sandbox by another
name, such as a compose service).
"""

from __future__ import annotations

import argparse
import gc
import logging

import settings

from .server import serve

#: Young collections between two full ones: about never. The emulators' state only grows
#: (orders are kept), so a full collection walks all of it: 24 ms in the middle of a
#: benchmark's flood of 1,000 orders, 41 to 47 ms with 2,300 kept (gc.callbacks, 12-03), a
#: pause that every client in flight waits out, the emulator's and not the client's. Cycles
#: that become garbage once old stay in memory: an emulator's price, not a service's.
FULL_COLLECTION_EVERY = 1_000_000


def collect_rarely() -> None:
    youngest, middle, _ = gc.get_threshold()
    gc.set_threshold(youngest, middle, FULL_COLLECTION_EVERY)


def _parser() -> argparse.ArgumentParser:
    sandbox = settings.from_environment().sandbox
    parser = argparse.ArgumentParser(
        prog="python -m sandbox", description="Local Salesforce and WHMCS emulators."
    )
    parser.add_argument("--salesforce-port", type=int, default=sandbox.salesforce_port)
    parser.add_argument("--pubsub-port", type=int, default=sandbox.pubsub_port)
    parser.add_argument("--whmcs-port", type=int, default=sandbox.whmcs_port)
    parser.add_argument("--dir", default=str(sandbox.dir))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--tls-name",
        action="append",
        default=list(sandbox.tls_names),
        help="extra DNS name or IP for the certificate (repeatable)",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG shows every request")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    collect_rarely()
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    serve(
        args.dir, args.salesforce_port, args.whmcs_port, args.host, args.tls_name, args.pubsub_port
    )


if __name__ == "__main__":
    main()
